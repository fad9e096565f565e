import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { offsetToCursor } from "@pothos/plugin-relay";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type Config, DEFAULT_EMBED_MODEL_DTYPE, loadConfig } from "../../src/config.js";
import { embedOnnxFile, installedVectorModel, vectorModelId } from "../../src/embed/model-files.js";
import { synthEmbedModel } from "../../src/describe/models/embed-synth.js";
import { type Embedder, EmbedderBusyError, EmbedRequestError, MAX_PENDING_QUERIES, meaningSource, openEmbedder, QueryEmbedder } from "../../src/embed/embedder.js";
import { claimEmbedJob, embedMissing, queueEmbedJob, runEmbedJob } from "../../src/embed/jobs.js";
import { countStale, decodeVector, embedStale, passageText, textHash } from "../../src/embed/store.js";
import { createGraphqlApp, type Yoga } from "../../src/graphql/yoga.js";
import { createHttpApp } from "../../src/server.js";
import { serveOnFreePort } from "../support/http.js";
import { EMBED } from "../../src/jobs/queue.js";
import { CACHED_SEARCH_BYTES, CACHED_SEARCH_RESULTS, fuseOrder, fuseRanks, keptResultBytes, keptSearchResults } from "../../src/search/search.js";
import { createTestDb, onPostgres, type TestDb } from "../support/db.js";
import { addDescription, makeArtwork, makeCreator, makeGoya } from "../support/factories.js";
import { gql } from "../support/graphql.js";
import { runCli } from "../support/cli.js";
import { capturingLogger } from "../support/log.js";

/**
 * Semantic and hybrid search through GraphQL (yoga.fetch) and the command line, on the synthetic
 * semantic model (embed-tiny: dog/hound/perro embed together, so do execution/firing/squad/rifles):
 * real tokenizer, real ONNX session in the embedding thread, real vectors in SQLite, real ranking.
 */

const MODEL_ID = "artdesc/synth-embed-tiny";
/** What the vectors are recorded under with the default EMBED_MODEL_DTYPE. */
const VECTOR_MODEL = vectorModelId(MODEL_ID, DEFAULT_EMBED_MODEL_DTYPE);
const TOP_K = 4;
const RRF_K = 60;
let t: TestDb;
let modelDir: string;
let emptyModelDir: string;
let config: Config;
let yoga: Yoga;
let embedder: Embedder;
const ids: Record<string, number> = {};

const SEARCH = `query($q: String!, $mode: SearchMode, $first: Int, $after: String, $last: Int, $before: String, $filter: SearchFilter) {
  search(query: $q, mode: $mode, first: $first, after: $after, last: $last, before: $before, filter: $filter) {
    totalCount pageInfo { hasNextPage hasPreviousPage endCursor startCursor }
    edges { cursor node { score rank similarity matchedBy snippet artwork { qid } } }
  }
}`;

type Hit = { score: number; rank: number; similarity: number | null; matchedBy: string[]; snippet: string | null; artwork: { qid: string } };

type PageInfo = { hasNextPage: boolean; hasPreviousPage: boolean; endCursor: string; startCursor: string };
async function search(q: string, vars: Record<string, unknown> = {}, app = yoga): Promise<{ totalCount: number; pageInfo: PageInfo; hits: Hit[] }> {
  const r = await gql(app, SEARCH, { q, ...vars });
  expect(r.errors).toBeUndefined();
  return { ...r.data.search, hits: r.data.search.edges.map((e: { node: Hit }) => e.node) as Hit[] };
}
async function searchError(q: string, vars: Record<string, unknown> = {}, app = yoga) {
  const r = await gql(app, SEARCH, { q, ...vars });
  expect(r.errors).toHaveLength(1);
  return r.errors![0]!;
}
const qids = (hits: Hit[]) => hits.map((h) => h.artwork.qid);
const settings = () => ({ MODEL_DIR: modelDir, EMBED_MODEL_ID: MODEL_ID, SEARCH_SEMANTIC_TOP_K: String(TOP_K), SEARCH_RRF_K: String(RRF_K), GRAPHQL_RESPONSE_CACHE: "false" });

beforeAll(async () => {
  t = await createTestDb({ countQueries: true });
  modelDir = mkdtempSync(join(tmpdir(), "artdesc-semantic-"));
  emptyModelDir = mkdtempSync(join(tmpdir(), "artdesc-semantic-none-"));
  synthEmbedModel({ preset: "embed-tiny", outDir: join(modelDir, MODEL_ID) });
  config = loadConfig(settings());
  yoga = createGraphqlApp({ db: t.db, config });
  const goya = await makeGoya(t.db);
  const other = await makeCreator(t.db, { qid: "Q296", labels: { en: "Claude Monet" } });
  const make = async (qid: string, title: string, description: string, creator = goya.id) =>
    (ids[qid] = (await makeArtwork(t.db, { qid, title, description, creators: [{ id: creator }] })).id);
  await make("Q201", "Perro semihundido", "A hound half buried in sand looks up at an empty sky. Nothing else is there.");
  await make("Q202", "El tres de mayo", "Soldiers aim rifles at a man in a white shirt at night. A lantern lights the scene.");
  await make("Q203", "Marina", "A ship on a calm sea at dawn.", other.id);
  await make("Q204", "Dog and donkey", "A dog sleeps near a donkey under a tree.");
  await make("Q205", "Casa", "A small dog barks at a cat by the door.", other.id);
  await make("Q206", "Bodegon", "Bread, grapes and an apple on a table.", other.id);
  await make("Q207", "Paisaje", "A river runs between green hills under clouds.", other.id);
  // Not described: never embedded, found by words only.
  ids.Q208 = (await makeArtwork(t.db, { qid: "Q208", title: "Dog study", creators: [{ id: goya.id }] })).id;
  embedder = await openEmbedder(config);
  // As startApi does: the API's own query embedding thread loads before the first search.
  await meaningSource(config).warm();
  const total = await embedMissing(t.db, embedder, 3);
  expect(total).toEqual({ embedded: 7, unchanged: 0 });
}, 60_000);

