import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { createGraphqlApp, type Yoga } from "../../src/graphql/yoga.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { addDescription, makeArtwork, makeGoya } from "../support/factories.js";
import { gql } from "../support/graphql.js";

/** Lists under an object are bounded and priced like top-level ones: a run's failures, a work's history, explicit nulls. */
let t: TestDb;
let yoga: Yoga;

beforeAll(async () => {
  t = await createTestDb();
  yoga = createGraphqlApp({ db: t.db, config: loadConfig({}) });
  const run = await t.db.syncRun.create({ data: { status: "PARTIAL", failed: 1500, finishedAt: new Date() } });
  await t.db.syncFailure.createMany({ data: Array.from({ length: 1500 }, (_, i) => ({ syncRunId: run.id, stage: "normalise", reason: `bad ${i}` })) });
  const goya = await makeGoya(t.db);
  const work = await makeArtwork(t.db, { qid: "Q31", creators: [{ id: goya.id }] });
  for (let i = 0; i < 60; i++) await addDescription(t.db, work.id, `Version ${i}.`);
});
afterAll(() => t.close());

const codes = (r: { errors?: { extensions?: Record<string, unknown> }[] }) => (r.errors ?? []).map((e) => e.extensions?.code);

describe("a sync run's failures", () => {
  it("come 100 at a time by default, up to 1,000 when asked, oldest first", async () => {
    const byDefault = await gql(yoga, `{ syncRuns { failed failures { reason } } }`);
    expect(byDefault.errors).toBeUndefined();
    expect(byDefault.data.syncRuns[0].failed).toBe(1500);
    expect(byDefault.data.syncRuns[0].failures).toHaveLength(100);
    expect(byDefault.data.syncRuns[0].failures[0].reason).toBe("bad 0");
    const asked = await gql(yoga, `{ syncRuns(limit: 1) { failures(limit: 1000) { reason } } }`);
    expect(asked.data.syncRuns[0].failures).toHaveLength(1000);
    const explicitNull = await gql(yoga, `{ syncRuns { failures(limit: null) { reason } } }`);
    expect(explicitNull.data.syncRuns[0].failures).toHaveLength(100);
  });

  it("refuses a limit outside 0…1000, and prices the nested list so a page of runs cannot fetch them all", async () => {
    for (const limit of [1001, -1]) {
      const r = await gql(yoga, `{ syncRuns(limit: 1) { failures(limit: ${limit}) { reason } } }`);
      expect(codes(r)).toContain("BAD_USER_INPUT");
    }
    const many = await gql(yoga, `{ syncRuns(limit: 100) { failures(limit: 1000) { reason } } }`);
    expect(codes(many)).toContain("ROW_LIMIT");
    expect(many.data).toBeUndefined();
  });
});

describe("an artwork's description history", () => {
  it("returns the newest 50 by default and more on request, within 500", async () => {
    const r = await gql(yoga, `{ artwork(id: "Q31") { ... on Artwork { descriptions { text } } } }`);
    expect(r.data.artwork.descriptions).toHaveLength(50);
    expect(r.data.artwork.descriptions[0].text).toBe("Version 59.");
    const all = await gql(yoga, `{ artwork(id: "Q31") { ... on Artwork { descriptions(limit: 500) { text } } } }`);
    expect(all.data.artwork.descriptions).toHaveLength(60);
    expect(codes(await gql(yoga, `{ artwork(id: "Q31") { ... on Artwork { descriptions(limit: 501) { text } } } }`))).toContain("BAD_USER_INPUT");
  });
});

describe("explicit nulls", () => {
  it("limit: null on a list is served as its default (and priced so: see test/graphql/limits/cost.test.ts)", async () => {
    const r = await gql(yoga, `{ artworks(limit: null) { qid } syncRuns(limit: null) { number } }`);
    expect(r.errors).toBeUndefined();
    expect(r.data.artworks).toHaveLength(1);
    expect(r.data.syncRuns).toHaveLength(1);
  });
});
