import { createHash } from "node:crypto";
import type Database from "better-sqlite3";
import { type Db, kindOf, readConnection } from "../db.js";
import { vectorIndex } from "../embed/vector-index.js";
import { BoundedLru } from "../graphql/bounded-lru.js";
import { type ArtworkFilter, creatorWhere } from "../store/artwork-filter.js";
import { altText } from "../text/alt-text.js";
import { meaningText, parseSearchQuery, renderExcludedQuery, renderFtsQuery, type Term } from "./fts-query.js";
import {
  postgresCountMatches,
  postgresHasVectors,
  postgresKeptResults,
  postgresRebuildSearchIndex,
  postgresSearchPage,
  postgresSimilarWorks,
} from "./postgres-search.js";
import { fts5Snippet, type SnippetMarks, type SnippetPhrase, snippetPhrases } from "./fts5-snippet.js";
import { ELLIPSIS, HIT_CLOSE, HIT_OPEN, SNIPPET_TOKENS, unmarkedText } from "./snippet.js";

export { snippetHtml, snippetText } from "./snippet.js";

/**
 * BM25 weight of each indexed column, in the table's column order: titles count most. On
 * PostgreSQL the same order becomes tsvector weights A (titles) to D (description), and these
 * numbers, relative to the titles', ts_rank's weights (postgres-search.ts).
 */
export const COLUMN_WEIGHTS = { titles: 10, description: 1, creators: 4, subjects: 2 } as const;
const BM25 = `bm25(artwork_fts, ${Object.values(COLUMN_WEIGHTS).join(", ")})`;

export type SearchFilter = Pick<ArtworkFilter, "creator" | "attribution" | "hasDescription">;

/** TEXT: words (BM25); SEMANTIC: meaning (cosine of description embeddings); HYBRID: both, fused by reciprocal rank. */
export const SEARCH_MODES = ["TEXT", "SEMANTIC", "HYBRID"] as const;
export type SearchMode = (typeof SEARCH_MODES)[number];
export type MatchKind = "TEXT" | "MEANING";

export interface SearchHit {
  artworkId: number;
  /**
   * Relevance: higher is better (SQLite: BM25, sign flipped so that larger means more relevant;
   * PostgreSQL: ts_rank on the weighted vector); 0 for a hit matched by meaning alone.
   */
  score: number;
  /** Part of the current description around the matches, with the matches marked; for a meaning-only hit its opening sentences; null without a description. */
  snippet: string | null;
  /** Position in the whole result list, from 1. */
  rank: number;
  /** Cosine similarity of the query and the work's description embedding; null in TEXT mode or without a vector. */
  similarity: number | null;
  /** What the hit matched on: its words (TEXT), its meaning (MEANING: among the SEARCH_SEMANTIC_TOP_K nearest), or both. */
  matchedBy: readonly MatchKind[];
}

/**
 * What semantic search needs from the process (src/embed/embedder.ts's QueryEmbedder plus the
 * settings): whether a model is installed, and the query's vector, computed off the event loop.
 */
export interface MeaningSource {
  modelId: string;
  /** The semantic hit set: the K nearest works by cosine (SEARCH_SEMANTIC_TOP_K)… */
  topK: number;
  /** …whose cosine is above this (SEARCH_SEMANTIC_MIN_SIMILARITY). */
  minSimilarity: number;
  /** k of reciprocal rank fusion (SEARCH_RRF_K). */
  rrfK: number;
  available(): boolean;
  embedQuery(text: string): Promise<Float32Array>;
}

/** SEMANTIC or HYBRID was asked for and no embedding model is installed (or no work has a vector yet). */
export class SemanticSearchUnavailableError extends Error {
  override name = "SemanticSearchUnavailableError";
}

export interface SearchPage {
  readonly hits: readonly SearchHit[];
  hasMore: boolean;
}

/** A query parsed and its filter resolved, ready to rank or count (prepareSearch). */
export interface PreparedSearch {
  terms: readonly Term[];
  /** SQL conditions on the matching row `f` and their parameters (on PostgreSQL numbered $1…, first in a statement). */
  restrict: string;
  params: unknown[];
  /** Identifies the query, filter and mode in the kept results. */
  key: string;
  mode: SearchMode;
  /** The query's embedding and settings, for SEMANTIC and HYBRID. */
  meaning: { vector: Float32Array; modelId: string; topK: number; minSimilarity: number; rrfK: number } | null;
}