afterAll(async () => {
  await embedder?.close();
  await meaningSource(config).close();
  await t?.close();
  rmSync(modelDir, { recursive: true, force: true });
  rmSync(emptyModelDir, { recursive: true, force: true });
});

describe("the workbench's search", () => {
  it("says what it searched by, marks hits found by meaning alone, and searches by words only when asked", async () => {
    const { server } = createHttpApp({ db: t.db, config });
    const served = await serveOnFreePort(server);
    try {
      const page = async (query: string) => {
        const r = await fetch(`${served.base}/?${query}`);
        return { status: r.status, html: await r.text() };
      };
      const hybrid = await page("q=firing+squad");
      expect(hybrid.html).toMatch(/works? match “firing squad” by words and meaning<\/p>/);
      const q202 = hybrid.html.slice(hybrid.html.indexOf('href="/artworks/Q202"'));
      expect(q202.slice(0, q202.indexOf("</li>"))).toContain('<p class="match-meaning">Found by meaning: shares no word with the search</p>');
      const words = await page("q=firing+squad&mode=text");
      expect(words.html).toContain("0 works match “firing squad” by words</p>");
      expect(words.html).toContain('<option value="text" selected>words only</option>');
      expect(words.html).not.toContain("match-meaning");
      // A mode that is none is named and ignored, as any value the URL holds that means nothing here.
      expect((await page("q=dog&mode=vectors")).html).toContain("mode &quot;vectors&quot; is not one of text, semantic, hybrid");
    } finally {
      served.close();
    }
  });
});

describe("semantic search: meaning without shared words", () => {
  it("finds the execution for 'firing squad' though no word matches, as a meaning-only hit with a first-sentence snippet", async () => {
    const text = await search("firing squad", { mode: "TEXT" });
    expect(text.totalCount).toBe(0);
    const r = await search("firing squad");
    const hit = r.hits[0]!;
    expect(hit.artwork.qid).toBe("Q202");
    expect(hit.matchedBy).toEqual(["MEANING"]);
    expect(hit.score).toBe(0);
    expect(hit.rank).toBe(1);
    expect(hit.similarity).toBeGreaterThan(0.2);
    expect(hit.similarity).toBeGreaterThan(r.hits[1]!.similarity! + 0.1);
    expect(hit.snippet).toBe("Soldiers aim rifles at a man in a white shirt at night. A lantern lights the scene.".slice(0, 200));
    // The semantic hit set is the TOP_K nearest: totalCount says so.
    expect(r.totalCount).toBe(TOP_K);
  });

  it("finds dog works for 'hound' and 'perro' (Spanish) in SEMANTIC mode, by cosine", async () => {
    for (const q of ["hound", "perro", "puppy"]) {
      const r = await search(q, { mode: "SEMANTIC" });
      const top = qids(r.hits).slice(0, 3).sort();
      expect(top).toEqual(["Q201", "Q204", "Q205"]);
      const sims = r.hits.map((h) => h.similarity!);
      expect([...sims].sort((a, b) => b - a)).toEqual(sims);
      expect(r.hits.every((h) => h.matchedBy.join() === "MEANING" && h.score === 0)).toBe(true);
    }
  });

  it("defaults to HYBRID once vectors exist; words and meaning are both marked", async () => {
    const r = await search("dog");
    const byQid = new Map(r.hits.map((h) => [h.artwork.qid, h]));
    expect(byQid.get("Q204")!.matchedBy).toEqual(["TEXT", "MEANING"]);
    expect(byQid.get("Q204")!.snippet).toContain("<mark>dog</mark>");
    // Each word-matching hit has its own text's snippet.
    expect(byQid.get("Q205")!.snippet).toBe("A small <mark>dog</mark> barks at a cat by the door.");
    expect(byQid.get("Q201")!.matchedBy).toEqual(["MEANING"]);
    // Q208 has no description and so no vector: found by its title's word, with no similarity.
    expect(byQid.get("Q208")).toMatchObject({ matchedBy: ["TEXT"], similarity: null, snippet: null });
    expect(byQid.get("Q208")!.score).toBeGreaterThan(0);
  });
});

describe("a similarity floor", () => {
  it("SEARCH_SEMANTIC_MIN_SIMILARITY keeps only the meaning hits above it, in SEMANTIC and HYBRID, and totalCount counts them", async () => {
    const floor = 0.2;
    const floored = loadConfig({ ...settings(), SEARCH_SEMANTIC_MIN_SIMILARITY: String(floor) });
    const app = createGraphqlApp({ db: t.db, config: floored });
    try {
      for (const q of ["firing squad", "hound"]) {
        const all = await search(q, { mode: "SEMANTIC" });
        const above = all.hits.filter((h) => h.similarity! > floor);
        expect(above.length, q).toBeGreaterThan(0);
        expect(above.length, q).toBeLessThan(all.hits.length);
        const semantic = await search(q, { mode: "SEMANTIC" }, app);
        expect(qids(semantic.hits), q).toEqual(qids(above));
        expect(semantic.totalCount, q).toBe(above.length);
        const hybrid = await search(q, { mode: "HYBRID" }, app);
        const text = await search(q, { mode: "TEXT" }, app);
        const meaningOnly = hybrid.hits.filter((h) => h.matchedBy.join() === "MEANING");
        expect(meaningOnly.every((h) => h.similarity! > floor), q).toBe(true);
        expect(new Set(qids(hybrid.hits)), q).toEqual(new Set([...qids(text.hits), ...qids(above)]));
      }
    } finally {
      await meaningSource(floored).close();
    }
  });
});

