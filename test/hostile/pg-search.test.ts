import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { closeDb, type Db, openDatabase } from "../../src/db.js";
import { createGraphqlApp, type Yoga } from "../../src/graphql/yoga.js";
import { parseSearchQuery, renderExcludedTsQuery, renderWantedTsQuery, SearchQueryError } from "../../src/search/fts-query.js";
import { searchArtworks } from "../../src/search/search.js";
import { runCli } from "../support/cli.js";
import { addDescription, makeArtwork, makeCreator, makeGoya } from "../support/factories.js";
import { gql } from "../support/graphql.js";
import { startPostgres, type TestPostgres } from "../support/postgres.js";

/**
 * Search on PostgreSQL as a user and an attacker meet it: GraphQL through yoga.fetch and the
 * command line, on a real PostgreSQL 15 (test/support/postgres.ts) migrated by artdesc, whatever
 * TEST_DATABASE says. Accents, prefixes, phrases and exclusions; hostile query text that must give
 * results or a typed BAD_USER_INPUT error, never an SQL error; triggers that keep the index current.
 */

let server: TestPostgres;
let url: string;
let db: Db;
let yoga: Yoga;
let raw: pg.Client;
const ids: Record<string, number> = {};

const SEARCH = `query($q: String!, $first: Int) {
  search(query: $q, first: $first) {
    __typename totalCount edges { node { score snippet artwork { qid } } }
  }
}`;
type Hit = { score: number; snippet: string | null; artwork: { qid: string } };

async function searchOrError(q: string, first = 20): Promise<{ hits?: Hit[]; total?: number; error?: { message: string; code?: unknown; argument?: unknown } }> {
  const r = await gql(yoga, SEARCH, { q, first });
  if (!r.errors) return { hits: r.data.search.edges.map((e: { node: Hit }) => e.node), total: r.data.search.totalCount };
  expect(r.errors).toHaveLength(1);
  return { error: { message: r.errors[0]!.message, ...r.errors[0]!.extensions } };
}
async function hits(q: string): Promise<Hit[]> {
  const { hits, error } = await searchOrError(q);
  expect(error).toBeUndefined();
  return hits!;
}
const qids = async (q: string) => (await hits(q)).map((h) => h.artwork.qid);

beforeAll(async () => {
  server = await startPostgres();
  url = await server.createDatabase();
  ({ db } = await openDatabase(url));
  yoga = createGraphqlApp({ db, config: loadConfig({ GRAPHQL_RESPONSE_CACHE: "false" }) });
  raw = new pg.Client({ connectionString: url });
  await raw.connect();
  const goya = await makeGoya(db);
  const other = await makeCreator(db, { qid: "Q296", labels: { en: "Claude Monet" } });
  const make = async (qid: string, title: string, description: string | null, creator = goya.id, titles?: Record<string, string>) =>
    (ids[qid] = (await makeArtwork(db, { qid, title, titles, description, creators: [{ id: creator }] })).id);
  await make("Q1", "Duelo a garrotazos", "Two men fight with cudgels, knee-deep in mud, under a heavy sky.");
  await make("Q2", "Saturno devorando a su hijo", "Saturn devours his son in the dark; his eyes are wide.");
  await make("Q3", "El tres de mayo de 1808", "A firing squad aims at a man in a white shirt. El fusilamiento ocurre de noche en Madrid.", goya.id, {
    es: "Los fusilamientos del tres de mayo",
    en: "The Third of May 1808",
  });
  await make("Q4", "Perro semihundido", "A dog's head rises above a slope of sand.");
  await make("Q5", "Paisaje", "Un perro duerme junto a un café en la Straße, bajo un árbol.", other.id);
  await make("Q6", "Água-forte", null, other.id);
}, 60_000);

afterAll(async () => {
  await raw?.end();
  if (db) await closeDb(db);
  server?.stop();
});