export interface SearchOptions {
  /** Default: HYBRID when an embedding model is installed and works have vectors, else TEXT. */
  mode?: SearchMode | null;
  meaning?: MeaningSource | null;
  /** A default HYBRID search that fell back to TEXT (the query could not be embedded): for the log. */
  onFallback?: (err: unknown) => void;
}

/**
 * Parses what a person typed (see fts-query.ts) and resolves the filter. Throws SearchQueryError
 * for a query that cannot be searched; null when the filter's creator matches nobody, so nothing
 * can match.
 */
export async function prepareSearch(db: Db, query: string, filter: SearchFilter = {}, options: SearchOptions = {}): Promise<PreparedSearch | null> {
  const terms = parseSearchQuery(query);
  const postgres = kindOf(db) === "postgresql";
  let resolved = resolveMode(db, options);
  if (resolved instanceof Promise) resolved = await resolved;
  const mode = resolved;
  let meaning: PreparedSearch["meaning"] = null;
  if (mode !== "TEXT") {
    const source = options.meaning!;
    try {
      meaning = { vector: await source.embedQuery(meaningText(terms)), modelId: source.modelId, topK: source.topK, minSimilarity: source.minSimilarity, rrfK: source.rrfK };
    } catch (err) {
      if (options.mode) throw err;
      options.onFallback?.(err);
    }
  }
  const params: unknown[] = [];
  // The filter runs on the matching rows (a primary-key lookup each), not as a list of ids: a
  // broad filter ("has a description") would otherwise ship every id into the query.
  const conditions: string[] = [];
  if (filter.creator != null || filter.attribution?.length) {
    const attributed: string[] = [];
    if (filter.creator != null) {
      // Creators are matched as the artwork lists match them (src/store/artwork-filter.ts).
      const creators = await db.creator.findMany({ where: creatorWhere(filter.creator), select: { id: true } });
      if (!creators.length) return null;
      params.push(JSON.stringify(creators.map((c) => c.id)));
      attributed.push(
        postgres ? `ac."creatorId" IN (SELECT jsonb_array_elements_text($${params.length}::jsonb)::int)` : `ac.creatorId IN (SELECT value FROM json_each(?))`,
      );
    }
    if (filter.attribution?.length) {
      params.push(JSON.stringify(filter.attribution));
      attributed.push(
        postgres ? `ac."attribution"::text IN (SELECT jsonb_array_elements_text($${params.length}::jsonb))` : `ac.attribution IN (SELECT value FROM json_each(?))`,
      );
    }
    conditions.push(
      postgres
        ? `EXISTS (SELECT 1 FROM "ArtworkCreator" ac WHERE ac."artworkId" = f."id" AND ${attributed.join(" AND ")})`
        : `EXISTS (SELECT 1 FROM ArtworkCreator ac WHERE ac.artworkId = f.rowid AND ${attributed.join(" AND ")})`,
    );
  }
  if (filter.hasDescription != null) {
    conditions.push(
      postgres
        ? `${filter.hasDescription ? "" : "NOT "}EXISTS (SELECT 1 FROM "Artwork" a WHERE a."id" = f."id" AND a."currentDescriptionId" IS NOT NULL)`
        : `${filter.hasDescription ? "" : "NOT "}EXISTS (SELECT 1 FROM Artwork a WHERE a.id = f.rowid AND a.currentDescriptionId IS NOT NULL)`,
    );
  }
  const restrict = conditions.map((c) => `AND ${c}`).join(" ");
  const used: SearchMode = meaning ? mode : "TEXT";
  // A creator filter can stand for hundreds of creator ids: keep long keys short.
  const key = JSON.stringify([used, terms, restrict, params, meaning && [meaning.modelId, meaning.topK, meaning.minSimilarity, meaning.rrfK]]);
  return { terms, restrict, params, key: key.length > 200 ? createHash("sha256").update(key).digest("base64") : key, mode: used, meaning };
}

/** The mode a search runs in: the one asked for (refused when it cannot run), else HYBRID once vectors exist. A promise on PostgreSQL. */
function resolveMode(db: Db, options: SearchOptions): SearchMode | Promise<SearchMode> {
  if (options.mode === "TEXT") return "TEXT";
  const source = options.meaning;
  const vectors = !!source && source.available() && hasVectors(db, source.modelId);
  return vectors instanceof Promise ? vectors.then((ready) => modeFor(options, ready)) : modeFor(options, vectors);
}

