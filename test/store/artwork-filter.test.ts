import { afterAll, beforeAll, expect, it } from "vitest";
import Database from "better-sqlite3";
import { findCreatorIds } from "../../src/store/artwork-filter.js";
import { createTestDb, onPostgres, type TestDb } from "../support/db.js";
import { makeCreator, makeGoya } from "../support/factories.js";

let t: TestDb;
beforeAll(async () => {
  t = await createTestDb();
});
afterAll(() => t.close());

it("reuses a found creator lookup until the next commit, and never keeps 'nothing found'", async () => {
  expect(await findCreatorIds(t.db, "goya")).toEqual([]);
  const goya = await makeGoya(t.db);
  // Not kept while empty: the creator a sync just added is found at once.
  expect(await findCreatorIds(t.db, "goya")).toEqual([goya.id]);
  const other = await makeCreator(t.db, { labels: { en: "Javier Goya" } });
  // A commit by this process's writer: found by the next lookup.
  expect((await findCreatorIds(t.db, "goya")).sort()).toEqual([goya.id, other.id].sort());
  expect(await findCreatorIds(t.db, "Q5432")).toEqual([goya.id]);
});

// SQLite-only: the other process writes through its own better-sqlite3 connection to the file (on
// PostgreSQL, test/store/postgres-data-version.test.ts commits from another client and a raw connection).
it.skipIf(onPostgres)("sees a creator renamed by another connection (another process) at the next lookup", async () => {
  const painter = await makeCreator(t.db, { labels: { en: "Anonymous Master" } });
  expect(await findCreatorIds(t.db, "anonymous master")).toEqual([painter.id]);
  expect(await findCreatorIds(t.db, "zurbaran")).toEqual([]);
  const other = new Database(t.file);
  try {
    other.prepare("UPDATE CreatorLabel SET label = 'Zurbaran', normalized = ' zurbaran ' WHERE creatorId = ?").run(painter.id);
  } finally {
    other.close();
  }
  expect(await findCreatorIds(t.db, "anonymous master")).toEqual([]);
  expect(await findCreatorIds(t.db, "zurbaran")).toEqual([painter.id]);
});