describe("reciprocal rank fusion", () => {
  it("fuses by hand-checkable numbers", () => {
    // text: A (1), B (2), C (3); meaning: C (1), D (2). k = 60.
    const fused = fuseRanks(
      [
        { id: 1, score: 9 },
        { id: 2, score: 5 },
        { id: 3, score: 1 },
      ],
      [{ id: 3 }, { id: 4 }],
      60,
    );
    // C: 1/63 + 1/61 = 0.03227; A: 1/61 = 0.01639; D: 1/62 = 0.01613; B: 1/62 = 0.01613 (tie: lower id first).
    expect(fused.map((r) => r.id)).toEqual([3, 1, 2, 4]);
    expect(fused[0]!.fused).toBeCloseTo(1 / 63 + 1 / 61, 12);
    expect(fused.map((r) => r.matchedBy.join("+"))).toEqual(["TEXT+MEANING", "TEXT", "TEXT", "MEANING"]);
    expect(fused.find((r) => r.id === 4)!.score).toBe(0);
  });

  it("merges like a sort of every row by fused score, then id (random lists, overlaps and ties)", () => {
    let x = 7;
    const next = (n: number) => ((x = (x * 1103515245 + 12345) >>> 0) % n);
    for (let round = 0; round < 200; round++) {
      const pool = Array.from({ length: 1 + next(300) }, (_, i) => i * 3 + 1).sort(() => next(3) - 1);
      const text = pool.slice(0, next(pool.length + 1));
      const meaning = [...pool].sort(() => next(3) - 1).slice(0, next(40));
      const k = [0, 1, 60][next(3)]!;
      const score = (id: number) => (text.includes(id) ? 1 / (k + text.indexOf(id) + 1) : 0) + (meaning.includes(id) ? 1 / (k + meaning.indexOf(id) + 1) : 0);
      const union = [...new Set([...text, ...meaning])].sort((a, b) => score(b) - score(a) || a - b);
      const fused = fuseOrder(text, meaning, k);
      expect(fused.ids).toEqual(union);
      expect(fused.fused).toEqual(union.map(score));
    }
  });

  it("orders the HYBRID list as 1/(k + text rank) + 1/(k + meaning rank), from the TEXT and SEMANTIC lists the API gives", async () => {
    for (const q of ["dog", "dog sea", "ship"]) {
      const text = qids((await search(q, { mode: "TEXT", first: 100 })).hits);
      const meaning = qids((await search(q, { mode: "SEMANTIC", first: 100 })).hits);
      const score = (qid: string) =>
        (text.includes(qid) ? 1 / (RRF_K + text.indexOf(qid) + 1) : 0) + (meaning.includes(qid) ? 1 / (RRF_K + meaning.indexOf(qid) + 1) : 0);
      const union = [...new Set([...text, ...meaning])];
      const expected = union.sort((a, b) => score(b) - score(a) || ids[a]! - ids[b]!);
      const hybrid = await search(q, { mode: "HYBRID", first: 100 });
      expect(qids(hybrid.hits)).toEqual(expected);
      expect(hybrid.totalCount).toBe(union.length);
      expect(hybrid.hits.map((h: Hit) => h.rank)).toEqual(expected.map((_, i) => i + 1));
    }
  });
});

describe("excluded words still exclude", () => {
  it("drops a work with an excluded word from both lists in HYBRID and from SEMANTIC", async () => {
    const withIt = qids((await search("dog", { mode: "HYBRID" })).hits);
    expect(withIt).toContain("Q204");
    for (const mode of ["HYBRID", "SEMANTIC"]) {
      const r = await search("dog -donkey", { mode });
      expect(qids(r.hits)).not.toContain("Q204");
      expect(qids(r.hits)).toContain("Q201");
    }
    expect(qids((await search('hound -"buried in sand"', { mode: "SEMANTIC" })).hits)).not.toContain("Q201");
    // An excluded word from the title excludes too.
    expect(qids((await search("dog -casa", { mode: "HYBRID" })).hits)).not.toContain("Q205");
  });

  it("keeps the filter: a creator filter limits the meaning hits too", async () => {
    const r = await search("hound", { mode: "SEMANTIC", filter: { creator: "Q296" } });
    // Q206, by the same creator, shares no word group with "hound" and scores below 0: no meaning hit.
    expect(qids(r.hits).sort()).toEqual(["Q203", "Q205", "Q207"]);
    expect(qids(r.hits)[0]).toBe("Q205");
    expect(r.hits.every((h) => h.similarity! > 0)).toBe(true);
  });
});

describe("paging", () => {
  it("pages HYBRID forward and backward over the same list, totalCount the union", async () => {
    const all = await search("dog", { first: 100 });
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page: { hits: Hit[]; pageInfo: { hasNextPage: boolean; endCursor: string } } = await search("dog", { first: 2, after });
      seen.push(...qids(page.hits));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(seen).toEqual(qids(all.hits));
    expect(all.totalCount).toBe(seen.length);
    const last = await search("dog", { last: 2 });
    expect(qids(last.hits)).toEqual(qids(all.hits).slice(-2));
    expect(last.hits.map((h: Hit) => h.rank)).toEqual([seen.length - 1, seen.length]);
    const firstZero = await search("dog", { first: 0 });
    expect(firstZero.pageInfo.hasNextPage).toBe(true);
  });

  it("a cursor carries its list's mode: a later page asked without a mode continues that list", async () => {
    const modeOf = async (vars: Record<string, unknown>) =>
      (await gql(yoga, `query($q: String!, $mode: SearchMode, $after: String) { search(query: $q, mode: $mode, first: 1, after: $after) { mode } }`, { q: "dog", ...vars })).data.search.mode;
    // A first page in TEXT (asked for here; a default search falls back to TEXT when its query
    // cannot be embedded, and defaults to TEXT before any description is embedded).
    const text = await search("dog", { mode: "TEXT", first: 100 });
    const head = await search("dog", { mode: "TEXT", first: 1 });
    const next = await search("dog", { first: 2, after: head.pageInfo.endCursor });
    expect(qids(next.hits)).toEqual(qids(text.hits).slice(1, 3));
    expect(next.hits.every((h) => h.similarity === null && h.matchedBy.join() === "TEXT")).toBe(true);
    expect(await modeOf({ after: head.pageInfo.endCursor })).toBe("TEXT");
    expect(await modeOf({})).toBe("HYBRID");
    // Another mode with the cursor of a TEXT list: refused, naming the cursor.
    expect(await searchError("dog", { mode: "HYBRID", after: head.pageInfo.endCursor })).toMatchObject({
      message: "this cursor is from a TEXT search, not HYBRID: ask without a cursor to start a HYBRID search",
      extensions: { code: "BAD_USER_INPUT", argument: "after" },
    });
    const hybridHead = await search("dog", { first: 1 });
    expect(await searchError("dog", { after: head.pageInfo.endCursor, before: hybridHead.pageInfo.endCursor })).toMatchObject({
      extensions: { code: "BAD_USER_INPUT", argument: "before" },
    });
    // A cursor of an earlier version (the offset alone) still pages, in the mode asked for or the default.
    const old = offsetToCursor(0);
    expect(qids((await search("dog", { mode: "TEXT", first: 2, after: old })).hits)).toEqual(qids(text.hits).slice(1, 3));
  });
});