function modeFor(options: SearchOptions, ready: boolean): SearchMode {
  const source = options.meaning;
  if (options.mode) {
    if (!source || !source.available()) {
      throw new SemanticSearchUnavailableError(`${options.mode} search needs the embedding model, which is not installed: run artdesc models pull --embed (TEXT search works without it).`);
    }
    if (!ready) throw new SemanticSearchUnavailableError(`${options.mode} search has no embedded descriptions yet: run artdesc embed --missing, or wait for a worker to embed them.`);
    return options.mode;
  }
  return ready ? "HYBRID" : "TEXT";
}

function hasVectors(db: Db, modelId: string): boolean | Promise<boolean> {
  if (kindOf(db) === "postgresql") return postgresHasVectors(db, modelId);
  return !!searchReader(db).statement(`SELECT 1 FROM ArtworkEmbedding WHERE modelId = ? AND dims > 0 LIMIT 1`).get(modelId);
}

const NO_MATCHES: SearchPage = Object.freeze({ hits: Object.freeze([]), hasMore: false });

/**
 * Rows `offset` to `offset + limit - 1` of the matches, best first, ties in id order, with
 * snippets (none for a null search: it matches nothing). On SQLite the SQL runs on the query-only
 * connection (readConnection) with statements prepared once (through Prisma, which prepares every
 * statement on every call, a search cost twice the CPU), and recent results are kept until the
 * next commit (SearchReader); the page is frozen. On PostgreSQL (postgres-search.ts) the answer
 * is a promise.
 */
export function searchPage(db: Db, search: PreparedSearch | null, limit: number, offset = 0): SearchPage | Promise<SearchPage> {
  if (!search) return NO_MATCHES;
  if (kindOf(db) === "postgresql") {
    if (limit === 0) return postgresCountMatches(db, search).then((n) => Object.freeze({ hits: Object.freeze([]), hasMore: n > offset }));
    return postgresSearchPage(db, search, limit, offset);
  }
  // An empty page (asked for to learn whether there are more): counting is enough.
  if (limit === 0) return Object.freeze({ hits: Object.freeze([]), hasMore: (countMatches(db, search) as number) > offset });
  if (search.mode !== "TEXT") return fusedPage(db, search, limit, offset);
  const reader = searchReader(db);
  return reader.kept(`page ${limit} ${offset} ${search.key}`, () => {
    const terms = resolvedTerms(reader, search.terms);
    // Rank every match, then make snippets for the page's rows only, from their texts (fts5-snippet.ts).
    const ranked = reader
      .statement(
        `SELECT f.rowid AS id, ${BM25} AS rank FROM artwork_fts f
         WHERE artwork_fts MATCH ? ${search.restrict}
         ORDER BY rank, f.rowid LIMIT ? OFFSET ?`,
      )
      .all(renderFtsQuery(terms), ...search.params, limit + 1, offset) as { id: number; rank: number }[];
    const page = ranked.slice(0, limit);
    const descriptions = indexedDescriptions(reader, page.map((r) => r.id));
    const phrases = snippetPhrases(terms);
    const hits = page.map((r, i) => {
      const description = descriptions.get(r.id) ?? "";
      return Object.freeze({
        artworkId: r.id,
        score: -r.rank,
        snippet: description ? fts5Snippet(description, phrases, SNIPPET_MARKS) : null,
        rank: offset + i + 1,
        similarity: null,
        matchedBy: TEXT_ONLY,
      });
    });
    // Kept and shared by later searches: nobody may change it.
    return Object.freeze({ hits: Object.freeze(hits), hasMore: ranked.length > limit });
  });
}

const TEXT_ONLY: readonly MatchKind[] = Object.freeze(["TEXT"]);
const MEANING_ONLY: readonly MatchKind[] = Object.freeze(["MEANING"]);
const BOTH: readonly MatchKind[] = Object.freeze(["TEXT", "MEANING"]);

/** One row of a SEMANTIC or HYBRID result list. */
export interface FusedRow {
  id: number;
  /** BM25 (sign flipped) when the words match, else 0. */
  score: number;
  matchedBy: readonly MatchKind[];
  /** Reciprocal rank fusion: sum over the lists the work is in of 1 / (k + its rank there). */
  fused: number;
}

