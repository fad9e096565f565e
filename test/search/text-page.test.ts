import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readConnection } from "../../src/db.js";
import { prepareSearch, searchArtworks, searchPage } from "../../src/search/search.js";
import { createTestDb, onPostgres, type TestDb } from "../support/db.js";
import { makeArtwork, makeGoya } from "../support/factories.js";

/**
 * A TEXT page is exactly what the definition gives (every match by BM25, ties in id order) at every
 * size and offset, and each hit carries its own text's snippet. Ties are built in: works with the
 * same title and description rank equal, and pages cut through them.
 */
describe.skipIf(onPostgres)("TEXT pages", () => {
  let t: TestDb;
  const WORDS = ["dog", "hound", "night", "river", "soldier", "lantern", "bridge", "storm"];

  beforeAll(async () => {
    t = await createTestDb();
    const goya = await makeGoya(t.db);
    let x = 7;
    const pick = () => WORDS[(x = (x * 1103515245 + 12345) % 2 ** 31) % WORDS.length]!;
    for (let i = 0; i < 60; i++) {
      // Every fourth work is one of a few identical texts: equal ranks, many of them.
      const description = i % 4 === 0 ? `A dog by the river at night, number ${i % 3}.` : `A ${pick()} and a ${pick()} near the ${pick()}, then a ${pick()}.`;
      await makeArtwork(t.db, { title: i % 4 === 0 ? "Dog" : `Study ${i}`, creators: [{ id: goya.id }], description });
    }
  });

  afterAll(() => t.close());

  /** The definition, independently: BM25 with the column weights, ties by id. */
  function expected(query: string): number[] {
    const match = query === "dog river" ? '"dog" "river"' : `"${query}"`;
    return (
      readConnection(t.db)
        .prepare(`SELECT rowid FROM artwork_fts WHERE artwork_fts MATCH ? ORDER BY bm25(artwork_fts, 10, 1, 4, 2), rowid`)
        .pluck()
        .all(match) as number[]
    );
  }

  it.each(["dog", "river", "night", "dog river"])("pages of %j, of every size and at every offset, are the ranking's rows in order", async (query) => {
    const all = expected(query);
    expect(all.length).toBeGreaterThan(8);
    for (const limit of [1, 2, 3, 5, 10]) {
      for (let offset = 0; offset <= all.length; offset++) {
        const page = await searchArtworks(t.db, query, { limit, offset, mode: "TEXT" });
        expect(page.hits.map((h) => h.artworkId), `limit ${limit}, offset ${offset}`).toEqual(all.slice(offset, offset + limit));
        expect(page.hits.map((h) => h.rank)).toEqual(page.hits.map((_, i) => offset + i + 1));
        expect(page.hasMore).toBe(offset + limit < all.length);
      }
    }
  });

  it.each([3, 12])("gives each hit of a page of %i its BM25 score and its own snippet", async (limit) => {
    const search = await prepareSearch(t.db, "dog", {}, { mode: "TEXT" });
    const page = (await searchPage(t.db, search, limit)) as Awaited<ReturnType<typeof searchArtworks>>;
    expect(page.hits).toHaveLength(limit);
    const texts = new Map((readConnection(t.db).prepare(`SELECT rowid AS id, description FROM artwork_fts`).all() as { id: number; description: string }[]).map((r) => [r.id, r.description]));
    const scores = readConnection(t.db)
      .prepare(`SELECT rowid AS id, -bm25(artwork_fts, 10, 1, 4, 2) AS score FROM artwork_fts WHERE artwork_fts MATCH '"dog"'`)
      .all() as { id: number; score: number }[];
    const byId = new Map(scores.map((s) => [s.id, s.score]));
    for (const hit of page.hits) {
      expect(hit.score).toBe(byId.get(hit.artworkId));
      expect(hit.snippet).toMatch(/\uE000dog\uE001/i);
      expect(hit.snippet!.replace(/[\uE000\uE001]/g, "").replace(/…/g, "")).toSatisfy((s: string) => texts.get(hit.artworkId)!.includes(s.trim()));
      expect(hit.matchedBy).toEqual(["TEXT"]);
    }
  });
});