describe("searches that arrive together", () => {
  it.skipIf(!onPostgres)("on PostgreSQL share one refresh of the vector index and one list of the active works per commit", async () => {
    await makeCreator(t.db, { qid: "Q299", labels: { en: "A commit" } });
    t.queries.length = 0;
    const queries = ["dog", "hound", "perro", "puppy", "horse", "rider", "ship", "river"];
    const pages = await Promise.all(queries.map((q) => search(q, { mode: "SEMANTIC", first: 2 })));
    expect(pages.every((p) => p.hits.length === 2)).toBe(true);
    const refreshes = t.queries.filter((q) => /FROM "ArtworkEmbedding"/.test(q) && /COUNT\(\*\)/.test(q));
    const activeLists = t.queries.filter((q) => /^\s*SELECT f\."id" FROM "artwork_fts" f(\s+WHERE true\s*)?$/.test(q));
    expect([refreshes.length, activeLists.length]).toEqual([1, 1]);
  });
});

describe("hostile input", () => {
  it("refuses oversized pages, queries and unknown modes with typed errors", async () => {
    expect((await searchError("dog", { first: 101 })).extensions).toMatchObject({ code: "BAD_USER_INPUT", argument: "first" });
    expect((await searchError("dog ".repeat(200))).extensions).toMatchObject({ code: "BAD_USER_INPUT", argument: "query" });
    expect((await searchError("-dog", { mode: "SEMANTIC" })).extensions).toMatchObject({ code: "BAD_USER_INPUT", argument: "query" });
    expect((await searchError("dog", { mode: "VECTOR" })).message).toMatch(/SearchMode/);
    const r = await gql(yoga, `{ artwork(id: "Q201") { ... on Artwork { similar(first: 51) { similarity } } } }`);
    expect(r.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", argument: "first" });
    const negative = await gql(yoga, `{ artwork(id: "Q201") { ... on Artwork { similar(first: -1) { similarity } } } }`);
    expect(negative.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", argument: "first" });
  });
});

describe("kept results", () => {
  it("are counted by their size, a fused list by its rows, so the bytes bound holds however many works a query matches", async () => {
    const before = keptSearchResults(t.db);
    const r = await search("sleeps dog hound", { first: 1 });
    const after = keptSearchResults(t.db);
    // The fused list and the page.
    expect(after.entries - before.entries).toBe(2);
    expect(after.bytes - before.bytes).toBeGreaterThanOrEqual(r.totalCount * 25);
    // A list of 20,000 works (a query of common words on a large collection) counts 25 bytes a work on
    // SQLite (typed arrays) and about 96 on PostgreSQL (an object per row).
    const rows = 20_000;
    const sqliteList = { ids: new Int32Array(rows), fused: new Float64Array(rows), textRank: new Int32Array(rows), byMeaning: new Uint8Array(rows), textScores: new Float64Array(rows), phrases: [] };
    expect(keptResultBytes(sqliteList)).toBeGreaterThanOrEqual(rows * 25);
    expect(keptResultBytes(Array.from({ length: rows }, (_, id) => ({ id, score: 0, matchedBy: [], fused: 0 })))).toBeGreaterThanOrEqual(rows * 96);
    expect(CACHED_SEARCH_BYTES / keptResultBytes(sqliteList)).toBeLessThan(CACHED_SEARCH_RESULTS / 4);
  });
});

describe("similar works", () => {
  const SIMILAR = `query($id: ID!, $first: Int, $same: Boolean) { artwork(id: $id) { ... on Artwork { qid similar(first: $first, sameCreator: $same) { similarity artwork { qid } } } } }`;

  it("lists the nearest works by description, any creator or the same creator", async () => {
    const any = await gql(yoga, SIMILAR, { id: "Q201", first: 2 });
    expect(any.errors).toBeUndefined();
    const got = any.data.artwork.similar as { similarity: number; artwork: { qid: string } }[];
    expect(got.map((s) => s.artwork.qid).sort()).toEqual(["Q204", "Q205"]);
    expect(got[0]!.similarity).toBeGreaterThanOrEqual(got[1]!.similarity);
    const same = await gql(yoga, SIMILAR, { id: "Q201", first: 3, same: true });
    expect(same.data.artwork.similar.map((s: { artwork: { qid: string } }) => s.artwork.qid)).toEqual(["Q204", "Q202"]);
    // A work without a vector has no neighbours.
    expect((await gql(yoga, SIMILAR, { id: "Q208" })).data.artwork.similar).toEqual([]);
  });

  it("a work that left the mirror keeps its vector but is found by meaning no more, and is nobody's similar work", async () => {
    const similarTo = async (qid: string) => (await gql(yoga, SIMILAR, { id: qid, first: 2 })).data.artwork.similar.map((s: { artwork: { qid: string } }) => s.artwork.qid).sort();
    expect(qids((await search("hound", { mode: "SEMANTIC" })).hits)).toContain("Q205");
    expect(await similarTo("Q201")).toEqual(["Q204", "Q205"]);
    await t.db.artwork.update({ where: { id: ids.Q205! }, data: { state: "DELETED" } });
    try {
      const semantic = qids((await search("hound", { mode: "SEMANTIC" })).hits);
      expect(semantic).not.toContain("Q205");
      expect(semantic).toHaveLength(TOP_K);
      expect(qids((await search("hound", { mode: "HYBRID" })).hits)).not.toContain("Q205");
      // The next nearest takes its place.
      expect(await similarTo("Q201")).toEqual(["Q202", "Q204"]);
    } finally {
      await t.db.artwork.update({ where: { id: ids.Q205! }, data: { state: "ACTIVE" } });
    }
    expect(await similarTo("Q201")).toEqual(["Q204", "Q205"]);
  });
});

describe("stale vectors are made again", () => {
  it("re-embeds a work whose description changed, and one whose vector came from another model, through the embed job", async () => {
    expect(await countStale(t.db, installedVectorModel(config))).toBe(0);
    expect(await queueEmbedJob(t.db, config)).toBeNull();
    const before = await t.db.artworkEmbedding.findUniqueOrThrow({ where: { artworkId: ids.Q203! } });
    await addDescription(t.db, ids.Q203!, "A hound runs along the shore.", "HUMAN");
    await t.db.artworkEmbedding.update({ where: { artworkId: ids.Q207! }, data: { modelId: "someone/old-model" } });
    expect(await countStale(t.db, installedVectorModel(config))).toBe(2);
    // Until re-embedded, the other model's vector is never compared with this model's queries.
    expect(qids((await search("river hills", { mode: "SEMANTIC" })).hits)).not.toContain("Q207");
    // Six at once (on PostgreSQL, over several pooled connections): one job, queued once.
    const queued = (await Promise.all(Array.from({ length: 6 }, () => queueEmbedJob(t.db, config)))).filter((j) => j !== null);
    expect(queued).toHaveLength(1);
    const job = queued[0]!;
    expect(await t.db.job.count({ where: { kind: EMBED, status: "QUEUED" } })).toBe(1);
    expect(job).toMatchObject({ kind: EMBED, priority: -10, status: "QUEUED" });
    expect(await queueEmbedJob(t.db, config)).toBeNull();
    const claimed = await claimEmbedJob(t.db, "test-holder", 60_000);
    expect(claimed?.id).toBe(job.id);
    const summary = await runEmbedJob(t.db, config, embedder, claimed!, "test-holder");
    expect(summary).toEqual({ embedded: 2, unchanged: 0 });
    expect(await t.db.job.findUniqueOrThrow({ where: { id: job.id } })).toMatchObject({ status: "SUCCEEDED", progress: 2 });
    const after = await t.db.artworkEmbedding.findUniqueOrThrow({ where: { artworkId: ids.Q203! } });
    expect(after.textHash).not.toBe(before.textHash);
    expect(decodeVector(after.vector)).not.toEqual(decodeVector(before.vector));
    expect(await countStale(t.db, installedVectorModel(config))).toBe(0);
    expect(qids((await search("dog", { mode: "SEMANTIC" })).hits)).toContain("Q203");
    expect(qids((await search("river hills", { mode: "SEMANTIC" })).hits)).toContain("Q207");
  });

  it("a re-synced work whose text did not change keeps its vector and is no candidate; a changed title is a changed text", async () => {
    const before = await t.db.artworkEmbedding.findUniqueOrThrow({ where: { artworkId: ids.Q206! } });
    await t.db.artwork.update({ where: { id: ids.Q206! }, data: { lastSyncedAt: new Date(Date.now() + 1000) } });
    expect(await countStale(t.db, installedVectorModel(config))).toBe(0);
    expect(await embedMissing(t.db, embedder, 10)).toEqual({ embedded: 0, unchanged: 0 });
    const after = await t.db.artworkEmbedding.findUniqueOrThrow({ where: { artworkId: ids.Q206! } });
    expect(after).toEqual(before);
    // A changed title is a changed text.
    await t.db.artwork.update({ where: { id: ids.Q206! }, data: { title: "Still life with a puppy" } });
    expect(await embedMissing(t.db, embedder, 10)).toEqual({ embedded: 1, unchanged: 0 });
    expect((await t.db.artworkEmbedding.findUniqueOrThrow({ where: { artworkId: ids.Q206! } })).textHash).toBe(textHash(passageText("Still life with a puppy", "Bread, grapes and an apple on a table.")));
  });

  it("staleness never compares clocks: a work written by a clock an hour ahead is no candidate, and embed --missing ends", async () => {
    // The process that wrote the artwork (a sync, an API) runs an hour ahead of the embedder's: its
    // updatedAt stays later than any embeddedAt this embedder writes.
    await t.db.artwork.update({ where: { id: ids.Q205! }, data: { lastSyncedAt: new Date(), updatedAt: new Date(Date.now() + 3_600_000) } });
    expect(await countStale(t.db, installedVectorModel(config))).toBe(0);
    let batches = 0;
    const total = await embedMissing(t.db, embedder, 10, () => {
      if (++batches > 5) throw new Error("embed --missing goes on with nothing to do");
    });
    expect(total).toEqual({ embedded: 0, unchanged: 0 });
    expect(await queueEmbedJob(t.db, config)).toBeNull();
  });

  it("a title changed by a process whose clock is an hour behind is still embedded again", async () => {
    // Its updatedAt is earlier than the vector's embeddedAt.
    await t.db.artwork.update({ where: { id: ids.Q205! }, data: { title: "La casa", updatedAt: new Date(Date.now() - 3_600_000) } });
    expect(await embedMissing(t.db, embedder, 10)).toEqual({ embedded: 1, unchanged: 0 });
    const e = await t.db.artworkEmbedding.findUniqueOrThrow({ where: { artworkId: ids.Q205! } });
    expect(e.textHash).toBe(textHash(passageText("La casa", "A small dog barks at a cat by the door.")));
    expect(await embedMissing(t.db, embedder, 10)).toEqual({ embedded: 0, unchanged: 0 });
  });

  it("a vector from before titles were recorded is checked once against its hash, then left alone", async () => {
    expect(await countStale(t.db, installedVectorModel(config))).toBe(0);
    const before = await t.db.artworkEmbedding.update({ where: { artworkId: ids.Q203! }, data: { title: null } });
    expect(await countStale(t.db, installedVectorModel(config))).toBe(1);
    expect(await embedMissing(t.db, embedder, 10)).toEqual({ embedded: 0, unchanged: 1 });
    expect(await t.db.artworkEmbedding.findUniqueOrThrow({ where: { artworkId: ids.Q203! } })).toEqual({ ...before, title: "Marina" });
    expect(await countStale(t.db, installedVectorModel(config))).toBe(0);
  });

  it("a new description with the same words moves the row it names, once, without a new vector", async () => {
    const before = await t.db.artworkEmbedding.findUniqueOrThrow({ where: { artworkId: ids.Q204! } });
    const again = await addDescription(t.db, ids.Q204!, "A dog sleeps near a donkey under a tree.", "HUMAN");
    expect(await countStale(t.db, installedVectorModel(config))).toBe(1);
    expect(await embedMissing(t.db, embedder, 10)).toEqual({ embedded: 0, unchanged: 1 });
    const after = await t.db.artworkEmbedding.findUniqueOrThrow({ where: { artworkId: ids.Q204! } });
    expect(after).toEqual({ ...before, descriptionId: again.id });
    expect(await countStale(t.db, installedVectorModel(config))).toBe(0);
  });
});

describe("without an embedding model", () => {
  it("searches by words as before, says semantic search is off and how to turn it on, and refuses SEMANTIC with a typed error", async () => {
    const bare = createGraphqlApp({ db: t.db, config: loadConfig({ MODEL_DIR: emptyModelDir, GRAPHQL_RESPONSE_CACHE: "false" }) });
    const r = await search("dog", {}, bare);
    expect(r.hits.every((h: Hit) => h.matchedBy.join() === "TEXT" && h.similarity === null)).toBe(true);
    expect(qids(r.hits)).not.toContain("Q201");
    for (const mode of ["SEMANTIC", "HYBRID"]) {
      const err = await searchError("dog", { mode }, bare);
      expect(err.extensions).toMatchObject({ code: "BAD_USER_INPUT", argument: "mode" });
      expect(err.message).toContain("artdesc models pull --embed");
    }
    const status = await gql(bare, `{ status { semanticSearch { enabled installed command message } } }`);
    expect(status.data.status.semanticSearch).toMatchObject({ enabled: false, installed: false, command: "artdesc models pull --embed" });
    const on = await gql(yoga, `{ status { semanticSearch { enabled installed embedded described command } } }`);
    expect(on.data.status.semanticSearch).toMatchObject({ enabled: true, installed: true, embedded: 7, described: 7, command: null });
    // Vectors stored under this model are never used by a process configured for another.
    expect((await gql(bare, `{ artwork(id: "Q201") { ... on Artwork { similar { similarity } } } }`)).data.artwork.similar).toEqual([]);
  });
});

describe("an embedding model pulled or removed while the API runs", () => {
  it("a kept words-only answer is not served once the model is there: the response cache key names whether this process can search by meaning", async () => {
    const laterDir = mkdtempSync(join(tmpdir(), "artdesc-semantic-later-"));
    const laterConfig: Config = { ...config, MODEL_DIR: laterDir, GRAPHQL_RESPONSE_CACHE: true, GRAPHQL_RESPONSE_CACHE_MIN_ASKS: 1 };
    try {
      const cached = createGraphqlApp({ db: t.db, config: laterConfig });
      const MODE = `query($q: String!) { search(query: $q) { mode } }`;
      for (let i = 0; i < 2; i++) expect((await gql(cached, MODE, { q: "firing squad" })).data.search.mode).toBe("TEXT");
      // `artdesc models pull --embed` writes the files; the database does not change.
      cpSync(modelDir, laterDir, { recursive: true });
      vi.useFakeTimers({ toFake: ["Date"] });
      try {
        // The model's files are looked for again at most every 30 s.
        vi.setSystemTime(Date.now() + 31_000);
        expect((await gql(cached, MODE, { q: "firing squad" })).data.search.mode).toBe("HYBRID");
      } finally {
        vi.useRealTimers();
      }
      // Nearest works need only the stored vectors: they answer with the model's files gone too.
      const noFiles = createGraphqlApp({ db: t.db, config: { ...config, MODEL_DIR: emptyModelDir, GRAPHQL_RESPONSE_CACHE: false } });
      const similar = (await gql(noFiles, `{ artwork(id: "Q201") { ... on Artwork { similar { similarity } } } }`)).data.artwork.similar;
      expect(similar.length).toBeGreaterThan(0);
    } finally {
      await meaningSource(laterConfig).close();
      rmSync(laterDir, { recursive: true, force: true });
    }
  });
});

describe("an embedding model whose file is corrupt", () => {
  it("default searches go by words, the model is not loaded again for each, and the log gets one line for them all", async () => {
    const brokenDir = mkdtempSync(join(tmpdir(), "artdesc-semantic-broken-"));
    try {
      cpSync(modelDir, brokenDir, { recursive: true });
      writeFileSync(join(brokenDir, MODEL_ID, embedOnnxFile(DEFAULT_EMBED_MODEL_DTYPE)), "not an ONNX model");
      const { lines, log } = capturingLogger();
      const broken = createGraphqlApp({ db: t.db, log, config: loadConfig({ MODEL_DIR: brokenDir, EMBED_MODEL_ID: MODEL_ID, GRAPHQL_RESPONSE_CACHE: "false" }) });
      for (const q of ["dog", "hound", "donkey", "sea", "squad"]) {
        const r = await search(q, {}, broken);
        expect(r.hits.every((h: Hit) => h.matchedBy.join() === "TEXT")).toBe(true);
      }
      expect(lines.filter((l) => l.msg === "the query could not be embedded: searched by words only")).toHaveLength(1);
      // Asked for by name: the server's fault, not the request's: 503 with Retry-After (the model
      // is loaded again on a search 30 s later).
      const res = await broken.fetch("http://local/graphql", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: SEARCH, variables: { q: "dog", mode: "SEMANTIC" } }),
      });
      expect([res.status, res.headers.get("retry-after")]).toEqual([503, "30"]);
      const body = (await res.json()) as { errors: { message: string; extensions: Record<string, unknown> }[] };
      expect(body.errors).toHaveLength(1);
      expect(body.errors[0]!.extensions).toEqual({ code: "TEMPORARILY_UNAVAILABLE", argument: "mode", retryAfter: 30 });
      expect(body.errors[0]!.message).toMatch(/^SEMANTIC search is unavailable: the embedding model failed to run/);
    } finally {
      rmSync(brokenDir, { recursive: true, force: true });
    }
  });
});