/**
 * A SEMANTIC or HYBRID hit from its fused row (either database): `marked` is the snippet of a word
 * match; a hit by meaning alone has no word to mark, so the description's opening sentences stand for it.
 */
export function fusedHit(r: FusedRow, rank: number, description: string, marked: string | null, similarity: number | null): SearchHit {
  const snippet = !description ? null : marked ?? altText(unmarkedText(description), MEANING_SNIPPET_CHARS);
  return Object.freeze({ artworkId: r.id, score: r.score, snippet, rank, similarity, matchedBy: r.matchedBy });
}

/** A SEMANTIC or HYBRID result list, best first, as parallel arrays (thousands of rows: no object each). */
export interface FusedOrder {
  readonly ids: readonly number[];
  readonly matchedBy: readonly (readonly MatchKind[])[];
  /** The fused score (SEMANTIC: the cosine similarity). */
  readonly fused: readonly number[];
  /** Position in the text ranking, from 1; 0 for a work matched by meaning alone. */
  readonly textRank: readonly number[];
}

/**
 * Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009): each work scores
 * sum 1 / (k + rank) over the rankings it appears in (ranks from 1), best first, ties in id order.
 * Pure: `text` is every word match's id, best first; `meaning` the top K ids by cosine, best first.
 * A work found by its words alone scores 1 / (k + r), which falls as its rank r grows, so those
 * works keep their text order: only the K meaning works are sorted, and one merge places them
 * among the rest (the text list holds every match: thousands for common words).
 */
export function fuseOrder(text: readonly number[], meaning: readonly number[], k: number): FusedOrder {
  const meaningRank = new Map<number, number>();
  meaning.forEach((id, i) => meaningRank.set(id, i + 1));
  const textRank = new Map<number, number>();
  for (let i = 0; i < text.length && textRank.size < meaningRank.size; i++) if (meaningRank.has(text[i]!)) textRank.set(text[i]!, i + 1);
  const ranked = meaning
    .map((id) => {
      const r = textRank.get(id);
      const m = 1 / (k + meaningRank.get(id)!);
      return r === undefined ? { id, fused: m, matchedBy: MEANING_ONLY } : { id, fused: 1 / (k + r) + m, matchedBy: BOTH };
    })
    .sort((a, b) => b.fused - a.fused || a.id - b.id);
  const order = { ids: [] as number[], matchedBy: [] as (readonly MatchKind[])[], fused: [] as number[], textRank: [] as number[] };
  const put = (id: number, matchedBy: readonly MatchKind[], fused: number, rank: number) => {
    order.ids.push(id);
    order.matchedBy.push(matchedBy);
    order.fused.push(fused);
    order.textRank.push(rank);
  };
  let next = 0;
  for (let i = 0; i <= text.length; i++) {
    const id = text[i];
    if (id !== undefined && textRank.has(id)) continue;
    const fused = id === undefined ? -Infinity : 1 / (k + i + 1);
    for (let m = ranked[next]; m && (m.fused > fused || (m.fused === fused && m.id < id!)); m = ranked[++next]) put(m.id, m.matchedBy, m.fused, textRank.get(m.id) ?? 0);
    if (id !== undefined) put(id, TEXT_ONLY, fused, i + 1);
  }
  return order;
}

/**
 * The semantic hit set from the K nearest (best first): those whose cosine is above the floor. The
 * default floor, 0, drops only works orthogonal or opposite to the query; every work, for a query
 * the model reads nothing of (a zero vector).
 */
export function meaningHits<T extends { similarity: number }>(nearest: readonly T[], minSimilarity: number): readonly T[] {
  const end = nearest.findIndex((n) => !(n.similarity > minSimilarity));
  return end < 0 ? nearest : nearest.slice(0, end);
}

/** fuseOrder on rows: the text ranking's rows carry their score, kept in the fused rows. */
export function fuseRanks(text: readonly { id: number; score: number }[], meaning: readonly { id: number }[], k: number): FusedRow[] {
  const order = fuseOrder(
    text.map((t) => t.id),
    meaning.map((m) => m.id),
    k,
  );
  return order.ids.map((id, i) => ({ id, score: order.textRank[i] ? text[order.textRank[i]! - 1]!.score : 0, matchedBy: order.matchedBy[i]!, fused: order.fused[i]! }));
}

