import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { createGraphqlApp, type Yoga } from "../../src/graphql/yoga.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { gql } from "../support/graphql.js";

let t: TestDb;
let yoga: Yoga;

beforeAll(async () => {
  t = await createTestDb();
  yoga = createGraphqlApp({ db: t.db, config: loadConfig({ SYNC_CRON: "0 3 * * *", SYNC_TIMEZONE: "UTC" }) });
  await t.db.syncRun.create({ data: { status: "SUCCEEDED", full: true, creators: '["Q5432"]', seen: 35, created: 35, finishedAt: new Date() } });
  await t.db.syncRun.create({
    data: {
      status: "SUCCEEDED",
      creators: '["Q5432"]',
      seen: 35,
      unchanged: 34,
      failed: 1,
      failures: { create: [{ stage: "normalise", fileTitle: "File:Goya bomb.png", reason: "cannot normalise: Input image exceeds pixel limit" }] },
    },
  });
});
afterAll(() => t.close());

describe("sync runs in GraphQL", () => {
  it("lists runs newest first, with their failures", async () => {
    const r = await gql(yoga, `{ syncRuns { number status full creators seen created unchanged failed failures { stage fileTitle itemQid reason } } }`);
    expect(r.errors).toBeUndefined();
    expect(r.data.syncRuns).toEqual([
      {
        number: 2, status: "SUCCEEDED", full: false, creators: ["Q5432"], seen: 35, created: 0, unchanged: 34, failed: 1,
        failures: [{ stage: "normalise", fileTitle: "File:Goya bomb.png", itemQid: null, reason: "cannot normalise: Input image exceeds pixel limit" }],
      },
      { number: 1, status: "SUCCEEDED", full: true, creators: ["Q5432"], seen: 35, created: 35, unchanged: 0, failed: 0, failures: [] },
    ]);
    expect((await gql(yoga, `{ syncRuns(limit: 1) { number } }`)).data.syncRuns).toEqual([{ number: 2 }]);
    expect((await gql(yoga, `{ syncRuns(limit: 1000) { number } }`)).errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
  });

  it("answers lastSyncRun and nextSyncAt", async () => {
    const r = await gql(yoga, `{ lastSyncRun { number trigger } nextSyncAt }`);
    expect(r.data.lastSyncRun).toEqual({ number: 2, trigger: "manual" });
    const next = new Date(r.data.nextSyncAt as string);
    expect(next.getUTCHours()).toBe(3);
    expect(next.getTime()).toBeGreaterThan(Date.now());
    expect(next.getTime() - Date.now()).toBeLessThanOrEqual(86_400_000);
  });
});