describe("a query embedder with a full queue", () => {
  it("refuses SEMANTIC and HYBRID asked for by name with 503 and Retry-After; a search without mode goes by words", async () => {
    // The queue's bound itself is tested on the real embedder (test/embed/model.test.ts); here, what
    // the API answers when it is reached.
    const busy = vi.spyOn(QueryEmbedder.prototype, "embedQuery").mockRejectedValue(new EmbedderBusyError(`${MAX_PENDING_QUERIES} queries are already waiting for the embedding model; try again shortly`));
    try {
      for (const mode of ["SEMANTIC", "HYBRID"]) {
        const res = await yoga.fetch("http://local/graphql", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ query: SEARCH, variables: { q: "a dog", mode } }),
        });
        expect([res.status, res.headers.get("retry-after")]).toEqual([503, "1"]);
        const body = (await res.json()) as { data: unknown; errors: { message: string; extensions: Record<string, unknown> }[] };
        expect(body.errors.map((e) => [e.message, e.extensions])).toEqual([
          [`${mode} search is busy: ${MAX_PENDING_QUERIES} queries are already waiting for the embedding model; try again shortly`, { code: "TEMPORARILY_UNAVAILABLE", argument: "mode", retryAfter: 1 }],
        ]);
      }
      const r = await search("a dog");
      expect(r.hits.length).toBeGreaterThan(0);
      expect(r.hits.every((h) => h.matchedBy.join() === "TEXT")).toBe(true);
      expect(busy).toHaveBeenCalledTimes(3);
    } finally {
      busy.mockRestore();
    }
  });

  it("a words-only answer given while the embedder was busy is not kept by the response cache: once it is free, the same search runs HYBRID", async () => {
    const cached = createGraphqlApp({ db: t.db, config: { ...config, GRAPHQL_RESPONSE_CACHE: true, GRAPHQL_RESPONSE_CACHE_MIN_ASKS: 1 } });
    const MODE = `query($q: String!) { search(query: $q) { mode edges { node { matchedBy artwork { qid } } } } }`;
    const busy = vi.spyOn(QueryEmbedder.prototype, "embedQuery").mockRejectedValue(new EmbedderBusyError("busy"));
    try {
      for (let i = 0; i < 3; i++) expect((await gql(cached, MODE, { q: "firing squad" })).data.search.mode).toBe("TEXT");
    } finally {
      busy.mockRestore();
    }
    const free = await gql(cached, MODE, { q: "firing squad" });
    expect(free.data.search.mode).toBe("HYBRID");
    expect(free.data.search.edges[0].node).toEqual({ matchedBy: ["MEANING"], artwork: { qid: "Q202" } });
    // A HYBRID answer is kept as before: the next ask does not embed the query again.
    const embeds = vi.spyOn(QueryEmbedder.prototype, "embedQuery");
    try {
      expect((await gql(cached, MODE, { q: "firing squad" })).data.search.mode).toBe("HYBRID");
      expect(embeds).not.toHaveBeenCalled();
    } finally {
      embeds.mockRestore();
    }
  });
});