/**
 * The whole SEMANTIC or HYBRID result list, kept like pages. The semantic hit set is the topK
 * nearest works by cosine among those the filter allows and no excluded word matches, less those
 * whose cosine is not above minSimilarity (meaningHits); HYBRID adds
 * every word match and orders the union by reciprocal rank fusion, so totalCount is the union's size.
 */
function fusedList(db: Db, reader: SearchReader, search: PreparedSearch): KeptFusedOrder {
  return reader.kept(`list ${search.key}`, () => {
    const meaning = search.meaning!;
    const index = vectorIndex(readConnection(db), meaning.modelId);
    index.refresh();
    // Without a filter "allowed" is "in the index" (active), asked only of works close enough to
    // enter the top K: the 2K nearest in one query (indexedAmong, about 0.08 ms for a search; a
    // b-tree seek each took 0.35 ms), where listing every id takes about 2.5 ms for 20,000 works.
    // A filter may allow few: those are listed.
    const indexed = reader.statement(IS_INDEXED).pluck();
    const allowed = search.restrict
      ? new Set(reader.statement(`SELECT f.rowid FROM ${INDEXED_IDS} f WHERE 1 ${search.restrict}`).pluck().all(...search.params) as number[])
      : { has: (id: number) => indexed.get(id) !== undefined };
    const excludedQuery = renderExcludedQuery(search.terms);
    const excluded = new Set(excludedQuery ? (reader.statement(`SELECT rowid FROM artwork_fts WHERE artwork_fts MATCH ?`).pluck().all(excludedQuery) as number[]) : []);
    const among = search.restrict ? undefined : (ids: readonly number[]) => indexedAmong(reader, ids, (id) => !excluded.has(id));
    const nearest = meaningHits(index.nearest(meaning.vector, meaning.topK, (id) => allowed.has(id) && !excluded.has(id), among), meaning.minSimilarity);
    const ids = nearest.map((n) => n.artworkId);
    if (search.mode === "SEMANTIC") {
      return frozenOrder({ ids, matchedBy: ids.map(() => MEANING_ONLY), fused: nearest.map((n) => n.similarity), textRank: ids.map(() => 0) }, [], NO_SCORES);
    }
    // Each word match's BM25 comes with it (reading it costs little next to ranking by it), kept
    // for the pages' scores; the phrases the MATCH held (it reads the vocabulary), for their snippets.
    const terms = resolvedTerms(reader, search.terms);
    const rows = reader
      .statement(`SELECT f.rowid, ${BM25} AS rank FROM artwork_fts f WHERE artwork_fts MATCH ? ${search.restrict} ORDER BY rank, f.rowid`)
      .raw()
      .all(renderFtsQuery(terms), ...search.params) as [number, number][];
    const scores = new Float64Array(rows.length);
    const text = rows.map(([id, rank], i) => ((scores[i] = -rank), id));
    return frozenOrder(fuseOrder(text, ids, meaning.rrfK), snippetPhrases(terms), scores);
  });
}

/**
 * A fused list as kept (FusedOrder in typed arrays: kept lists live until the next commit, up to
 * CACHED_SEARCH_RESULTS of them, thousands of rows each, and typed arrays keep their numbers
 * outside the garbage-collected heap, which would otherwise copy them as they age), with the phrases
 * its pages' snippets mark and the text ranking's scores (BM25, sign flipped) in its order.
 */
interface KeptFusedOrder {
  readonly ids: Int32Array;
  readonly fused: Float64Array;
  /** Position in the text ranking, from 1; 0 for a work matched by meaning alone. */
  readonly textRank: Int32Array;
  /** 1 where the work is among the nearest by meaning. */
  readonly byMeaning: Uint8Array;
  readonly phrases: readonly SnippetPhrase[];
  readonly textScores: Float64Array;
}

const NO_SCORES = new Float64Array(0);

/** Kept and shared by later searches: nobody may change it (its arrays are never written after this). */
function frozenOrder(o: FusedOrder, phrases: readonly SnippetPhrase[], textScores: Float64Array): KeptFusedOrder {
  // A loop, not Uint8Array.from with a mapper: that took 275 µs for 3,251 works, the loop 6 µs.
  const byMeaning = new Uint8Array(o.matchedBy.length);
  for (let i = 0; i < byMeaning.length; i++) byMeaning[i] = o.matchedBy[i] === TEXT_ONLY ? 0 : 1;
  return Object.freeze({
    ids: Int32Array.from(o.ids),
    fused: Float64Array.from(o.fused),
    textRank: Int32Array.from(o.textRank),
    byMeaning,
    phrases,
    textScores,
  });
}

