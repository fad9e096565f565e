import type { Server } from "node:http";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { TEXT_LIMITS } from "../../src/jobs/input-limits.js";
import { createHttpApp } from "../../src/server.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { makeArtwork, makeCreator } from "../support/factories.js";
import { serveOnFreePort } from "../support/http.js";
import { httpGql } from "../support/processes.js";

/**
 * Free text a hostile client sends to the job and description mutations, through GraphQL over HTTP
 * with the bearer token: every text has a limit, control characters are refused, and a refused
 * request writes nothing.
 */

const TOKEN = "test-token-0123456789abcdef";
const AUTH = { authorization: `Bearer ${TOKEN}` };
/** Far over every field's limit, yet under the request body limit (GRAPHQL_MAX_BODY_BYTES), so the resolvers see it. */
const HUGE = "a".repeat(90_000);
let t: TestDb;
let server: Server;
let url: string;

beforeAll(async () => {
  t = await createTestDb();
  ({ server } = createHttpApp({ db: t.db, config: loadConfig({ API_TOKEN: TOKEN }) }));
  url = `${(await serveOnFreePort(server)).base}/graphql`;
  const painter = await makeCreator(t.db, { qid: "Q777", labels: { en: "Ana Pintora" } });
  await makeArtwork(t.db, { qid: "Q101", creators: [{ id: painter.id }], image: { localPath: "a/b.jpg" } });
  // describeMissing's own work: setDescription gives Q101 a person's text, which it skips.
  const sculptor = await makeCreator(t.db, { qid: "Q778", labels: { en: "Bea Escultora" } });
  await makeArtwork(t.db, { qid: "Q202", creators: [{ id: sculptor.id }], image: { localPath: "c/d.jpg" } });
});
afterAll(async () => {
  server.close();
  await t.close();
});
beforeEach(async () => {
  await t.db.job.deleteMany();
});

const SET = `mutation($text: String!, $author: String, $reason: String) {
  setDescription(id: "Q101", text: $text, author: $author, reason: $reason) {
    __typename ... on InvalidInputError { field message } ... on Description { text author reason }
  }
}`;
const REGENERATE = `mutation($params: GenerationParamsInput, $reason: String) {
  regenerateDescription(id: "Q101", params: $params, reason: $reason) {
    __typename ... on InvalidInputError { field message } ... on ParameterOutOfRangeError { field message } ... on Job { reason params { prompt } }
  }
}`;
const MISSING = `mutation($creator: String) { describeMissing(creator: $creator) { __typename ... on InvalidInputError { field message } ... on DescribeMissingPayload { queued } } }`;

const humanCount = () => t.db.description.count({ where: { source: "HUMAN" } });

describe("setDescription", () => {
  const refused: [string, Record<string, string>, string, RegExp][] = [
    ["a 90 KB author", { text: "Fine.", author: HUGE }, "author", /author must have at most 200 characters/],
    ["a 90 KB reason", { text: "Fine.", reason: HUGE }, "reason", /reason must have at most 1000 characters/],
    ["a 90 KB text", { text: HUGE }, "text", /text must have at most 20000 characters/],
    ["a text one over the limit", { text: "b".repeat(TEXT_LIMITS.descriptionText.max + 1) }, "text", /at most 20000/],
    ["an empty text", { text: " \n\t " }, "text", /text must not be empty/],
    ["a NUL in the text", { text: "Fine\u0000." }, "text", /control characters other than newline and tab \(found U\+0000\)/],
    ["a BEL in the reason", { text: "Fine.", reason: "why\u0007" }, "reason", /U\+0007/],
    ["an escape sequence in the author", { text: "Fine.", author: "\u001b[31mred" }, "author", /U\+001B/],
    ["a newline in the author", { text: "Fine.", author: "Ana\nPintora" }, "author", /must not contain control characters \(found U\+000A\)/],
    ["a tab in the author", { text: "Fine.", author: "Ana\tPintora" }, "author", /U\+0009/],
    ["a C1 control in the author", { text: "Fine.", author: "Ana\u0085" }, "author", /U\+0085/],
    ["a right-to-left override in the author", { text: "Fine.", author: "Ana\u202Eartsiger" }, "author", /U\+202E/],
    ["a line separator in the author", { text: "Fine.", author: "Ana\u2028B" }, "author", /U\+2028/],
    ["a lone surrogate in the text", { text: "Fine \ud800." }, "text", /lone surrogate/],
  ];

  it.each(refused)("refuses %s with InvalidInputError and writes nothing", async (_name, vars, field, message) => {
    const before = await humanCount();
    const r = await httpGql(url, SET, vars, AUTH);
    expect(r.errors).toBeUndefined();
    expect(r.data.setDescription).toMatchObject({ __typename: "InvalidInputError", field });
    expect(r.data.setDescription.message).toMatch(message);
    expect(await humanCount()).toBe(before);
  });

  it("refuses a 1 MB text before parsing it (413 BODY_TOO_LARGE) and writes nothing", async () => {
    const before = await humanCount();
    const r = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...AUTH },
      body: JSON.stringify({ query: SET, variables: { text: "a".repeat(1_000_000) } }),
    });
    expect(r.status).toBe(413);
    expect((await r.json()).errors[0].extensions.code).toBe("BODY_TOO_LARGE");
    expect(await humanCount()).toBe(before);
  });

  it("accepts texts at their limits, newlines and tabs in prose, CR LF as LF, and blank author or reason as unset", async () => {
    const text = `${"c".repeat(TEXT_LIMITS.descriptionText.max - 6)}\r\n\tend`;
    const r = await httpGql(url, SET, { text, author: "d".repeat(TEXT_LIMITS.author.max), reason: "Line one.\nLine two." }, AUTH);
    expect(r.data.setDescription).toMatchObject({ __typename: "Description", author: "d".repeat(200), reason: "Line one.\nLine two." });
    expect(r.data.setDescription.text).toBe(`${"c".repeat(TEXT_LIMITS.descriptionText.max - 6)}\n\tend`);
    const blank = await httpGql(url, SET, { text: "  Plain.  ", author: "  ", reason: "" }, AUTH);
    expect(blank.data.setDescription).toEqual({ __typename: "Description", text: "Plain.", author: "api", reason: null });
  });
});

