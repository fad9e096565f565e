import { offsetToCursor } from "@pothos/plugin-relay";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { closeDb, createDb, readConnection } from "../../src/db.js";
import { createGraphqlApp, type Yoga } from "../../src/graphql/yoga.js";
import { fusedHit, rebuildSearchIndex, searchArtworks, searchIndexSize } from "../../src/search/search.js";
import { searchForm } from "../../src/text/normalize.js";
import { createTestDb, onPostgres, type TestDb } from "../support/db.js";
import { addDescription, makeArtwork, makeCreator, makeGoya } from "../support/factories.js";
import { commandIo } from "../support/cli.js";
import { gql } from "../support/graphql.js";

let t: TestDb;
let yoga: Yoga;
const ids: Record<string, number> = {};

const SEARCH = `query($q: String!, $first: Int, $after: String, $filter: SearchFilter) {
  search(query: $q, first: $first, after: $after, filter: $filter) {
    __typename pageInfo { hasNextPage endCursor } edges { cursor node { score snippet artwork { qid title } } }
  }
}`;

type InputError = { message: string; code?: unknown; argument?: unknown };

/** The connection, or the one error bad input answers (its message, extensions.code and extensions.argument). */
async function searchOrError(query: string, variables: Record<string, unknown>): Promise<{ connection?: any; error?: InputError }> {
  const r = await gql(yoga, query, variables);
  if (!r.errors) return { connection: r.data.search };
  expect(r.errors).toHaveLength(1);
  expect(r.data).toBeNull();
  return { error: { message: r.errors[0]!.message, ...r.errors[0]!.extensions } };
}
async function search(q: string, extra: Record<string, unknown> = {}) {
  const { connection, error } = await searchOrError(SEARCH, { q, ...extra });
  expect(error).toBeUndefined();
  return connection;
}
async function searchError(q: string, extra: Record<string, unknown> = {}, query = SEARCH): Promise<InputError> {
  const { connection, error } = await searchOrError(query, { q, ...extra });
  expect(connection).toBeUndefined();
  return error!;
}
async function qids(q: string, extra: Record<string, unknown> = {}): Promise<string[]> {
  const s = await search(q, extra);
  expect(s.__typename).toBe("QuerySearchConnection");
  return s.edges.map((e: { node: { artwork: { qid: string } } }) => e.node.artwork.qid);
}

beforeAll(async () => {
  t = await createTestDb();
  yoga = createGraphqlApp({ db: t.db, config: loadConfig({}) });
  const goya = await makeGoya(t.db);
  const monet = await makeCreator(t.db, { qid: "Q296", labels: { en: "Claude Monet" } });
  ids.maria = (
    await makeArtwork(t.db, {
      qid: "Q101",
      title: "Portrait of María Luisa of Parma",
      titles: { en: "Portrait of María Luisa of Parma", es: "Retrato de María Luisa de Parma" },
      creators: [{ id: goya.id }],
      description: "A queen in a black dress stands before a dark curtain, holding a fan in her right hand.",
    })
  ).id;
  ids.donkey = (
    await makeArtwork(t.db, {
      qid: "Q102",
      title: "Asnografía",
      creators: [{ id: goya.id, attribution: "WORKSHOP_OF" }],
      description: "A donkey reading a book sits at a desk; a second donkey listens. Books are piled on the floor.",
      links: [{ property: "P180", qid: "Q7368", label: "donkey" }, { property: "P136", qid: "Q1792379", label: "satire" }],
    })
  ).id;
  ids.lilies = (await makeArtwork(t.db, { qid: "Q103", title: "Water Lilies", creators: [{ id: monet.id }] })).id;
  ids.book = (
    await makeArtwork(t.db, {
      qid: "Q104",
      title: "The Book",
      creators: [{ id: monet.id }],
      description: "A man reading by a window, light on the page.",
    })
  ).id;
});

afterAll(() => t.close());