const matchedByOf = (list: KeptFusedOrder, i: number): readonly MatchKind[] => (list.textRank[i]! > 0 ? (list.byMeaning[i] ? BOTH : TEXT_ONLY) : MEANING_ONLY);

/** Characters of a meaning-only hit's snippet: its description's opening sentences (alt-text rules). */
export const MEANING_SNIPPET_CHARS = 200;

function fusedPage(db: Db, search: PreparedSearch, limit: number, offset: number): SearchPage {
  const reader = searchReader(db);
  return reader.kept(`page ${limit} ${offset} ${search.key}`, () => {
    const list = fusedList(db, reader, search);
    const pageIds = Array.from(list.ids.subarray(offset, offset + limit));
    const page: FusedRow[] = pageIds.map((id, i) => {
      const rank = list.textRank[offset + i]!;
      return { id, score: rank ? list.textScores[rank - 1]! : 0, matchedBy: matchedByOf(list, offset + i), fused: list.fused[offset + i]! };
    });
    const descriptions = indexedDescriptions(reader, pageIds);
    const index = vectorIndex(readConnection(db), search.meaning!.modelId);
    const hits = page.map((r, i) => {
      const description = descriptions.get(r.id) ?? "";
      // A word match's snippet marks its words; fusedHit gives a meaning-only hit its opening sentences.
      const marked = description && list.textRank[offset + i]! > 0 ? fts5Snippet(description, list.phrases, SNIPPET_MARKS) : null;
      return fusedHit(r, offset + i + 1, description, marked, index.similarity(search.meaning!.vector, r.id));
    });
    return Object.freeze({ hits: Object.freeze(hits), hasMore: list.ids.length > offset + limit });
  });
}

/** How many active artworks match (no ranking: about a fifth of the cost of a page); 0 for a null search. A promise on PostgreSQL. */
export function countMatches(db: Db, search: PreparedSearch | null): number | Promise<number> {
  if (!search) return 0;
  if (kindOf(db) === "postgresql") return postgresCountMatches(db, search);
  const reader = searchReader(db);
  if (search.mode !== "TEXT") return fusedList(db, reader, search).ids.length;
  return reader.kept(`count ${search.key}`, () => {
    const sql = `SELECT COUNT(*) FROM artwork_fts f WHERE artwork_fts MATCH ? ${search.restrict}`;
    return Number(reader.statement(sql).pluck().get(renderFtsQuery(resolvedTerms(reader, search.terms)), ...search.params));
  });
}

/** prepareSearch, then searchPage: for callers that want one page. */
export async function searchArtworks(
  db: Db,
  query: string,
  options: { filter?: SearchFilter; limit: number; offset?: number } & SearchOptions,
): Promise<SearchPage> {
  return searchPage(db, await prepareSearch(db, query, options.filter, options), options.limit, options.offset);
}

/**
 * The terms the MATCH expression is rendered from. An implied prefix helps while a word is half
 * typed; once the last word is a whole word in the index, it is searched as that word: prefix
 * matching costs several times more on common words.
 */
function resolvedTerms(reader: SearchReader, terms: readonly Term[]): Term[] {
  const last = terms.at(-1)!;
  if (last.prefix === "implied" && reader.statement(HAS_WORD).get(renderFtsQuery([{ words: [last.words.at(-1)!], prefix: false, negated: false }]))) {
    return [...terms.slice(0, -1), { ...last, prefix: false }];
  }
  return [...terms];
}

/**
 * Whether a word is in the index: the first row of its MATCH (FTS5 reads its doclist lazily, about
 * 0.02 ms). Asking artwork_fts_vocab for the term costs about 0.1 ms: it counts the term's whole doclist.
 */
