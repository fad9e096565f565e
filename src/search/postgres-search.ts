import type { Db } from "../db.js";
import { type AsyncEmbeddingSource, vectorIndex, type VectorIndex } from "../embed/vector-index.js";
import { BoundedLru } from "../graphql/bounded-lru.js";
import { dataVersion } from "../store/data-version.js";
import { normalizeWords } from "../text/normalize.js";
import { renderExcludedTsQuery, renderWantedTsQuery, type Term } from "./fts-query.js";
import { HIT_CLOSE, HIT_OPEN, snippetWindow } from "./snippet.js";
import {
  CACHED_SEARCH_BYTES,
  CACHED_SEARCH_RESULTS,
  COLUMN_WEIGHTS,
  fusedHit,
  type FusedRow,
  fuseRanks,
  keptResultBytes,
  type MatchKind,
  meaningHits,
  type PreparedSearch,
  type SearchPage,
  type SimilarWork,
} from "./search.js";

/**
 * Search on PostgreSQL: the same contract as the FTS5 statements in search.ts, over the
 * artwork_fts table of prisma/postgresql/migrations/20261203100000_search (a weighted tsvector
 * per active artwork, GIN-indexed, kept by triggers). Every statement binds the user's words as
 * parameters; the tsquery text is built from parsed terms (fts-query.ts), each word a quoted
 * lexeme, so no input is read as a tsquery operator.
 *
 * Ranking: ts_rank(weights, document, query, 1)
 * (https://www.postgresql.org/docs/current/textsearch-controls.html#TEXTSEARCH-RANKING): each
 * occurrence of a query word counts with the weight of its column (titles 1.0, creators 0.4,
 * subjects 0.2, description 0.1: COLUMN_WEIGHTS divided by the titles' weight, in PostgreSQL's
 * {D, C, B, A} order), repeats count less and less, and with several words occurrences near each
 * other count more; normalization 1 divides by 1 + log(number of words in the document). Higher is
 * better, as BM25 with its sign flipped is on SQLite; the two scales differ.
 *
 * Results are kept until the database changes, as on SQLite, keyed on the commit counter
 * (src/store/data-version.ts) read once per search.
 */

/** The text search configuration of the index: `simple` (no stemming, no stop words) after unaccent. */
const CONFIG = "artwork_fts_words";

/** ts_rank's weights {D, C, B, A}: description, subjects, creators, titles, relative to the titles'. */
function rankWeights(): string {
  const w = COLUMN_WEIGHTS;
  return `{${[w.description, w.subjects, w.creators, w.titles].map((x) => x / w.titles).join(",")}}`;
}

/**
 * A statement's parameters: the filter's come first ($1…, as PreparedSearch.restrict numbers them)
 * when the statement has the restriction; PostgreSQL refuses a parameter a statement does not use.
 */