describe("search", () => {
  it("ignores accents and case: Maria Luisa finds María Luisa, in any title language", async () => {
    expect(await qids("Maria Luisa")).toEqual(["Q101"]);
    expect(await qids("maría LUISA")).toEqual(["Q101"]);
    expect(await qids("retrato parma")).toEqual(["Q101"]);
    expect(await qids("asnografia")).toEqual(["Q102"]);
  });

  it("matches prefixes, explicit and while typing the last word", async () => {
    expect(await qids("donk")).toEqual(["Q102"]);
    expect(await qids("lil*")).toEqual(["Q103"]);
    expect(await qids("donk ")).toEqual([]);
    // A last word that is a whole indexed word is searched as that word; a partial one as a prefix.
    const id = (await makeArtwork(t.db, { qid: "Q151", title: "Library", description: "Tall bookcases line the wall." })).id;
    expect((await qids("book")).sort()).toEqual(["Q102", "Q104"]);
    expect(await qids("bookc")).toEqual(["Q151"]);
    expect((await qids("book*")).sort()).toEqual(["Q102", "Q104", "Q151"]);
    await t.db.artwork.delete({ where: { id } });
  });

  it("matches phrases only as phrases", async () => {
    expect(await qids('"donkey reading"')).toEqual(["Q102"]);
    expect(await qids('"reading donkey"')).toEqual([]);
    expect((await qids("reading")).sort()).toEqual(["Q102", "Q104"]);
    expect(await qids("reading -donkey")).toEqual(["Q104"]);
  });

  it("searches creator labels and depicted/genre labels", async () => {
    expect((await qids("lucientes")).sort()).toEqual(["Q101", "Q102"]);
    expect(await qids("satire")).toEqual(["Q102"]);
    expect((await qids("monet")).sort()).toEqual(["Q103", "Q104"]);
  });

  it("ranks a title match above a description match", async () => {
    // "book" is Q104's title and words in Q102's description.
    const s = await search("book ");
    const hits = s.edges.map((e: { node: { score: number; artwork: { qid: string } } }) => e.node);
    expect(hits.map((h: { artwork: { qid: string } }) => h.artwork.qid)).toEqual(["Q104", "Q102"]);
    expect(hits[0].score).toBeGreaterThan(hits[1].score);
    expect(hits[1].score).toBeGreaterThan(0);
  });

  it("highlights the matched words of the description in an HTML snippet", async () => {
    const [edge] = (await search("fan queen ")).edges;
    expect(edge.node.snippet).toBe("A <mark>queen</mark> in a black dress stands before a dark curtain, holding a <mark>fan</mark> in her right hand.");
    const lilies = await search("lilies");
    expect(lilies.edges[0].node.snippet).toBeNull();
    const id = (await makeArtwork(t.db, { qid: "Q150", title: "Markup", description: "A sign reads <b>&amp; owl</b>." })).id;
    const [markup] = (await search("owl")).edges;
    expect(markup.node.snippet).toBe("A sign reads &lt;b&gt;&amp;amp; <mark>owl</mark>&lt;/b&gt;.");
    await t.db.artwork.delete({ where: { id } });
    // A description holding the private-use characters that mark matches: they show as U+FFFD, not as marks.
    const own = (await makeArtwork(t.db, { qid: "Q151", title: "Marks", description: "A \uE000sign\uE001 shows a heron." })).id;
    const [heron] = (await search("heron")).edges;
    expect(heron.node.snippet).toBe("A \uFFFDsign\uFFFD shows a <mark>heron</mark>.");
    await t.db.artwork.delete({ where: { id: own } });
  });

  it("a meaning-only hit's snippet (the opening sentences) shows a description's own mark characters as U+FFFD", () => {
    const hit = fusedHit({ id: 1, score: 0, matchedBy: ["MEANING"], fused: 0.01 }, 1, "A \uE000sign\uE001 shows a heron.", null, 0.5);
    expect(hit.snippet).toBe("A \uFFFDsign\uFFFD shows a heron.");
  });

  it("filters by creator, attribution and description", async () => {
    expect((await qids("goya")).sort()).toEqual(["Q101", "Q102"]);
    expect(await qids("goya", { filter: { attribution: ["WORKSHOP_OF"] } })).toEqual(["Q102"]);
    expect(await qids("reading", { filter: { creator: "monet" } })).toEqual(["Q104"]);
    expect(await qids("reading", { filter: { creator: "Q5432" } })).toEqual(["Q102"]);
    expect(await qids("monet", { filter: { hasDescription: false } })).toEqual(["Q103"]);
    expect(await qids("monet", { filter: { creator: "nobody at all" } })).toEqual([]);
  });

  it("pages forward with cursors", async () => {
    const p1 = await search("a", { first: 1 });
    // "a" alone is too short for an implied prefix: the word "a" itself is in three descriptions.
    expect(p1.edges).toHaveLength(1);
    expect(p1.pageInfo.hasNextPage).toBe(true);
    const p2 = await search("a", { first: 5, after: p1.pageInfo.endCursor });
    expect(p2.edges).toHaveLength(2);
    expect(p2.pageInfo.hasNextPage).toBe(false);
    const all = [p1.edges[0].node.artwork.qid, ...p2.edges.map((e: { node: { artwork: { qid: string } } }) => e.node.artwork.qid)];
    expect(new Set(all).size).toBe(3);
    expect(await searchError("a", { after: "not-a-cursor" })).toEqual({
      message: '"not-a-cursor" is not a cursor from this search',
      code: "BAD_USER_INPUT",
      argument: "after",
    });
    expect(await searchError("a", { first: 101 })).toEqual({ message: "first must be between 0 and 100 (got 101)", code: "BAD_USER_INPUT", argument: "first" });
  });

  it("pages backward, counts the matches, and agrees with paging forward", async () => {
    const PAGE = `query($q: String!, $first: Int, $after: String, $last: Int, $before: String) {
      search(query: $q, first: $first, after: $after, last: $last, before: $before) {
        totalCount pageInfo { hasPreviousPage hasNextPage startCursor endCursor } edges { cursor node { artwork { qid } } }
      }
    }`;
    const page = async (vars: Record<string, unknown>) => {
      const r = await gql(yoga, PAGE, { q: "a", ...vars });
      expect(r.errors).toBeUndefined();
      return r.data.search;
    };
    const forward = await page({ first: 10 });
    expect(forward.totalCount).toBe(3);
    const order = forward.edges.map((e: { node: { artwork: { qid: string } } }) => e.node.artwork.qid);
    expect(order).toHaveLength(3);

    const tail = await page({ last: 2 });
    expect(tail.edges.map((e: { node: { artwork: { qid: string } } }) => e.node.artwork.qid)).toEqual(order.slice(1));
    expect(tail.pageInfo).toMatchObject({ hasPreviousPage: true, hasNextPage: false });
    const head = await page({ last: 5, before: tail.pageInfo.startCursor });
    expect(head.edges.map((e: { node: { artwork: { qid: string } } }) => e.node.artwork.qid)).toEqual(order.slice(0, 1));
    expect(head.pageInfo).toMatchObject({ hasPreviousPage: false, hasNextPage: true });
    expect(head.edges[0].cursor).toBe(forward.edges[0].cursor);

    const qidsOf = (p: { edges: { node: { artwork: { qid: string } } }[] }) => p.edges.map((e) => e.node.artwork.qid);
    // One direction a page: first with last is refused, naming last.
    expect(await searchError("a", { first: 100, last: 2 }, PAGE)).toMatchObject({ code: "BAD_USER_INPUT", argument: "last" });
    // A saved cursor past the end of a result list that has since shrunk cuts nothing.
    expect(qidsOf(await page({ last: 2, before: offsetToCursor(1000) }))).toEqual(order.slice(1));
    expect(await page({ first: 0 })).toMatchObject({ totalCount: 3, edges: [], pageInfo: { hasNextPage: true } });

    expect(await searchError("a", { last: 101 }, PAGE)).toMatchObject({ code: "BAD_USER_INPUT", argument: "last" });
    expect(await searchError("a", { before: "nope" }, PAGE)).toMatchObject({ code: "BAD_USER_INPUT", argument: "before" });
    expect((await gql(yoga, PAGE, { q: "zzzzqq", first: 5 })).data.search).toMatchObject({ totalCount: 0, edges: [] });
    const none = await gql(yoga, `{ search(query: "reading", filter: { creator: "nobody at all" }) { ... on QuerySearchConnection { totalCount edges { cursor } } } }`);
    expect(none.data.search).toEqual({ totalCount: 0, edges: [] });
  });

  it.each([['"'], ["*"], ["NEAR("], ["-"], ["dog AND"], ["OR"], ['"unbalanced phrase'], ["col:umn"], ["^start"], ["a + b"], ["(((("], ["\u0000"], ["💥 donkey"], ["\u0301\u0301\u0301"], ["𝔡𝔬𝔤"], ["dog*cat"], ["**dog"], ["\u200b"], ["--"], ["中文字"]])(
    "answers hostile input %j without an FTS5 or internal error",
    async (q) => {
      const { connection, error } = await searchOrError(SEARCH, { q });
      if (error) expect(error).toMatchObject({ code: "BAD_USER_INPUT", argument: "query" });
      else expect(connection.__typename).toBe("QuerySearchConnection");
    },
  );

  it("answers empty, word-less and oversized queries with a BAD_USER_INPUT error naming the argument", async () => {
    for (const q of ["", "   ", '"', "*", "-", "x".repeat(10_000), "donkey ".repeat(1500)]) {
      const error = await searchError(q);
      expect(error).toMatchObject({ code: "BAD_USER_INPUT", argument: "query" });
      expect(error.message).toMatch(/empty|no words|too long|too many/);
    }
  });
});

