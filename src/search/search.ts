import type Database from "better-sqlite3";
import { type Db, readConnection } from "../db.js";
import { type ArtworkFilter, creatorWhere } from "../store/artwork-filter.js";
import { normalizeWords } from "../text/normalize.js";
import { parseSearchQuery, renderFtsQuery } from "./fts-query.js";

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
  hits: SearchHit[];
  hasMore: boolean;
}

/**
 * Active artworks matching `query` (typed by a person; see fts-query.ts), best first, ties in id
 * order. Throws SearchQueryError for a query that cannot be searched.
 *
 * The SQL runs on the query-only connection (readConnection) with statements prepared once
 * (through Prisma, which prepares every statement on every call, a search cost twice the CPU),
 * and recent pages are kept until the next commit (SearchReader). Callers must not change the
 * returned page.
 */
export async function searchArtworks(
  db: Db,
  query: string,
  options: { filter?: SearchFilter; limit: number; offset?: number },
): Promise<SearchPage> {
  const terms = parseSearchQuery(query);
  const { filter = {}, limit, offset = 0 } = options;
  const params: unknown[] = [];
  // The filter runs on the matching rows (a primary-key lookup each), not as a list of ids: a
  // broad filter ("has a description") would otherwise ship every id into the query.
  const conditions: string[] = [];
  if (filter.creator != null || filter.attribution?.length) {
    const attributed: string[] = [];
    if (filter.creator != null) {
      // Creators are matched as the artwork lists match them (src/store/artwork-filter.ts).
      const creators = await db.creator.findMany({ where: creatorWhere(filter.creator), select: { id: true } });
      if (!creators.length) return { hits: [], hasMore: false };
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
  const reader = searchReader(db);
  const restrict = conditions.map((c) => `AND ${c}`).join(" ");
  const key = JSON.stringify([terms, restrict, params, limit, offset]);
  // Rank every match, then make snippets for the page's rows only; one read transaction, so
  // the cache check and both statements see the same database.
  return reader.connection.transaction(() => {
    const cached = reader.cachedPage(key);
    if (cached) return cached;
    // An implied prefix helps while a word is half typed; once the last word is a whole word in
    // the index, search it as a word: prefix matching costs several times more on common words.
    const last = terms.at(-1)!;
    if (last.prefix === "implied" && reader.statement(VOCAB_HAS_TERM).get(normalizeWords(last.words.at(-1)!))) last.prefix = false;
    const match = renderFtsQuery(terms);
    const ranked = reader
      .statement(
        `SELECT f.rowid AS id, ${BM25} AS rank FROM artwork_fts f
         WHERE artwork_fts MATCH ? ${restrict}
         ORDER BY rank, f.rowid LIMIT ? OFFSET ?`,
      )
      .all(match, ...params, limit + 1, offset) as { id: number; rank: number }[];
    const page = ranked.slice(0, limit);
    const snippets = new Map(
      (reader.statement(SNIPPETS).all(match, JSON.stringify(page.map((r) => r.id))) as SnippetRow[]).map((r) => [r.id, r]),
    );
    const hits = page.map((r) => {
      const s = snippets.get(r.id);
      return { artworkId: r.id, score: -r.rank, snippet: s?.hasDescription ? s.snippet : null };
    });
    return reader.keepPage(key, { hits, hasMore: ranked.length > limit });
  })();
}

const VOCAB_HAS_TERM = `SELECT 1 FROM artwork_fts_vocab WHERE term = ? LIMIT 1`;
const SNIPPETS = `SELECT rowid AS id, snippet(artwork_fts, 1, '${HIT_OPEN}', '${HIT_CLOSE}', '…', ${SNIPPET_TOKENS}) AS snippet,
                         description <> '' AS hasDescription
                  FROM artwork_fts WHERE artwork_fts MATCH ? AND rowid IN (SELECT value FROM json_each(?))`;
type SnippetRow = { id: number; snippet: string; hasDescription: number };

/** Search pages kept per process; a page of 10 hits with snippets is about 3 kB. */
export const CACHED_SEARCH_PAGES = 500;

/**
 * The read connection with its statements prepared once (a handful: one per filter
 * combination), and recent result pages. Ranking is most of a search's cost (BM25 over every
 * match), so, like Solr's query result cache, pages are kept until the database changes: SQLite's
 * data_version moves with every commit by any other connection, this process's Prisma client
 * and other processes included, and then the whole cache is dropped.
 */
interface SearchReader {
  connection: Database.Database;
  statement(sql: string): Database.Statement;
  /** A page kept for `key`, if nothing was committed since; call inside a read transaction. */
  cachedPage(key: string): SearchPage | undefined;
  keepPage(key: string, page: SearchPage): SearchPage;
}

const searchReaders = new WeakMap<Database.Database, SearchReader>();
function searchReader(db: Db): SearchReader {
  const connection = readConnection(db);
  let reader = searchReaders.get(connection);
  if (reader) return reader;
  const statements = new Map<string, Database.Statement>();
  const pages = new Map<string, SearchPage>();
  const dataVersion = connection.prepare("PRAGMA data_version").pluck();
  let pagesVersion: unknown;
  reader = {
    connection,
    statement(sql) {
      let statement = statements.get(sql);
      if (!statement) statements.set(sql, (statement = connection.prepare(sql)));
      return statement;
    },
    cachedPage(key) {
      const version = dataVersion.get();
      if (version !== pagesVersion) {
        pages.clear();
        pagesVersion = version;
        return undefined;
      }
      const page = pages.get(key);
      if (page) {
        // Least recently used first: move this one to the end.
        pages.delete(key);
        pages.set(key, page);
      }
      return page;
    },
    keepPage(key, page) {
      pages.set(key, page);
      if (pages.size > CACHED_SEARCH_PAGES) pages.delete(pages.keys().next().value!);
      return page;
    },
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
