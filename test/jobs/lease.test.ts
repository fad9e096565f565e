import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeDb, createDb, type Db } from "../../src/db.js";
import { acquireLease, leaseHolder, releaseLease, renewLease, withLease } from "../../src/jobs/lease.js";
import { createTestDb, type TestDb } from "../support/db.js";

let t: TestDb;
// A second connection, as a second process would have. Only sequential use: two connections in
// one thread cannot overlap writes (better-sqlite3 waits synchronously for the other's lock).
let other: Db;

beforeAll(async () => {
  t = await createTestDb();
  other = await createDb(t.url);
});
afterAll(async () => {
  await closeDb(other);
  await t.close();
});

describe("lease", () => {
  it("is held by one holder at a time, across connections", async () => {
    expect(await acquireLease(t.db, "sync", "a", 10_000)).toBe(true);
    expect(await acquireLease(other, "sync", "b", 10_000)).toBe(false);
    expect(await acquireLease(t.db, "sync", "a", 10_000)).toBe(true); // re-entrant for its holder
    expect(await leaseHolder(other, "sync")).toBe("a");
    await releaseLease(other, "sync", "b"); // not b's to release
    expect(await leaseHolder(t.db, "sync")).toBe("a");
    await releaseLease(t.db, "sync", "a");
    expect(await acquireLease(other, "sync", "b", 10_000)).toBe(true);
    await releaseLease(other, "sync", "b");
  });

  it("can be taken over once expired, and the old holder cannot renew it", async () => {
    const past = new Date(Date.now() - 60_000);
    expect(await acquireLease(t.db, "job:1", "dead", 1_000, past)).toBe(true);
    expect(await acquireLease(other, "job:1", "alive", 10_000)).toBe(true);
    expect(await renewLease(t.db, "job:1", "dead", 10_000)).toBe(false);
    expect(await renewLease(other, "job:1", "alive", 10_000)).toBe(true);
  });

  it("lets exactly one of many concurrent claimants win", async () => {
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => acquireLease(t.db, "race", `h${i}`, 10_000)),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it("withLease runs once, releases afterwards, and refuses while held", async () => {
    const inner = await withLease(t.db, "w", "x", 5_000, async () => withLease(t.db, "w", "y", 5_000, async () => "never"));
    expect(inner).toEqual({ acquired: true, result: { acquired: false, holder: "x" } });
    expect(await leaseHolder(t.db, "w")).toBeNull();
  });
});