const HAS_WORD = `SELECT 1 FROM artwork_fts WHERE artwork_fts MATCH ? LIMIT 1`;
/** FTS5's snippet(artwork_fts, 1, HIT_OPEN, HIT_CLOSE, '…', SNIPPET_TOKENS), computed from the text (fts5-snippet.ts). */
const SNIPPET_MARKS: SnippetMarks = Object.freeze({ open: HIT_OPEN, close: HIT_CLOSE, ellipsis: ELLIPSIS, tokens: SNIPPET_TOKENS });
/** The indexed description (artwork_fts's description column: the current description, '' without one) of each listed work. */
function indexedDescriptions(reader: SearchReader, ids: readonly number[]): Map<number, string> {
  if (!ids.length) return new Map();
  const rows = reader.statement(DESCRIPTIONS).raw().all(JSON.stringify(ids)) as [number, string][];
  return new Map(rows);
}
const DESCRIPTIONS = `SELECT rowid, description FROM artwork_fts WHERE rowid IN (SELECT value FROM json_each(?))`;
/**
 * The ids of the works in the full-text index (the active ones), as a plain table: FTS5's
 * %_docsize shadow table, one small row per indexed work, id its INTEGER PRIMARY KEY (rowid).
 * A lookup there is a b-tree seek (about 1 µs); `WHERE rowid = ?` on artwork_fts itself goes
 * through the virtual table and reads the row's text (about 8 µs), and listing its rowids reads
 * every text (about 20–100 ms for 20,000 works).
 */
const INDEXED_IDS = "artwork_fts_docsize";
/** Whether a work is in the full-text index (active): one seek. */
const IS_INDEXED = `SELECT 1 FROM ${INDEXED_IDS} WHERE id = ?`;
/** Those of the listed works that are in the full-text index (active) and pass `keep`: one query for the list. */
function indexedAmong(reader: SearchReader, ids: readonly number[], keep: (id: number) => boolean): Set<number> {
  const rows = reader.statement(`SELECT id FROM ${INDEXED_IDS} WHERE id IN (SELECT value FROM json_each(?))`).pluck().all(JSON.stringify(ids)) as number[];
  return new Set(rows.filter(keep));
}

/** Results kept per process: pages (10 hits with snippets are about 3 kB), counts and fused lists. */
export const CACHED_SEARCH_RESULTS = 500;
/**
 * Bytes of kept results per process, about. A fused list holds 25 bytes per matching work, and a
 * query of common words matches every work: 500 such lists of 20,000 works would be 250 MB.
 */
export const CACHED_SEARCH_BYTES = 32 * 1024 * 1024;

/**
 * A kept result's size in bytes, about: a page (its snippets, two bytes a character, and each
 * hit's fields), a fused list (its typed arrays; on PostgreSQL an array of rows), similar works,
 * a typed array (PostgreSQL's active ids), a count. Here and in postgres-search.ts.
 */
export function keptResultBytes(value: unknown): number {
  if (value === null || typeof value !== "object") return 16;
  if (Array.isArray(value)) return 64 + value.length * 96;
  if (ArrayBuffer.isView(value)) return 64 + value.byteLength;
  if ("hits" in value) return 64 + (value as SearchPage).hits.reduce((n, h) => n + 128 + 2 * (h.snippet?.length ?? 0), 0);
  const list = value as KeptFusedOrder;
  return 256 * (list.phrases.length + 1) + [list.ids, list.fused, list.textRank, list.byMeaning, list.textScores].reduce((n, a) => n + a.byteLength, 0);
}

/**
 * The read connection with its statements prepared once (a handful: one per filter
 * combination), and recent results. Ranking is most of a search's cost (BM25 over every match),
 * so, like Solr's query result cache, results are kept until the database changes: SQLite's
 * data_version moves with every commit by any other connection, this process's Prisma client
 * and other processes included, and then all kept results are dropped.
 */
interface SearchReader {
  statement(sql: string): Database.Statement;
  readonly results: BoundedLru<unknown>;
  /**
   * In one read transaction: the result kept for `key` if nothing was committed since, else
   * compute's, kept (kept results are bounded in count and bytes, least recently used first).
   * The check and compute's statements see the same database.
   */
  kept<T>(key: string, compute: () => T): T;
}

const searchReaders = new WeakMap<Database.Database, SearchReader>();
function searchReader(db: Db): SearchReader {
  const connection = readConnection(db);
  let reader = searchReaders.get(connection);
  if (reader) return reader;
  const statements = new Map<string, Database.Statement>();
  const results = new BoundedLru<unknown>({ maxEntries: CACHED_SEARCH_RESULTS, maxBytes: CACHED_SEARCH_BYTES });
  const dataVersion = connection.prepare("PRAGMA data_version").pluck();
  let resultsVersion: unknown;
  // data_version is read first, so it opens the transaction's snapshot.
  const keptInTransaction = connection.transaction((key: string, compute: () => unknown) => {
    const version = dataVersion.get();
    if (version !== resultsVersion) {
      results.clear();
      resultsVersion = version;
    }
    const kept = results.get(key);
    if (kept !== undefined) return kept;
    const result = compute();
    results.set(key, result, keptResultBytes(result));
    return result;
  });
  reader = {
    results,
    statement(sql) {
      let statement = statements.get(sql);
      if (!statement) statements.set(sql, (statement = connection.prepare(sql)));
      return statement;
    },
    kept: <T>(key: string, compute: () => T) => keptInTransaction(key, compute) as T,
  };
  searchReaders.set(connection, reader);
  return reader;
}