describe("words as FTS5 finds them: accents and case folded, no stemming", () => {
  it("finds a title word in any case, and the same hits for Saturno, saturno and SATURNO", async () => {
    expect(await qids("garrotazos")).toEqual(["Q1"]);
    expect(await qids("GARROTAZOS duelo")).toEqual(["Q1"]);
    const forms = await Promise.all(["Saturno", "saturno", "SATURNO", "sáturno"].map(hits));
    expect(forms[0]!.map((h) => h.artwork.qid)).toEqual(["Q2"]);
    for (const f of forms) expect(f).toEqual(forms[0]);
  });

  it("matches an accented query to unaccented text and back (unaccent on both sides)", async () => {
    expect(await qids("fusilamiento ")).toEqual(["Q3"]);
    expect(await qids("fusilamíento ")).toEqual(["Q3"]);
    expect(await qids("FUSILAMIENTOS")).toEqual(["Q3"]);
    expect(await qids("agua forte")).toEqual(["Q6"]);
    expect(await qids("arbol ")).toEqual(["Q5"]);
    expect(await qids("cafe ")).toEqual(["Q5"]);
    expect(await qids("strasse")).toEqual(["Q5"]);
    // No stemming: the plural is another word.
    expect(await qids("fusilamientos ")).toEqual(["Q3"]);
    expect(await qids("garrotazo ")).toEqual([]);
  });

  it("marks the original, accented words in the snippet, text escaped", async () => {
    const [hit] = await hits("cafe arbol ");
    expect(hit!.snippet).toBe("Un perro duerme junto a un <mark>café</mark> en la Straße, bajo un <mark>árbol</mark>.");
    const [dog] = await hits("dog's ");
    expect(dog!.snippet).toMatch(/^A <mark>dog<\/mark>'(<mark>)?s(<\/mark>)? head rises above a slope of sand\.$/);
  });

  it("ranks a title match above a description match, higher score first", async () => {
    const found = await hits("perro ");
    expect(found.map((h) => h.artwork.qid)).toEqual(["Q4", "Q5"]);
    expect(found[0]!.score).toBeGreaterThan(found[1]!.score);
    expect(found[1]!.score).toBeGreaterThan(0);
  });
});

describe("prefixes, phrases and exclusions", () => {
  it("matches prefixes: explicit fusil*, implied while typing, none once the word is whole", async () => {
    expect(await qids("fusil*")).toEqual(["Q3"]);
    expect(await qids("fusil")).toEqual(["Q3"]);
    expect(await qids("fusil ")).toEqual([]);
    expect(await qids("garrot")).toEqual(["Q1"]);
    // "dog" is a whole word of the index: not searched as dog*.
    const id = (await makeArtwork(db, { qid: "Q90", title: "Dogged", description: "A dogged climber." })).id;
    expect(await qids("dog")).toEqual(["Q4"]);
    expect((await qids("dog*")).sort()).toEqual(["Q4", "Q90"]);
    await db.artwork.delete({ where: { id } });
  });

  it("matches phrases only as phrases, a prefix on the phrase's last word", async () => {
    expect(await qids('"tres de mayo"')).toEqual(["Q3"]);
    expect(await qids('"mayo de tres"')).toEqual([]);
    expect(await qids('"firing sq"*')).toEqual(["Q3"]);
    expect(await qids("knee-deep")).toEqual(["Q1"]);
  });

  it("excludes words and phrases", async () => {
    const goya = (await qids("goya")).sort();
    expect(goya).toEqual(["Q1", "Q2", "Q3", "Q4"]);
    expect((await qids("goya -saturno")).sort()).toEqual(["Q1", "Q3", "Q4"]);
    expect((await qids('goya -"firing squad" -mud')).sort()).toEqual(["Q2", "Q4"]);
    // Wanted words that fold to nothing match nothing, not "everything but the excluded".
    const marks = await searchOrError("\u0301\u0301\u0301 -saturno");
    expect(marks.hits ?? []).toEqual([]);
  });
});

describe("hostile query text", () => {
  const HOSTILE = [
    "'",
    "''",
    "\\",
    "\\'",
    "fusil:*",
    "fusil:*A",
    ":*",
    "a:*b",
    "&|!()<>",
    "!fusil",
    "fusil & | saturno",
    "fusil <-> saturno",
    "fusil <2> saturno",
    "'fusil' & 'saturno'",
    "'); DROP TABLE \"Artwork\"; --",
    "garrotazos'); DELETE FROM artwork_fts; --",
    "$1",
    "E'\\x00'",
    "::tsquery",
    "duelo\u0000garrotazos",
    "\u0001\u0002\u001f\u007f",
    "\ud800 garrotazos",
    "garrotazos \udfff",
    "x".repeat(500),
    "é".repeat(500),
    "𝔡".repeat(250),
    Array.from({ length: 32 }, (_, i) => `w${i}:*`).join(" "),
    "-a -b -c garrotazos",
    '"' + "a ".repeat(240) + '"',
    "\u202egarrotazos",
    "ｇａｒｒｏｔａｚｏｓ",
  ];

  it.each(HOSTILE.map((q) => [q]))("answers %j with results or a BAD_USER_INPUT error on the query, never an SQL error", async (q) => {
    const { hits, error } = await searchOrError(q);
    if (error) expect(error).toMatchObject({ code: "BAD_USER_INPUT", argument: "query" });
    else expect(Array.isArray(hits)).toBe(true);
  });

  it("still finds the work when the hostile text surrounds real words, and the store is intact", async () => {
    expect(await qids("garrotazos'); DROP TABLE \"Artwork\"; --")).toEqual([]);
    expect(await qids("(garrotazos)")).toEqual(["Q1"]);
    expect(await qids("'garrotazos'")).toEqual(["Q1"]);
    expect(await qids("garrotazos:*")).toEqual(["Q1"]);
    expect(await qids("\\garrotazos\\")).toEqual(["Q1"]);
    expect(await db.artwork.count()).toBeGreaterThanOrEqual(6);
    const [{ n }] = (await raw.query<{ n: number }>(`SELECT count(*)::int AS n FROM artwork_fts`)).rows as [{ n: number }];
    expect(n).toBe(await db.artwork.count({ where: { state: "ACTIVE" } }));
  });

  it("keeps hostile filter text out of the SQL: a creator filter is matched as words, never run", async () => {
    const FILTERED = `query($q: String!, $creator: String, $attribution: [AttributionKind!]) {
      search(query: $q, filter: { creator: $creator, attribution: $attribution }) { ... on QuerySearchConnection { totalCount edges { node { artwork { qid } } } } }
    }`;
    for (const creator of ["goya'); DROP TABLE \"Artwork\"; --", "$1", "\\'", "Q5432 OR 1=1", "%", "_", "goya\u0000"]) {
      const r = await gql(yoga, FILTERED, { q: "garrotazos", creator });
      if (r.errors) expect(r.errors[0]!.extensions).toMatchObject({ code: "BAD_USER_INPUT" });
      else expect(r.data.search.edges.map((e: { node: { artwork: { qid: string } } }) => e.node.artwork.qid)).toEqual(creator === "goya\u0000" ? ["Q1"] : []);
    }
    const byQid = await gql(yoga, FILTERED, { q: "goya", creator: "Q296" });
    expect(byQid.data.search.totalCount).toBe(0);
    const workshop = await gql(yoga, FILTERED, { q: "goya", creator: "goya", attribution: ["WORKSHOP_OF"] });
    expect(workshop.data.search.totalCount).toBe(0);
    const creator = await gql(yoga, FILTERED, { q: "garrotazos", creator: "goya", attribution: ["CREATOR"] });
    expect(creator.data.search.edges.map((e: { node: { artwork: { qid: string } } }) => e.node.artwork.qid)).toEqual(["Q1"]);
  });

  it("turns 400 random strings of operators, quotes and letters into tsquery text PostgreSQL accepts", async () => {
    const alphabet = [..."'\"\\:*&|!()<>-_ \t\n.,;aéßZ0字", "<->", ":*", "\u0301", "\u0000", "'''", "\\'"];
    let seed = 42;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    let parsed = 0;
    for (let i = 0; i < 400; i++) {
      const q = Array.from({ length: 1 + Math.floor(random() * 30) }, () => alphabet[Math.floor(random() * alphabet.length)]).join("");
      let terms;
      try {
        terms = parseSearchQuery(q);
      } catch (err) {
        expect(err).toBeInstanceOf(SearchQueryError);
        continue;
      }
      parsed++;
      for (const text of [renderWantedTsQuery(terms), renderExcludedTsQuery(terms)]) {
        if (text !== null) await raw.query(`SELECT to_tsquery('artwork_fts_words', $1)`, [text]);
      }
      const page = await searchArtworks(db, q, { limit: 5 });
      expect(Array.isArray(page.hits)).toBe(true);
    }
    expect(parsed).toBeGreaterThan(100);
  });
});

describe("the index follows every change (triggers)", () => {
  it("a new description, a description corrected in place, a retitled work", async () => {
    const id = (await makeArtwork(db, { qid: "Q20", title: "Untitled sketch", creators: [] })).id;
    expect(await qids("heron")).toEqual([]);
    await addDescription(db, id, "A grey heron stands in shallow water.");
    expect(await qids("heron")).toEqual(["Q20"]);
    const current = await db.artwork.findUniqueOrThrow({ where: { id }, select: { currentDescriptionId: true } });
    await db.description.update({ where: { id: current.currentDescriptionId! }, data: { text: "A white egret stands in shallow water." } });
    expect(await qids("heron")).toEqual([]);
    expect(await qids("egret")).toEqual(["Q20"]);
    await db.artwork.update({ where: { id }, data: { title: "Garza", titles: JSON.stringify({ es: "Garza blanca" }) } });
    expect(await qids("garza blanca")).toEqual(["Q20"]);
    expect(await qids("sketch")).toEqual([]);
  });

  it("a merged work leaves the index and comes back; a deleted one leaves it", async () => {
    await db.artwork.update({ where: { id: ids.Q1 }, data: { state: "MERGED", mergedIntoQid: "Q2" } });
    expect(await qids("garrotazos")).toEqual([]);
    await db.artwork.update({ where: { id: ids.Q1 }, data: { state: "ACTIVE", mergedIntoQid: null } });
    expect(await qids("garrotazos")).toEqual(["Q1"]);
    const id = (await makeArtwork(db, { qid: "Q21", title: "Ephemeral quokka" })).id;
    expect(await qids("quokka")).toEqual(["Q21"]);
    await db.artwork.delete({ where: { id } });
    expect(await qids("quokka")).toEqual([]);
  });

  it("a creator label added and removed changes every work of the creator", async () => {
    const monet = await db.creator.findUniqueOrThrow({ where: { qid: "Q296" } });
    const label = await db.creatorLabel.create({ data: { creatorId: monet.id, language: "fr", label: "Oscar-Claude Monet", normalized: " oscar claude monet " } });
    expect((await qids("oscar")).sort()).toEqual(["Q5", "Q6"]);
    await db.creatorLabel.delete({ where: { id: label.id } });
    expect(await qids("oscar")).toEqual([]);
  });

  it("a write by another process (plain SQL on its own connection) shows in the next search: the kept results follow the commit counter", async () => {
    expect(await qids("lantern")).toEqual([]);
    await raw.query(`UPDATE "Description" SET "text" = "text" || ' A lantern lights the scene.' WHERE "id" = (SELECT "currentDescriptionId" FROM "Artwork" WHERE "qid" = 'Q3')`);
    expect(await qids("lantern")).toEqual(["Q3"]);
    const [hit] = await hits("lantern");
    expect(hit!.snippet).toContain("A <mark>lantern</mark> lights the scene.");
  });
});

/** The exit code once the process has closed its output. */
const closed = (p: ReturnType<typeof runCli>) =>
  new Promise<number | null>((resolve) => (p.child.exitCode !== null && p.child.stdout!.closed ? resolve(p.child.exitCode) : p.child.once("close", (code) => resolve(code))));

describe("command line on PostgreSQL", () => {
  it("artdesc search prints marked hits; artdesc search-index rebuild restores an emptied index", async () => {
    const s = runCli(["search", "fusilamiento", "noche"], { DATABASE_URL: url });
    expect(await closed(s)).toBe(0);
    expect(s.output()).toMatch(/^1\. Q3 {2}El tres de mayo de 1808( \(\d+\))? {2}score \d+\.\d\d$/m);
    expect(s.output()).toContain("El [fusilamiento] ocurre de [noche] en Madrid.");
    const bad = runCli(["search", "'&|!"], { DATABASE_URL: url });
    expect(await closed(bad)).toBe(2);
    expect(bad.output()).toContain("no words to look for");

    await raw.query(`DELETE FROM artwork_fts`);
    expect(await qids("garrotazos")).toEqual([]);
    const rebuild = runCli(["search-index", "rebuild"], { DATABASE_URL: url });
    expect(await closed(rebuild)).toBe(0);
    const active = await db.artwork.count({ where: { state: "ACTIVE" } });
    expect(rebuild.output()).toContain(`search index rebuilt: ${active} active artworks`);
    expect(await qids("garrotazos")).toEqual(["Q1"]);
  }, 120_000);
});
