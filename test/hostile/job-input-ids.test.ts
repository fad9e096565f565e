import type { Server } from "node:http";
import { encodeGlobalID } from "@pothos/plugin-relay";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { parseJobId } from "../../src/graphql/ids.js";
import { jobWatchStats } from "../../src/graphql/subscriptions.js";
import { InvalidIdError } from "../../src/graphql/errors.js";
import { createHttpApp } from "../../src/server.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { makeArtwork } from "../support/factories.js";
import { serveOnFreePort } from "../support/http.js";
import { httpGql } from "../support/processes.js";
import { openSse } from "../support/sse.js";

/**
 * Job ids as a hostile client writes them, through GraphQL over HTTP with the bearer token: every
 * malformed or out-of-range id is a typed InvalidIdError (or BAD_USER_INPUT where the field has no
 * result union), never "Unexpected error.", and never reaches the database.
 */

const TOKEN = "test-token-0123456789abcdef";
const AUTH = { authorization: `Bearer ${TOKEN}` };
let t: TestDb;
let server: Server;
let base: string;
let jobId: number;

beforeAll(async () => {
  t = await createTestDb();
  ({ server } = createHttpApp({ db: t.db, config: loadConfig({ API_TOKEN: TOKEN }) }));
  ({ base } = await serveOnFreePort(server));
  const artwork = await makeArtwork(t.db);
  jobId = (await t.db.job.create({ data: { kind: "describe", artworkId: artwork.id, params: "{}", dedupeKey: "k" } })).id;
});
afterAll(async () => {
  server.closeAllConnections();
  server.close();
  await t.close();
});

const BAD_IDS: [string, string][] = [
  ["20 digits", "99999999999999999999"],
  ["16 digits above MAX_SAFE_INTEGER", "9007199254740993"],
  ["one above the largest Int id", "2147483648"],
  ["zero", "0"],
  ["negative", "-1"],
  ["exponent", "1e3"],
  ["hex", "0x10"],
  ["leading zero", "01"],
  ["fraction", "1.0"],
  ["Arabic-Indic digits", "١٢٣"],
  ["fullwidth digits", "１２３"],
  ["global id of an Artwork", encodeGlobalID("Artwork", 1)],
  ["global id of a Job with a 20-digit local part", encodeGlobalID("Job", "99999999999999999999")],
  ["global id of a Job with local part 0", encodeGlobalID("Job", "0")],
  ["global id of a Job with a negative local part", encodeGlobalID("Job", "-5")],
  ["empty", ""],
  ["blank", "   "],
  ["10,000 characters", "9".repeat(10_000)],
  ["10,000 characters of base64", "Sm9iOjE".repeat(1_500)],
  ["a NUL", "1\u0000"],
];

const JOB = `query($id: ID!) { job(id: $id) { __typename ... on InvalidIdError { requestedId message } ... on Job { number } } }`;
const CANCEL = `mutation($id: ID!) { cancelJob(id: $id) { __typename ... on InvalidIdError { requestedId message } ... on Job { number } } }`;

describe("job(id)", () => {
  it.each(BAD_IDS)("%s is an InvalidIdError", async (_name, id) => {
    const r = await httpGql(`${base}/graphql`, JOB, { id });
    expect(r.errors).toBeUndefined();
    expect(r.data.job.__typename).toBe("InvalidIdError");
    expect(r.data.job.message).toMatch(/is not a valid id: expected a job's global id or number/);
    // A 10,000-character id is not echoed back whole.
    expect(r.data.job.requestedId.length).toBeLessThanOrEqual(201);
  });

  it("accepts the number with spaces around it, the global id, and the largest possible id", async () => {
    for (const id of [String(jobId), ` ${jobId} `, encodeGlobalID("Job", jobId)]) {
      const r = await httpGql(`${base}/graphql`, JOB, { id });
      expect(r.data.job).toEqual({ __typename: "Job", number: jobId });
    }
    const r = await httpGql(`${base}/graphql`, `query { job(id: "2147483647") { __typename } }`);
    expect(r).toEqual({ data: { job: null } });
  });
});

describe("cancelJob(id)", () => {
  it.each(BAD_IDS)("%s is an InvalidIdError and cancels nothing", async (_name, id) => {
    const r = await httpGql(`${base}/graphql`, CANCEL, { id }, AUTH);
    expect(r.errors).toBeUndefined();
    expect(r.data.cancelJob.__typename).toBe("InvalidIdError");
    expect((await t.db.job.findUniqueOrThrow({ where: { id: jobId } })).status).toBe("QUEUED");
  });

  it("the largest possible id is a NotFoundError", async () => {
    const r = await httpGql(`${base}/graphql`, `mutation { cancelJob(id: "2147483647") { __typename } }`, {}, AUTH);
    expect(r).toEqual({ data: { cancelJob: { __typename: "NotFoundError" } } });
  });
});

describe("jobUpdated(id) over SSE", () => {
  it.each([...BAD_IDS, ["a word", "x"] as [string, string]])("%s is a BAD_USER_INPUT error, and the stream ends", async (_name, id) => {
    const s = openSse(base, `subscription($id: ID!) { jobUpdated(id: $id) { status } }`, { id });
    const first = await s.event(0);
    expect(first.data ?? null).toBeNull();
    expect(first.errors).toHaveLength(1);
    expect(first.errors[0].message).not.toMatch(/Unexpected error/);
    expect(first.errors[0].extensions).toMatchObject({ code: "BAD_USER_INPUT", argument: "id" });
    expect(await s.ended).toBe("complete");
    expect(jobWatchStats(t.db).streams).toBe(0);
  });
});

describe("parseJobId", () => {
  it("refuses every bad id with InvalidIdError", () => {
    for (const [, id] of BAD_IDS) expect(() => parseJobId(id)).toThrow(InvalidIdError);
  });

  it("reads numbers and Job global ids up to the largest Int", () => {
    expect(parseJobId("7")).toBe(7);
    expect(parseJobId("\t7\n")).toBe(7);
    expect(parseJobId(encodeGlobalID("Job", 2_147_483_647))).toBe(2_147_483_647);
  });
});