describe("the index follows every change", () => {
  it("a new description, then a person's text", async () => {
    const id = (await makeArtwork(t.db, { qid: "Q201", title: "Untitled sketch" })).id;
    expect(await qids("heron")).toEqual([]);
    await addDescription(t.db, id, "A grey heron stands in shallow water.");
    expect(await qids("heron")).toEqual(["Q201"]);
    await addDescription(t.db, id, "A crane, not a heron, wades at dusk.", "HUMAN");
    expect(await qids("crane")).toEqual(["Q201"]);
    expect(await qids("grey")).toEqual([]);
  });

  it("a renamed work", async () => {
    await t.db.artwork.update({ where: { id: ids.lilies }, data: { title: "Nymphéas", titles: JSON.stringify({ fr: "Nymphéas" }) } });
    expect(await qids("nympheas")).toEqual(["Q103"]);
    expect(await qids("lilies")).toEqual([]);
  });

  it("a creator label change, added and removed", async () => {
    const monet = await t.db.creator.findUniqueOrThrow({ where: { qid: "Q296" } });
    const label = await t.db.creatorLabel.create({ data: { creatorId: monet.id, language: "fr", label: "Oscar-Claude Monet", normalized: searchForm("Oscar-Claude Monet") } });
    expect((await qids("oscar")).sort()).toEqual(["Q103", "Q104"]);
    await t.db.creatorLabel.update({ where: { id: label.id }, data: { label: "Oscar Claude Monet", normalized: searchForm("Oscar Claude Monet") } });
    expect((await qids('"oscar claude"')).sort()).toEqual(["Q103", "Q104"]);
    await t.db.creatorLabel.delete({ where: { id: label.id } });
    expect(await qids("oscar")).toEqual([]);
  });

  it("an attribution and a depicted item added, relabelled and removed", async () => {
    const id = (await makeArtwork(t.db, { qid: "Q202", title: "Study" })).id;
    const goya = await t.db.creator.findUniqueOrThrow({ where: { qid: "Q5432" } });
    await t.db.artworkCreator.create({ data: { artworkId: id, creatorId: goya.id } });
    expect(await qids("lucientes", { filter: { creator: "Q5432" }, first: 10 })).toContain("Q202");
    await t.db.linkedItem.create({ data: { qid: "Q144", label: "dog", labels: JSON.stringify({ en: "dog", es: "perro" }) } });
    const link = await t.db.artworkLink.create({ data: { artworkId: id, property: "P180", itemQid: "Q144" } });
    expect(await qids("perro")).toEqual(["Q202"]);
    await t.db.linkedItem.update({ where: { qid: "Q144" }, data: { labels: JSON.stringify({ en: "dog", es: "can" }) } });
    expect(await qids("perro")).toEqual([]);
    await t.db.artworkLink.delete({ where: { id: link.id } });
    expect(await qids("dog ")).toEqual([]);
    // A collection (P195) is not indexed.
    await t.db.linkedItem.create({ data: { qid: "Q160236", label: "Metropolitan Museum", labels: "{}" } });
    await t.db.artworkLink.create({ data: { artworkId: id, property: "P195", itemQid: "Q160236" } });
    expect(await qids("metropolitan")).toEqual([]);
  });

  it("a state change drops the work and bringing it back restores it; deletion removes it", async () => {
    await t.db.artwork.update({ where: { id: ids.donkey }, data: { state: "MERGED", mergedIntoQid: "Q101" } });
    expect(await qids("donkey")).toEqual([]);
    await t.db.artwork.update({ where: { id: ids.donkey }, data: { state: "ACTIVE", mergedIntoQid: null } });
    expect(await qids("donkey")).toEqual(["Q102"]);
    const id = (await makeArtwork(t.db, { qid: "Q203", title: "Ephemeral quokka" })).id;
    expect(await qids("quokka")).toEqual(["Q203"]);
    await t.db.artwork.delete({ where: { id } });
    expect(await qids("quokka")).toEqual([]);
  });

  it("rebuildSearchIndex restores a damaged index", async () => {
    const before = await searchIndexSize(t.db);
    const active = await t.db.artwork.count({ where: { state: "ACTIVE" } });
    expect(before).toBe(active);
    await t.db.$executeRawUnsafe(`DELETE FROM artwork_fts`);
    expect((await searchArtworks(t.db, "donkey", { limit: 5 })).hits).toEqual([]);
    expect(await rebuildSearchIndex(t.db)).toBe(active);
    expect((await searchArtworks(t.db, "donkey", { limit: 5 })).hits.map((h) => h.artworkId)).toEqual([ids.donkey]);
  });
});

