import type { QualityFlag } from "../quality/types.js";
import { type Dialect, SQLITE_DIALECT } from "../store/sql.js";

/**
 * The review queue's order and its cursors: current descriptions nobody has reviewed, riskiest
 * first (qualityRisk descending, unassessed ones last), then by id. Keyset paging on (risk, id),
 * so a page costs the same however deep it is. Pure: the query runs in graphql/schema/review.ts.
 */

/** Where a row sits in the queue. */
export interface QueuePosition {
  risk: number | null;
  id: number;
}

/** A cursor that is not one of ours. */
export class InvalidCursorError extends Error {
  override name = "InvalidCursorError";
  constructor(readonly cursor: string) {
    super(`"${cursor.length > 100 ? `${cursor.slice(0, 100)}…` : cursor}" is not a reviewQueue cursor`);
  }
}

const PREFIX = "ReviewQueue:";

export function encodeCursor(p: QueuePosition): string {
  return Buffer.from(`${PREFIX}${JSON.stringify([p.risk, p.id])}`).toString("base64url");
}

export function decodeCursor(cursor: string): QueuePosition {
  if (cursor.length <= 200) {
    const text = Buffer.from(cursor, "base64url").toString();
    if (text.startsWith(PREFIX)) {
      try {
        const v: unknown = JSON.parse(text.slice(PREFIX.length));
        if (Array.isArray(v) && v.length === 2 && (v[0] === null || (typeof v[0] === "number" && Number.isFinite(v[0]))) && Number.isSafeInteger(v[1])) {
          return { risk: v[0] as number | null, id: v[1] as number };
        }
      } catch {
        // falls through to the error
      }
    }
  }
  throw new InvalidCursorError(cursor);
}

export interface QueueFilter {
  flag: QualityFlag | null;
  minRisk: number | null;
  /** Ids of the creators the `creator` filter names (null: no creator filter; [] matches nothing). */
  creatorIds: number[] | null;
}

export interface QueuePage {
  filter: QueueFilter;
  after: QueuePosition | null;
  before: QueuePosition | null;
  /** Walk the queue backwards (for `last`). */
  inverted: boolean;
  limit: number;
}

/**
 * The SQL of one page: ids and risks in queue order (reversed when inverted). It walks the index
 * Description(reviewState, qualityRisk) in order and stops at `limit` (on PostgreSQL the partial
 * index Description_review_queue_idx, migration 20261203110000_review_queue); SQLite sorts NULL below
 * every number, so DESC puts unassessed rows last (Prisma's `nulls: "last"` would sort on a CASE
 * expression that no index serves, a full sort of the queue per page). In `sql`'s dialect (SQLite's
 * unless told).
 */
export function queuePageSql(page: QueuePage, sql: Dialect = SQLITE_DIALECT): { sql: string; params: unknown[] } {
  const where = ['d."reviewState" IS NULL'];
  const params: unknown[] = [];
  const p = (value: unknown) => sql.param(params, value);
  const { flag, minRisk, creatorIds } = page.filter;
  if (flag != null) where.push(sql.inCommaList('d."qualityFlags"', p(flag)));
  if (minRisk != null) where.push(`d."qualityRisk" >= ${p(minRisk)}`);
  if (page.after) {
    const { risk, id } = page.after;
    where.push(
      risk === null
        ? `(d."qualityRisk" IS NULL AND d.id > ${p(id)})`
        : `(d."qualityRisk" < ${p(risk)} OR (d."qualityRisk" = ${p(risk)} AND d.id > ${p(id)}) OR d."qualityRisk" IS NULL)`,
    );
  }
  if (page.before) {
    const { risk, id } = page.before;
    where.push(
      risk === null ? `(d."qualityRisk" IS NOT NULL OR d.id < ${p(id)})` : `(d."qualityRisk" > ${p(risk)} OR (d."qualityRisk" = ${p(risk)} AND d.id < ${p(id)}))`,
    );
  }
  let artwork = `a."currentDescriptionId" = d.id AND a.state = 'ACTIVE'`;
  if (creatorIds) artwork += ` AND a.id IN (SELECT ac."artworkId" FROM "ArtworkCreator" ac WHERE ac."creatorId" IN (${sql.jsonIntegers(p(JSON.stringify(creatorIds)))}))`;
  where.push(`EXISTS (SELECT 1 FROM "Artwork" a WHERE ${artwork})`);
  // SQLite sorts NULL below every number; PostgreSQL above, so it says where they go.
  const nulls = sql.kind === "postgresql" ? (page.inverted ? " NULLS FIRST" : " NULLS LAST") : "";
  const order = page.inverted ? `d."qualityRisk" ASC${nulls}, d.id DESC` : `d."qualityRisk" DESC${nulls}, d.id ASC`;
  // PostgreSQL has no index hints; its planner picks the same index for this order.
  const index = sql.kind === "sqlite" ? " INDEXED BY Description_reviewState_qualityRisk_idx" : "";
  return {
    sql: `SELECT d.id AS id, d."qualityRisk" AS risk FROM "Description" d${index}
      WHERE ${where.join(" AND ")} ORDER BY ${order} LIMIT ${p(page.limit)}`,
    params,
  };
}

/** Compares two positions in the queue's order (for tests and checks). */
export function compareQueue(a: QueuePosition, b: QueuePosition): number {
  if (a.risk !== b.risk) {
    if (a.risk === null) return 1;
    if (b.risk === null) return -1;
    return b.risk - a.risk;
  }
  return a.id - b.id;
}
