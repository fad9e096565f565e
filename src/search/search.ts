import type { Db } from "../db.js";
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
 */
export async function searchArtworks(
  db: Db,
  query: string,
  options: { filter?: SearchFilter; limit: number; offset?: number },
): Promise<SearchPage> {
  const terms = parseSearchQuery(query);
  // An implied prefix helps while a word is half typed; once the last word is a whole word in the
  // index, search it as a word: prefix matching costs several times more on common words.
  const last = terms.at(-1)!;
  if (last.prefix === "implied") {
    const word = normalizeWords(last.words.at(-1)!);
    const known = await db.$queryRawUnsafe<unknown[]>(`SELECT 1 FROM artwork_fts_vocab WHERE term = ? LIMIT 1`, word);
    if (known.length) last.prefix = false;
  }
  const match = renderFtsQuery(terms);
  const { filter = {}, limit, offset = 0 } = options;
  const params: unknown[] = [match];
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
  const restrict = conditions.map((c) => `AND ${c}`).join(" ");
  params.push(limit + 1, offset);
  // Rank every match, then make snippets for the page's rows only.
  const rows = await db.$queryRawUnsafe<{ id: number | bigint; rank: number; snippet: string | null; hasDescription: number | bigint }[]>(
    `WITH top AS (
       SELECT f.rowid AS id, ${BM25} AS rank FROM artwork_fts f
       WHERE artwork_fts MATCH ? ${restrict}
       ORDER BY rank, f.rowid LIMIT ? OFFSET ?)
     SELECT top.id, top.rank,
            snippet(artwork_fts, 1, '${HIT_OPEN}', '${HIT_CLOSE}', '…', ${SNIPPET_TOKENS}) AS snippet,
            artwork_fts.description <> '' AS hasDescription
     FROM top JOIN artwork_fts ON artwork_fts.rowid = top.id
     WHERE artwork_fts MATCH ?
     ORDER BY top.rank, top.id`,
    ...params,
    match,
  );
  const hits = rows.slice(0, limit).map((r) => ({
    artworkId: Number(r.id),
    score: -r.rank,
    snippet: Number(r.hasDescription) ? r.snippet : null,
  }));
  return { hits, hasMore: rows.length > limit };
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