describe("artdesc search", () => {
  it("prints the top hits with marked snippets, and refuses a word-less query with exit code 2", async () => {
    const { searchCommand } = await import("../../src/ops/commands.js");
    const io = commandIo();
    expect(await searchCommand(t.db, "queen fan", { limit: 5 }, io)).toBe(0);
    expect(io.stdout.text).toMatch(/^1\. Q101 {2}Portrait of María Luisa of Parma \(\d{4}\) {2}score \d+\.\d\d\n {3}A \[queen\] in a black dress .* a \[fan\] in her right hand\.\n$/);
    expect(await searchCommand(t.db, "a", { limit: 1 }, io)).toBe(0);
    const total = (await searchArtworks(t.db, "a", { limit: 100 })).hits.length;
    expect(total).toBeGreaterThan(1);
    expect(io.stdout.text).toContain(`\n(${total} matches: raise --limit, or page with the GraphQL search query)\n`);
    expect(await searchCommand(t.db, "zzzzzz", { limit: 5 }, io)).toBe(0);
    expect(io.stdout.text).toContain('No matches for "zzzzzz".');
    expect(await searchCommand(t.db, "*", { limit: 5 }, io)).toBe(2);
    expect(io.stderr.text).toContain("no words to look for");
    // A creator that matches nobody is said, not answered with "No matches".
    expect(await searchCommand(t.db, "queen", { limit: 5, creator: "Nobody at all" }, io)).toBe(2);
    expect(io.stderr.text).toContain('--creator "Nobody at all" matches no creator in the database; it has ');
  });

  it("artdesc search prints a title or text from elsewhere as one line, without a control character a terminal would act on", async () => {
    const { searchCommand } = await import("../../src/ops/commands.js");
    await makeArtwork(t.db, { qid: "Q390", title: "Trick\u001b]0;owned\u0007 title\u202E", description: "A wolfhound\nsleeps\tby the\u001b[2J fire." });
    const io = commandIo();
    expect(await searchCommand(t.db, "wolfhound", { limit: 5 }, io)).toBe(0);
    expect(io.stdout.text).not.toMatch(/[\u0000-\u0009\u000B-\u001F\u007F\u202E]/);
    expect(io.stdout.text).toMatch(/^1\. Q390 {2}Trick\]0;owned title \(\d{4}\) {2}score \d+\.\d\d\n {3}A \[wolfhound\] sleeps by the\[2J fire\.\n$/);
  });
});

