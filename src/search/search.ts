import { createHash } from "node:crypto";
import type Database from "better-sqlite3";
import { type Db, readConnection } from "../db.js";
import { type ArtworkFilter, creatorWhere } from "../store/artwork-filter.js";
import { normalizeWords } from "../text/normalize.js";
import { parseSearchQuery, renderFtsQuery, type Term } from "./fts-query.js";

/** BM25 weight of each indexed column, in the table's column order: titles count most. */
export const COLUMN_WEIGHTS = { titles: 10, description: 1, creators: 4, subjects: 2 } as const;
const BM25 = `bm25(artwork_fts, ${Object.values(COLUMN_WEIGHTS).join(", ")})`;

// Private-use characters mark the matched words in a snippet; they never occur in text the
// index holds, so formatting can escape everything else and then turn them into tags.
const HIT_OPEN = "\uE000";
const HIT_CLOSE = "\uE001";
const SNIPPET_TOKENS = 32;

export type SearchFilter = Pick<ArtworkFilter, "creator" | "attribution" | "hasDescription">;

export interface SearchHit {
  artworkId: number;
  /** Relevance: higher is better (BM25, sign flipped so that larger means more relevant). */
  score: number;
  /** Part of the current description around the matches, with the matches marked; null without a description. */
  snippet: string | null;
}

export interface SearchPage {
  readonly hits: readonly SearchHit[];
  hasMore: boolean;
}

/** A query parsed and its filter resolved, ready to rank or count (prepareSearch). */
export interface PreparedSearch {
  terms: readonly Term[];
  /** SQL conditions on the matching row `f` and their parameters. */
  restrict: string;
  params: unknown[];
  /** Identifies the query and filter in the kept results. */
  key: string;
}

/**
 * Parses what a person typed (see fts-query.ts) and resolves the filter. Throws SearchQueryError
 * for a query that cannot be searched; null when the filter's creator matches nobody, so nothing
 * can match.
 */
export async function prepareSearch(db: Db, query: string, filter: SearchFilter = {}): Promise<PreparedSearch | null> {
  const terms = parseSearchQuery(query);
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
      attributed.push(`ac.creatorId IN (SELECT value FROM json_each(?))`);
      params.push(JSON.stringify(creators.map((c) => c.id)));
    }
    if (filter.attribution?.length) {
      attributed.push(`ac.attribution IN (SELECT value FROM json_each(?))`);
      params.push(JSON.stringify(filter.attribution));
    }
    conditions.push(`EXISTS (SELECT 1 FROM ArtworkCreator ac WHERE ac.artworkId = f.rowid AND ${attributed.join(" AND ")})`);
  }
  if (filter.hasDescription != null) {
    conditions.push(
      `${filter.hasDescription ? "" : "NOT "}EXISTS (SELECT 1 FROM Artwork a WHERE a.id = f.rowid AND a.currentDescriptionId IS NOT NULL)`,
    );
  }
  const restrict = conditions.map((c) => `AND ${c}`).join(" ");
  // A creator filter can stand for hundreds of creator ids: keep long keys short.
  const key = JSON.stringify([terms, restrict, params]);
  return { terms, restrict, params, key: key.length > 200 ? createHash("sha256").update(key).digest("base64") : key };
}

const NO_MATCHES: SearchPage = Object.freeze({ hits: Object.freeze([]), hasMore: false });

/**
 * Rows `offset` to `offset + limit - 1` of the matches, best first, ties in id order, with
 * snippets (none for a null search: it matches nothing). The SQL runs on the query-only
 * connection (readConnection) with statements prepared once (through Prisma, which prepares every
 * statement on every call, a search cost twice the CPU), and recent results are kept until the
 * next commit (SearchReader); the page is frozen.
 */
export function searchPage(db: Db, search: PreparedSearch | null, limit: number, offset = 0): SearchPage {
  if (!search) return NO_MATCHES;
  // An empty page (asked for to learn whether there are more): counting is enough.
  if (limit === 0) return Object.freeze({ hits: Object.freeze([]), hasMore: countMatches(db, search) > offset });
  const reader = searchReader(db);
  return reader.kept(`page ${limit} ${offset} ${search.key}`, () => {
    const match = matchExpression(reader, search.terms);
    // Rank every match, then make snippets for the page's rows only.
    const ranked = reader
      .statement(
        `SELECT f.rowid AS id, ${BM25} AS rank FROM artwork_fts f
         WHERE artwork_fts MATCH ? ${search.restrict}
         ORDER BY rank, f.rowid LIMIT ? OFFSET ?`,
      )
      .all(match, ...search.params, limit + 1, offset) as { id: number; rank: number }[];
    const page = ranked.slice(0, limit);
    const snippets = new Map(
      (reader.statement(SNIPPETS).all(match, JSON.stringify(page.map((r) => r.id))) as SnippetRow[]).map((r) => [r.id, r]),
    );
    const hits = page.map((r) => {
      const s = snippets.get(r.id);
      return Object.freeze({ artworkId: r.id, score: -r.rank, snippet: s?.hasDescription ? s.snippet : null });
    });
    // Kept and shared by later searches: nobody may change it.
    return Object.freeze({ hits: Object.freeze(hits), hasMore: ranked.length > limit });
  });
}

