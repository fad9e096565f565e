import { afterAll, beforeAll, expect, it } from "vitest";
import { findCreatorIds } from "../../src/store/artwork-filter.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { makeCreator, makeGoya } from "../support/factories.js";

let t: TestDb;
beforeAll(async () => {
  t = await createTestDb();
});
afterAll(() => t.close());

it("reuses a found creator lookup for ten seconds, and never keeps 'nothing found'", async () => {
  const now = Date.now();
  expect(await findCreatorIds(t.db, "goya", now)).toEqual([]);
  const goya = await makeGoya(t.db);
  // Not kept while empty: the creator a sync just added is found at once.
  expect(await findCreatorIds(t.db, "goya", now + 1)).toEqual([goya.id]);
  const other = await makeCreator(t.db, { labels: { en: "Javier Goya" } });
  expect(await findCreatorIds(t.db, "goya", now + 5_000)).toEqual([goya.id]);
  expect((await findCreatorIds(t.db, "goya", now + 10_002)).sort()).toEqual([goya.id, other.id].sort());
  expect(await findCreatorIds(t.db, "Q5432", now)).toEqual([goya.id]);
});
