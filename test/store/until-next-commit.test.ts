import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Db } from "../../src/db.js";
import { untilNextCommit } from "../../src/store/data-version.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { makeArtwork } from "../support/factories.js";

let t: TestDb;
beforeAll(async () => {
  t = await createTestDb();
});
afterAll(async () => {
  await t?.close();
});

describe("untilNextCommit", () => {
  it("reads once per database version, shares a reading between callers at the same moment, and keeps no failure", async () => {
    let reads = 0;
    let fail = false;
    const count = untilNextCommit(async (db: Db) => {
      reads++;
      if (fail) throw new Error("disk I/O error");
      return db.artwork.count();
    });
    const first = await count(t.db);
    expect(await Promise.all([count(t.db), count(t.db), count(t.db)])).toEqual([first, first, first]);
    expect(reads).toBe(1);
    // A commit, by this process's writer here (another process's counts the same): read again.
    await makeArtwork(t.db);
    expect(await count(t.db)).toBe(first + 1);
    expect(reads).toBe(2);
    await makeArtwork(t.db);
    fail = true;
    await expect(count(t.db)).rejects.toThrow("disk I/O error");
    fail = false;
    expect(await count(t.db)).toBe(first + 2);
    expect(reads).toBe(4);
  });
});