/** How many active artworks match (no ranking: about a fifth of the cost of a page); 0 for a null search. */
export function countMatches(db: Db, search: PreparedSearch | null): number {
  if (!search) return 0;
  const reader = searchReader(db);
  return reader.kept(`count ${search.key}`, () => {
    const sql = `SELECT COUNT(*) FROM artwork_fts f WHERE artwork_fts MATCH ? ${search.restrict}`;
    return Number(reader.statement(sql).pluck().get(matchExpression(reader, search.terms), ...search.params));
  });
}

/** prepareSearch, then searchPage: for callers that want one page. */
export async function searchArtworks(
  db: Db,
  query: string,
  options: { filter?: SearchFilter; limit: number; offset?: number },
): Promise<SearchPage> {
  return searchPage(db, await prepareSearch(db, query, options.filter), options.limit, options.offset);
}

/**
 * The MATCH expression. An implied prefix helps while a word is half typed; once the last word
 * is a whole word in the index, it is searched as that word: prefix matching costs several times
 * more on common words.
 */
function matchExpression(reader: SearchReader, terms: readonly Term[]): string {
  const last = terms.at(-1)!;
  if (last.prefix === "implied" && reader.statement(VOCAB_HAS_TERM).get(normalizeWords(last.words.at(-1)!))) {
    return renderFtsQuery([...terms.slice(0, -1), { ...last, prefix: false }]);
  }
  return renderFtsQuery([...terms]);
}

const VOCAB_HAS_TERM = `SELECT 1 FROM artwork_fts_vocab WHERE term = ? LIMIT 1`;
const SNIPPETS = `SELECT rowid AS id, snippet(artwork_fts, 1, '${HIT_OPEN}', '${HIT_CLOSE}', '…', ${SNIPPET_TOKENS}) AS snippet,
                         description <> '' AS hasDescription
                  FROM artwork_fts WHERE artwork_fts MATCH ? AND rowid IN (SELECT value FROM json_each(?))`;
type SnippetRow = { id: number; snippet: string; hasDescription: number };

/** Results kept per process: pages (10 hits with snippets are about 3 kB) and counts. */
export const CACHED_SEARCH_RESULTS = 500;

/**
 * The read connection with its statements prepared once (a handful: one per filter
 * combination), and recent results. Ranking is most of a search's cost (BM25 over every match),
 * so, like Solr's query result cache, results are kept until the database changes: SQLite's
 * data_version moves with every commit by any other connection, this process's Prisma client
 * and other processes included, and then all kept results are dropped.
 */
interface SearchReader {
  statement(sql: string): Database.Statement;
  /**
   * In one read transaction: the result kept for `key` if nothing was committed since, else
   * compute's, kept. The check and compute's statements see the same database.
   */
  kept<T>(key: string, compute: () => T): T;
}

const searchReaders = new WeakMap<Database.Database, SearchReader>();
function searchReader(db: Db): SearchReader {
  const connection = readConnection(db);
  let reader = searchReaders.get(connection);
  if (reader) return reader;
  const statements = new Map<string, Database.Statement>();
  const results = new Map<string, unknown>();
  const dataVersion = connection.prepare("PRAGMA data_version").pluck();
  let resultsVersion: unknown;
  // data_version is read first, so it opens the transaction's snapshot.
  const keptInTransaction = connection.transaction((key: string, compute: () => unknown) => {
    const version = dataVersion.get();
    if (version !== resultsVersion) {
      results.clear();
      resultsVersion = version;
    }
    if (results.has(key)) {
      // Least recently used first: move this one to the end.
      const result = results.get(key);
      results.delete(key);
      results.set(key, result);
      return result;
    }
    const result = compute();
    results.set(key, result);
    if (results.size > CACHED_SEARCH_RESULTS) results.delete(results.keys().next().value!);
    return result;
  });
  reader = {
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

/** A snippet as HTML: text escaped, matches in <mark>…</mark>. */
export function snippetHtml(snippet: string): string {
  return snippet
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(new RegExp(HIT_OPEN, "g"), "<mark>")
    .replace(new RegExp(HIT_CLOSE, "g"), "</mark>");
}

/** A snippet as plain text, matches wrapped in `open`/`close` (e.g. terminal bold). */
export function snippetText(snippet: string, open: string, close: string): string {
  return snippet.replace(new RegExp(HIT_OPEN, "g"), open).replace(new RegExp(HIT_CLOSE, "g"), close);
}

/**
 * Refills the index from the store in one transaction (after a restore, or if it was ever
 * damaged); returns the number of artworks indexed.
 */
export async function rebuildSearchIndex(db: Db): Promise<number> {
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