describe("index upkeep cost", () => {
  it("an update that changes nothing indexed does not rewrite the artwork's row", async () => {
    const id = (await makeArtwork(t.db, { qid: "Q301", title: "Still life", description: "Lemons on a plate." })).id;
    // SQLite: every rewrite of a row adds FTS5 index segments until they are merged. PostgreSQL:
    // a rewritten row gets a new version (xmin, and its place ctid).
    const written = async () =>
      onPostgres
        ? (await t.db.$queryRawUnsafe<{ v: string }[]>(`SELECT xmin::text || ctid::text AS v FROM artwork_fts WHERE id = $1`, id))[0]!.v
        : String((await t.db.$queryRawUnsafe<{ n: bigint }[]>(`SELECT COUNT(*) AS n FROM artwork_fts_data`))[0]!.n);
    const before = await written();
    // A sync rewriting the same title and state.
    await t.db.artwork.update({ where: { id }, data: { title: "Still life", state: "ACTIVE", lastSyncedAt: new Date() } });
    expect(await written()).toBe(before);
    await t.db.artwork.update({ where: { id }, data: { title: "Still life with lemons", titles: JSON.stringify({ en: "Still life with lemons" }) } });
    expect(await written()).not.toBe(before);
    expect(await qids("lemons")).toEqual(["Q301"]);
  });
});