/** The exit code once the process has closed its output (an exit event may come before the last output). */
const closed = (p: ReturnType<typeof runCli>) =>
  new Promise<number | null>((resolve) => (p.child.exitCode !== null && p.child.stdout!.closed ? resolve(p.child.exitCode) : p.child.once("close", (code) => resolve(code))));

describe("command line", () => {
  it("artdesc search --mode semantic, artdesc similar and artdesc embed --missing run as a user runs them", async () => {
    const env = { DATABASE_URL: t.url, MODEL_DIR: modelDir, EMBED_MODEL_ID: MODEL_ID, SEARCH_SEMANTIC_TOP_K: String(TOP_K) };
    const s = runCli(["search", "--mode", "semantic", "firing", "squad"], env);
    expect(await closed(s)).toBe(0);
    expect(s.output()).toMatch(/^1\. Q202 {2}El tres de mayo.*similarity 0\.\d+ {2}\(meaning\)$/m);
    const bad = runCli(["search", "--mode", "vectors", "dog"], env);
    expect(await closed(bad)).toBe(2);
    expect(bad.output()).toMatch(/--mode must be one of text, semantic, hybrid/);
    const sim = runCli(["similar", "q201", "--limit", "2"], env);
    expect(await closed(sim)).toBe(0);
    expect(sim.output()).toMatch(/Works nearest in meaning to Q201/);
    expect(sim.output()).toMatch(/^[12]\. Q20[45] /m);
    const tooMany = runCli(["similar", "Q201", "--limit", "500"], env);
    expect(await closed(tooMany)).toBe(2);
    // A work without a description: embedding cannot help, and the answer does not say to run it.
    const undescribed = runCli(["similar", "Q208"], env);
    expect(await closed(undescribed)).toBe(1);
    expect(undescribed.output()).toContain("Q208 has no description yet, so nothing to compare by meaning");
    const none = runCli(["embed", "--missing"], { ...env, MODEL_DIR: emptyModelDir });
    expect(await closed(none)).toBe(2);
    expect(none.output()).toContain("artdesc models pull --embed");
    const fill = runCli(["embed", "--missing"], env);
    expect(await closed(fill)).toBe(0);
    expect(fill.output()).toMatch(/embedded 0 descriptions \(0 unchanged\)/);
  }, 120_000);
});