class Params {
  readonly values: unknown[];
  constructor(search: PreparedSearch, restricted = true) {
    this.values = restricted ? [...search.params] : [];
  }
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

/**
 * The tsquery of a search, as an SQL expression. An implied prefix on the last word is dropped
 * when that word is a whole word of the index (as on SQLite: prefix matching costs more, and
 * "book" should not find "bookcases"). Excluded terms are added with && !!; when the wanted words
 * fold to no lexeme at all (only combining marks, say), the query matches nothing, never
 * "everything but the excluded".
 */
function tsQuery(p: Params, terms: readonly Term[]): string {
  const last = terms.at(-1)!;
  const implied = last.prefix === "implied";
  const wanted = p.add(renderWantedTsQuery(terms));
  const exact = implied ? p.add(renderWantedTsQuery([...terms.slice(0, -1), { ...last, prefix: false }])) : null;
  const word = implied ? p.add(renderWantedTsQuery([{ words: [normalizeWords(last.words.at(-1)!) || last.words.at(-1)!], prefix: false, negated: false }])) : null;
  const excludedText = renderExcludedTsQuery(terms);
  const base =
    exact && word
      ? `CASE WHEN EXISTS (SELECT 1 FROM "artwork_fts" WHERE "document" @@ to_tsquery('${CONFIG}', ${word}::text))
              THEN to_tsquery('${CONFIG}', ${exact}::text) ELSE to_tsquery('${CONFIG}', ${wanted}::text) END`
      : `to_tsquery('${CONFIG}', ${wanted}::text)`;
  if (!excludedText) return `(${base})`;
  const excluded = p.add(excludedText);
  return `(SELECT CASE WHEN numnode(w.q) = 0 THEN w.q ELSE w.q && !! to_tsquery('${CONFIG}', ${excluded}::text) END FROM (SELECT ${base} AS q) w)`;
}

/** Excluded terms alone (any of them), or null. */
function excludedQuery(p: Params, terms: readonly Term[]): string | null {
  const text = renderExcludedTsQuery(terms);
  return text ? `to_tsquery('${CONFIG}', ${p.add(text)}::text)` : null;
}

/** The description with any mark characters of its own (U+E000, U+E001) made U+FFFD, as unmarkedText does: ts_headline's marks are then the only ones. */
const UNMARKED_DESCRIPTION = `translate(f."description", chr(57344) || chr(57345), chr(65533) || chr(65533))`;
const HEADLINE_OPTIONS = `HighlightAll=true, StartSel=${HIT_OPEN}, StopSel=${HIT_CLOSE}`;

/** The snippet of a description marked whole by ts_headline: the FTS5-sized window around the matches. */
function snippetOf(marked: string | null, description: string): string | null {
  if (!description) return null;
  return snippetWindow(marked ?? description);
}

interface KeptResults {
  version: number;
  results: BoundedLru<Promise<unknown>>;
}
const keptByDb = new WeakMap<Db, KeptResults>();

/**
 * Results kept until the next commit (the commit counter moves), least recently used dropped
 * beyond CACHED_SEARCH_RESULTS or CACHED_SEARCH_BYTES (a result counts a placeholder size until it
 * arrives, then its own). The counter is read once for `compute` and everything it keeps;
 * a result computed after a commit it did not count is newer than its key says, never older.
 */
async function keeper(db: Db): Promise<<T>(key: string, compute: () => Promise<T>) => Promise<T>> {
  const version = await dataVersion(db);
  let kept = keptByDb.get(db);
  if (!kept || kept.version !== version) {
    // Only ever forward: an older reading (a search that started before the commit) keeps nothing.
    if (kept && kept.version > version) return (_key, compute) => compute();
    keptByDb.set(db, (kept = { version, results: new BoundedLru({ maxEntries: CACHED_SEARCH_RESULTS, maxBytes: CACHED_SEARCH_BYTES }) }));
  }
  const results = kept.results;
  return <T>(key: string, compute: () => Promise<T>) => {
    let result = results.get(key) as Promise<T> | undefined;
    if (result) return result;
    result = compute();
    results.set(key, result, PENDING_BYTES);
    result.then(
      // Its own size once known, unless it was dropped or replaced meanwhile.
      (value) => results.peek(key) === result && results.set(key, result, keptResultBytes(value)),
      // A failure is not kept.
      () => results.peek(key) === result && results.delete(key),
    );
    return result;
  };
}

type Keep = Awaited<ReturnType<typeof keeper>>;

/** The results kept for `db` under the newest commit counter seen (keptSearchResults). */
export function postgresKeptResults(db: Db): BoundedLru<Promise<unknown>> | undefined {
  return keptByDb.get(db)?.results;
}
/** What a result being computed counts against CACHED_SEARCH_BYTES until it arrives. */
const PENDING_BYTES = 1024;

const TEXT_ONLY: readonly MatchKind[] = Object.freeze(["TEXT"]);
const MEANING_ONLY: readonly MatchKind[] = Object.freeze(["MEANING"]);

/** searchPage on PostgreSQL: one statement ranks the matches and marks the page's descriptions. */
export async function postgresSearchPage(db: Db, search: PreparedSearch, limit: number, offset: number): Promise<SearchPage> {
  const keep = await keeper(db);
  if (search.mode !== "TEXT") return fusedPage(db, keep, search, limit, offset);
  return keep(`page ${limit} ${offset} ${search.key}`, async () => {
    const p = new Params(search);
    const rows = await db.$queryRawUnsafe<{ id: number; score: number; description: string; marked: string | null }[]>(
      `WITH q AS MATERIALIZED (SELECT ${tsQuery(p, search.terms)} AS query),
       ranked AS (
         SELECT f."id", ts_rank('${rankWeights()}', f."document", (SELECT query FROM q), 1) AS score
         FROM "artwork_fts" f WHERE f."document" @@ (SELECT query FROM q) ${search.restrict}
         ORDER BY score DESC, f."id" LIMIT ${p.add(limit + 1)} OFFSET ${p.add(offset)})
       SELECT r."id", r.score::float8 AS score, f."description",
              CASE WHEN f."description" <> '' THEN ts_headline('${CONFIG}', ${UNMARKED_DESCRIPTION}, (SELECT query FROM q), '${HEADLINE_OPTIONS}') END AS marked
       FROM ranked r JOIN "artwork_fts" f ON f."id" = r."id"
       ORDER BY r.score DESC, r."id"`,
      ...p.values,
    );
    const hits = rows.slice(0, limit).map((r, i) =>
      Object.freeze({
        artworkId: r.id,
        score: r.score,
        snippet: snippetOf(r.marked, r.description),
        rank: offset + i + 1,
        similarity: null,
        matchedBy: TEXT_ONLY,
      }),
    );
    return Object.freeze({ hits: Object.freeze(hits), hasMore: rows.length > limit });
  });
}

/** countMatches on PostgreSQL. */
export async function postgresCountMatches(db: Db, search: PreparedSearch): Promise<number> {
  const keep = await keeper(db);
  if (search.mode !== "TEXT") return (await fusedList(db, keep, search)).length;
  return keep(`count ${search.key}`, async () => {
    const p = new Params(search);
    const [row] = await db.$queryRawUnsafe<{ n: number }[]>(
      `SELECT COUNT(*)::int AS n FROM "artwork_fts" f WHERE f."document" @@ ${tsQuery(p, search.terms)} ${search.restrict}`,
      ...p.values,
    );
    return row?.n ?? 0;
  });
}

/** The whole SEMANTIC or HYBRID result list (search.ts's fusedList, on PostgreSQL). */
function fusedList(db: Db, keep: Keep, search: PreparedSearch): Promise<readonly FusedRow[]> {
  return keep(`list ${search.key}`, async () => {
    const meaning = search.meaning!;
    const index = await postgresVectorIndex(db, meaning.modelId, keep);
    const allowedParams = new Params(search);
    const excludedParams = new Params(search);
    const excluded = excludedQuery(excludedParams, search.terms);
    const [allowedIds, excludedRows] = await Promise.all([
      // Without a filter, "allowed" is "active": listed once until the next commit, not per search.
      search.restrict
        ? db.$queryRawUnsafe<{ id: number }[]>(`SELECT f."id" FROM "artwork_fts" f WHERE true ${search.restrict}`, ...allowedParams.values).then(sortedIds)
        : keep("active ids", async () => sortedIds(await db.$queryRawUnsafe<{ id: number }[]>(`SELECT f."id" FROM "artwork_fts" f`))),
      excluded
        ? db.$queryRawUnsafe<{ id: number }[]>(`SELECT f."id" FROM "artwork_fts" f WHERE f."document" @@ ${excluded} ${search.restrict}`, ...excludedParams.values)
        : Promise.resolve([]),
    ]);
    const excludedIds = new Set(excludedRows.map((r) => r.id));
    const nearest = meaningHits(index.nearest(meaning.vector, meaning.topK, (id) => hasId(allowedIds, id) && !excludedIds.has(id)), meaning.minSimilarity);
    if (search.mode === "SEMANTIC") return Object.freeze(nearest.map((n) => ({ id: n.artworkId, score: 0, matchedBy: MEANING_ONLY, fused: n.similarity })));
    const p = new Params(search);
    const text = await db.$queryRawUnsafe<{ id: number; score: number }[]>(
      `WITH q AS MATERIALIZED (SELECT ${tsQuery(p, search.terms)} AS query)
       SELECT f."id", ts_rank('${rankWeights()}', f."document", (SELECT query FROM q), 1)::float8 AS score
       FROM "artwork_fts" f WHERE f."document" @@ (SELECT query FROM q) ${search.restrict}
       ORDER BY score DESC, f."id"`,
      ...p.values,
    );
    return Object.freeze(fuseRanks(text, nearest.map((n) => ({ id: n.artworkId })), meaning.rrfK));
  });
}

function fusedPage(db: Db, keep: Keep, search: PreparedSearch, limit: number, offset: number): Promise<SearchPage> {
  return keep(`page ${limit} ${offset} ${search.key}`, async () => {
    const list = await fusedList(db, keep, search);
    const page = list.slice(offset, offset + limit);
    const worded = page.filter((r) => r.matchedBy.includes("TEXT")).map((r) => r.id);
    const p = new Params(search, false);
    const rows = page.length
      ? await db.$queryRawUnsafe<{ id: number; description: string; marked: string | null }[]>(
          `SELECT f."id", f."description",
                  CASE WHEN f."description" <> '' AND f."id" IN (SELECT jsonb_array_elements_text(${p.add(JSON.stringify(worded))}::jsonb)::int)
                       THEN ts_headline('${CONFIG}', ${UNMARKED_DESCRIPTION}, ${tsQuery(p, search.terms)}, '${HEADLINE_OPTIONS}') END AS marked
           FROM "artwork_fts" f WHERE f."id" IN (SELECT jsonb_array_elements_text(${p.add(JSON.stringify(page.map((r) => r.id)))}::jsonb)::int)`,
          ...p.values,
        )
      : [];
    const byId = new Map(rows.map((r) => [r.id, r]));
    const index = await postgresVectorIndex(db, search.meaning!.modelId, null);
    const hits = page.map((r, i) => {
      const row = byId.get(r.id);
      const marked = row?.marked != null ? snippetWindow(row.marked) : null;
      return fusedHit(r, offset + i + 1, row?.description ?? "", marked, index.similarity(search.meaning!.vector, r.id));
    });
    return Object.freeze({ hits: Object.freeze(hits), hasMore: list.length > offset + limit });
  });
}

/** ArtworkEmbedding read through Prisma (the pg adapter): bytea arrives as bytes. */
function embeddingSource(db: Db): AsyncEmbeddingSource {
  return {
    async state(modelId) {
      const [row] = await db.$queryRawUnsafe<{ count: number; newest: string | null }[]>(
        `SELECT COUNT(*)::int AS count, MAX("embeddedAt")::text AS newest FROM "ArtworkEmbedding" WHERE "modelId" = $1 AND "dims" > 0`,
        modelId,
      );
      return { count: row?.count ?? 0, newest: row?.newest ?? null };
    },
    rows(modelId, since) {
      return since === null
        ? db.$queryRawUnsafe(`SELECT "artworkId", "dims", "vector" FROM "ArtworkEmbedding" WHERE "modelId" = $1 AND "dims" > 0`, modelId)
        : db.$queryRawUnsafe(`SELECT "artworkId", "dims", "vector" FROM "ArtworkEmbedding" WHERE "modelId" = $1 AND "dims" > 0 AND "embeddedAt" >= $2::timestamp`, modelId, since);
    },
  };
}

/**
 * The process's index of the model's vectors, brought up to the table once per commit counter
 * (`keep`): searches that arrive together share one refresh instead of queueing a round trip each.
 * Without `keep`, as it is.
 */
async function postgresVectorIndex(db: Db, modelId: string, keep: Keep | null): Promise<VectorIndex> {
  const index = vectorIndex(null, modelId, db);
  if (keep) await keep(`vectors ${modelId}`, () => index.refreshFrom(embeddingSource(db)));
  return index;
}

/** Ids in ascending order, for hasId. */
function sortedIds(rows: readonly { id: number }[]): Int32Array {
  return Int32Array.from(rows, (r) => r.id).sort();
}

/** Whether the ascending ids hold `id` (binary search). */
function hasId(ids: Int32Array, id: number): boolean {
  let lo = 0;
  let hi = ids.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (ids[mid]! === id) return true;
    if (ids[mid]! < id) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}

/** Whether any work has a vector of this model. */
export async function postgresHasVectors(db: Db, modelId: string): Promise<boolean> {
  const rows = await db.$queryRawUnsafe<unknown[]>(`SELECT 1 FROM "ArtworkEmbedding" WHERE "modelId" = $1 AND "dims" > 0 LIMIT 1`, modelId);
  return rows.length > 0;
}

/** similarWorks on PostgreSQL. */
export async function postgresSimilarWorks(db: Db, artworkId: number, modelId: string, limit: number, sameCreator: boolean): Promise<readonly SimilarWork[] | null> {
  const keep = await keeper(db);
  return keep(`similar ${modelId} ${artworkId} ${limit} ${sameCreator}`, async () => {
    const index = await postgresVectorIndex(db, modelId, keep);
    const vector = index.vectorOf(artworkId);
    if (!vector) return null;
    const frozen = (near: readonly { artworkId: number; similarity: number }[]) =>
      Object.freeze(near.map((n) => Object.freeze({ artworkId: n.artworkId, similarity: n.similarity })));
    if (!sameCreator) {
      // Any creator: the nearest, then which of them are active (indexed), asking for more only
      // when too few are; reading every indexed id cost a scan of the index per work viewed.
      for (let k = limit + 1; ; k *= 4) {
        const near = index.nearest(vector, k, (id) => id !== artworkId);
        const ids = JSON.stringify(near.map((n) => n.artworkId));
        const active = await db.$queryRawUnsafe<{ id: number }[]>(`SELECT "id" FROM "artwork_fts" WHERE "id" IN (SELECT jsonb_array_elements_text($1::jsonb)::int)`, ids);
        const shown = new Set(active.map((r) => r.id));
        const kept = near.filter((n) => shown.has(n.artworkId));
        if (kept.length >= limit || near.length < k) return frozen(kept.slice(0, limit));
      }
    }
    const rows = await db.$queryRawUnsafe<{ id: number }[]>(
      `SELECT DISTINCT f."id" FROM "ArtworkCreator" mine JOIN "ArtworkCreator" other ON other."creatorId" = mine."creatorId"
       JOIN "artwork_fts" f ON f."id" = other."artworkId" WHERE mine."artworkId" = $1`,
      artworkId,
    );
    const allowed = new Set(rows.map((r) => r.id));
    allowed.delete(artworkId);
    return frozen(index.nearest(vector, limit, (id) => allowed.has(id)));
  });
}

/** rebuildSearchIndex on PostgreSQL: the index refilled from artwork_fts_source in one transaction. */
export async function postgresRebuildSearchIndex(db: Db): Promise<number> {
  const [, indexed] = await db.$transaction([
    db.$executeRawUnsafe(`DELETE FROM "artwork_fts"`),
    db.$executeRawUnsafe(
      `INSERT INTO "artwork_fts" ("id", "titles", "description", "creators", "subjects")
       SELECT "id", "titles", "description", "creators", "subjects" FROM "artwork_fts_source"`,
    ),
  ]);
  return indexed;
}