describe("recent result pages", () => {
  it("are reused until anything is committed, by this client or by another connection", async () => {
    const first = await searchArtworks(t.db, "queen", { limit: 5 });
    expect(await searchArtworks(t.db, "queen", { limit: 5 })).toBe(first);
    // A commit that changes nothing indexed still drops the kept pages (correct, if not minimal).
    await t.db.artwork.update({ where: { id: ids.maria }, data: { lastSyncedAt: new Date() } });
    const again = await searchArtworks(t.db, "queen", { limit: 5 });
    expect(again).not.toBe(first);
    expect(again).toEqual(first);

    const id = (await makeArtwork(t.db, { qid: "Q401", title: "Sketch" })).id;
    expect((await searchArtworks(t.db, "queen", { limit: 5 })).hits.map((h) => h.artworkId)).not.toContain(id);
    const other = await createDb(t.url);
    try {
      await other.artwork.update({ where: { id }, data: { title: "A queen on horseback", titles: JSON.stringify({ en: "A queen on horseback" }) } });
      expect((await searchArtworks(other, "queen", { limit: 5 })).hits.map((h) => h.artworkId)).toContain(id);
    } finally {
      await closeDb(other);
    }
    expect(() => readConnection(other)).toThrow(/open client/);
    expect((await searchArtworks(t.db, "queen", { limit: 5 })).hits.map((h) => h.artworkId)).toContain(id);
    expect(Object.isFrozen(first.hits[0])).toBe(true);
  });
});