describe("a text the embedding model refuses", () => {
  it("is recorded without a vector and leaves the candidates; the works beside it in the batch are embedded; searches never see it", async () => {
    const embeddedNow = async () => (await gql(yoga, `{ status { semanticSearch { embedded stale } } }`)).data.status.semanticSearch as { embedded: number; stale: number };
    const before = await embeddedNow();
    const goya = await t.db.creator.findFirstOrThrow({ where: { qid: "Q5432" } });
    const bad = await makeArtwork(t.db, { qid: "Q290", title: "Calabaza", description: "A pumpkin, unembeddable, glows in the night.", creators: [{ id: goya.id }] });
    await makeArtwork(t.db, { qid: "Q291", title: "Galgo", description: "A hound runs along a river.", creators: [{ id: goya.id }] });
    const refusing: Embedder = {
      info: embedder.info,
      close: async () => {},
      // What a vector that is not finite comes back as from the embedding thread.
      embed: async (texts, kind) => {
        if (texts.some((x) => x.includes("unembeddable"))) throw new EmbedRequestError("the embedding model produced a vector that is not finite", "NonFiniteEmbeddingError");
        if (texts.some((x) => x.includes("flaky"))) throw new EmbedRequestError("onnxruntime: failed to allocate memory", "Error");
        return embedder.embed(texts, kind);
      },
    };
    expect(await embedMissing(t.db, refusing, 10)).toEqual({
      embedded: 1,
      unchanged: 0,
      refused: [{ artworkId: bad.id, error: "the embedding model produced a vector that is not finite" }],
    });
    expect(await t.db.artworkEmbedding.findUniqueOrThrow({ where: { artworkId: bad.id } })).toMatchObject({ dims: 0, modelId: VECTOR_MODEL });
    // It left the candidates: the next run has nothing to do (no job loops on it).
    expect(await countStale(t.db, installedVectorModel(config))).toBe(0);
    expect(await embedMissing(t.db, refusing, 10)).toEqual({ embedded: 0, unchanged: 0 });
    expect(await embeddedNow()).toEqual({ embedded: before.embedded + 1, stale: 0 });
    // Searches and neighbours go on without it.
    const semantic = await search("pumpkin hound", { mode: "SEMANTIC" });
    expect(qids(semantic.hits)).toContain("Q291");
    expect(qids(semantic.hits)).not.toContain("Q290");
    // By words it is found as any work is (in the default HYBRID, by words only).
    const hybrid = await search("pumpkin");
    expect(hybrid.hits.find((h) => h.artwork.qid === "Q290")).toMatchObject({ matchedBy: ["TEXT"], similarity: null });
    const similar = await gql(yoga, `{ artwork(id: "Q290") { ... on Artwork { similar { similarity } } } }`);
    expect(similar.errors).toBeUndefined();
    expect(similar.data.artwork.similar).toEqual([]);
    // Another failure of the model (memory, say) is no refusal: the run fails, the vector stays.
    const other = await makeArtwork(t.db, { qid: "Q294", title: "Calabazas", description: "Pumpkins in a row.", creators: [{ id: goya.id }] });
    await embedMissing(t.db, refusing, 10);
    const kept = await t.db.artworkEmbedding.findUniqueOrThrow({ where: { artworkId: other.id } });
    await addDescription(t.db, other.id, "Pumpkins in a flaky row.");
    await expect(embedMissing(t.db, refusing, 10)).rejects.toThrow(/failed to allocate/);
    expect(await t.db.artworkEmbedding.findUniqueOrThrow({ where: { artworkId: other.id } })).toEqual(kept);
    await addDescription(t.db, other.id, "Pumpkins in a row.");
    // A new text is a new candidate.
    await addDescription(t.db, bad.id, "A pumpkin glows in the night.");
    // (Q294's text is its embedded one again: its row only moves to the new description.)
    expect(await embedMissing(t.db, refusing, 10)).toEqual({ embedded: 1, unchanged: 1 });
    expect((await t.db.artworkEmbedding.findUniqueOrThrow({ where: { artworkId: bad.id } })).dims).toBe(embedder.info.dims);
  });
});