/** How many results this process keeps for `db` until the next commit, and their bytes (keptResultBytes). */
export function keptSearchResults(db: Db): { entries: number; bytes: number } {
  const results = kindOf(db) === "postgresql" ? postgresKeptResults(db) : searchReader(db).results;
  return { entries: results?.size ?? 0, bytes: results?.bytes ?? 0 };
}

/**
 * Refills the index from the store in one transaction (after a restore, or if it was ever
 * damaged); returns the number of artworks indexed.
 */
export async function rebuildSearchIndex(db: Db): Promise<number> {
  if (kindOf(db) === "postgresql") return postgresRebuildSearchIndex(db);
  const [, indexed] = await db.$transaction([
    db.$executeRawUnsafe(`DELETE FROM artwork_fts`),
    db.$executeRawUnsafe(
      `INSERT INTO artwork_fts (rowid, titles, description, creators, subjects)
       SELECT id, titles, description, creators, subjects FROM artwork_fts_source`,
    ),
    db.$executeRawUnsafe(`INSERT INTO artwork_fts (artwork_fts) VALUES ('optimize')`),
  ]);
  return indexed;
}

/** Number of artworks in the index (for `status` and checks). */
export async function searchIndexSize(db: Db): Promise<number> {
  const [row] = await db.$queryRawUnsafe<{ n: number | bigint }[]>(`SELECT COUNT(*) AS n FROM artwork_fts`);
  return Number(row?.n ?? 0);
}

/** Most neighbours `similarWorks` gives (Artwork.similar's first, `artdesc similar --limit`). */
export const MAX_SIMILAR = 50;

export interface SimilarWork {
  artworkId: number;
  similarity: number;
}

/**
 * The active works whose description embeddings are nearest to this work's, best first (exact
 * cosine over every vector of the model), optionally only works sharing a creator with it. Null
 * when the work has no vector of this model (not described, or not embedded yet). Kept until the
 * next commit, like search results. A promise on PostgreSQL.
 */
export function similarWorks(
  db: Db,
  artworkId: number,
  o: { modelId: string; limit: number; sameCreator: boolean },
): readonly SimilarWork[] | null | Promise<readonly SimilarWork[] | null> {
  const limit = Math.max(0, Math.min(MAX_SIMILAR, Math.trunc(o.limit)));
  if (kindOf(db) === "postgresql") return postgresSimilarWorks(db, artworkId, o.modelId, limit, o.sameCreator);
  const reader = searchReader(db);
  return reader.kept(`similar ${o.modelId} ${artworkId} ${limit} ${o.sameCreator}`, () => {
    const index = vectorIndex(readConnection(db), o.modelId);
    index.refresh();
    const vector = index.vectorOf(artworkId);
    if (!vector) return null;
    // Any creator: "allowed" is "indexed" (active), asked only of works close enough to be among
    // the nearest (as in fusedList). Same creator: the creator's works, listed.
    const indexed = reader.statement(IS_INDEXED).pluck();
    const allowed = o.sameCreator
      ? new Set(
          reader
            .statement(
              `SELECT DISTINCT f.id FROM ArtworkCreator mine JOIN ArtworkCreator other ON other.creatorId = mine.creatorId
               JOIN ${INDEXED_IDS} f ON f.id = other.artworkId WHERE mine.artworkId = ?`,
            )
            .pluck()
            .all(artworkId) as number[],
        )
      : { has: (id: number) => indexed.get(id) !== undefined };
    const others = (id: number) => id !== artworkId && allowed.has(id);
    const among = o.sameCreator ? undefined : (ids: readonly number[]) => indexedAmong(reader, ids, (id) => id !== artworkId);
    return Object.freeze(index.nearest(vector, limit, others, among).map((n) => Object.freeze({ artworkId: n.artworkId, similarity: n.similarity })));
  });
}