describe("regenerateDescription", () => {
  it.each([
    ["a 90 KB reason", { reason: HUGE }, "InvalidInputError", "reason"],
    ["a reason one over the limit", { reason: "r".repeat(TEXT_LIMITS.reason.max + 1) }, "InvalidInputError", "reason"],
    ["a NUL in the reason", { reason: "\u0000" }, "InvalidInputError", "reason"],
    ["a 90 KB prompt", { params: { prompt: HUGE } }, "ParameterOutOfRangeError", "prompt"],
    ["a prompt one over the limit", { params: { prompt: "p".repeat(TEXT_LIMITS.prompt.max + 1) } }, "ParameterOutOfRangeError", "prompt"],
    ["an escape sequence in the prompt", { params: { prompt: "Describe\u001b[2J" } }, "ParameterOutOfRangeError", "prompt"],
    ["a lone surrogate in the prompt", { params: { prompt: "Describe \udc00" } }, "ParameterOutOfRangeError", "prompt"],
  ] as const)("refuses %s and queues nothing", async (_name, vars, type, field) => {
    const r = await httpGql(url, REGENERATE, vars, AUTH);
    expect(r.errors).toBeUndefined();
    expect(r.data.regenerateDescription).toMatchObject({ __typename: type, field });
    expect(r.data.regenerateDescription.message.length).toBeLessThan(200);
    expect(await t.db.job.count()).toBe(0);
  });

  it("accepts a multi-line prompt and reason at their limits", async () => {
    const prompt = `Describe this.\n${"p".repeat(TEXT_LIMITS.prompt.max - 15)}`;
    const reason = "r".repeat(TEXT_LIMITS.reason.max);
    const r = await httpGql(url, REGENERATE, { params: { prompt }, reason }, AUTH);
    expect(r.data.regenerateDescription).toMatchObject({ __typename: "Job", reason, params: { prompt } });
  });
});

describe("describeMissing", () => {
  it.each([
    ["a 90 KB creator", HUGE, /creator must have at most 200 characters/],
    ["a NUL in the creator", "goya\u0000", /U\+0000/],
    ["a newline in the creator", "goya\nQ5432", /U\+000A/],
  ])("refuses %s with InvalidInputError and queues nothing", async (_name, creator, message) => {
    const r = await httpGql(url, MISSING, { creator }, AUTH);
    expect(r.errors).toBeUndefined();
    expect(r.data.describeMissing).toMatchObject({ __typename: "InvalidInputError", field: "creator" });
    expect(r.data.describeMissing.message).toMatch(message);
    expect(await t.db.job.count()).toBe(0);
  });

  it("still queues by a creator's name or with a blank creator (all creators)", async () => {
    expect((await httpGql(url, MISSING, { creator: "  bea escultora " }, AUTH)).data.describeMissing).toEqual({ __typename: "DescribeMissingPayload", queued: 1 });
    await t.db.job.deleteMany();
    const all = (await httpGql(url, MISSING, { creator: " " }, AUTH)).data.describeMissing;
    expect(all.__typename).toBe("DescribeMissingPayload");
    expect(all.queued).toBeGreaterThanOrEqual(1);
  });
});

describe("jobs(status)", () => {
  it("refuses a list longer than the statuses there are with BAD_USER_INPUT", async () => {
    const status = Array.from({ length: 6 }, () => "QUEUED");
    const r = await httpGql(url, `query($status: [JobStatus!]) { jobs(status: $status) { edges { node { id } } } }`, { status });
    expect(r.errors?.[0]).toMatchObject({ message: "status may name at most 5 statuses (got 6)", extensions: { code: "BAD_USER_INPUT" } });
  });
});