describe("two embedders at once", () => {
  it("a vector replaced by a slow run that commits after a faster one's is still loaded into the index", async () => {
    const goya = await t.db.creator.findFirstOrThrow({ where: { qid: "Q5432" } });
    // Y has a vector; its text then changes: its vector is replaced (an update, the count unchanged).
    const y = await makeArtwork(t.db, { qid: "Q292", title: "Naufragio", description: "A ship on a calm sea at dawn.", creators: [{ id: goya.id }] });
    await embedMissing(t.db, embedder, 10);
    await search("sea", { mode: "SEMANTIC" });
    await addDescription(t.db, y.id, "Soldiers aim rifles at a man at night.");
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow: Embedder = { info: embedder.info, close: async () => {}, embed: async (texts, kind) => (await gate, embedder.embed(texts, kind)) };
    const slowRun = embedStale(t.db, slow, 1);
    await new Promise((r) => setTimeout(r, 50));
    // Meanwhile a new work (missing vectors go first) is embedded by a second embedder, and searched.
    await makeArtwork(t.db, { qid: "Q293", title: "Perrillo", description: "A small dog sleeps.", creators: [{ id: goya.id }] });
    expect(await embedStale(t.db, embedder, 1)).toEqual({ embedded: 1, unchanged: 0 });
    await search("dog", { mode: "SEMANTIC" });
    release();
    expect(await slowRun).toEqual({ embedded: 1, unchanged: 0 });
    // The index scores Y with its new vector, the one in the database.
    const [query] = await embedder.embed(["firing squad"], "query");
    const stored = decodeVector((await t.db.artworkEmbedding.findUniqueOrThrow({ where: { artworkId: y.id } })).vector);
    const expected = stored.reduce((sum, v, i) => sum + v * query![i]!, 0);
    const hit = (await search("firing squad", { mode: "SEMANTIC", first: 50 })).hits.find((h) => h.artwork.qid === "Q292");
    expect(hit?.similarity).toBeCloseTo(expected, 4);
  });
});
