import type { Prisma } from "../generated/prisma/client.js";

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

/** The queue's order, or its reverse (for `last`/`before`). */
export function queueOrder(inverted: boolean): Prisma.DescriptionOrderByWithRelationInput[] {
  return inverted
    ? [{ qualityRisk: { sort: "asc", nulls: "first" } }, { id: "desc" }]
    : [{ qualityRisk: { sort: "desc", nulls: "last" } }, { id: "asc" }];
}

/** Rows after `p` in the queue's order. */
export function afterPosition(p: QueuePosition): Prisma.DescriptionWhereInput {
  if (p.risk === null) return { qualityRisk: null, id: { gt: p.id } };
  return { OR: [{ qualityRisk: { lt: p.risk } }, { qualityRisk: p.risk, id: { gt: p.id } }, { qualityRisk: null }] };
}

/** Rows before `p` in the queue's order. */
export function beforePosition(p: QueuePosition): Prisma.DescriptionWhereInput {
  if (p.risk === null) return { OR: [{ qualityRisk: { not: null } }, { qualityRisk: null, id: { lt: p.id } }] };
  return { OR: [{ qualityRisk: { gt: p.risk } }, { qualityRisk: p.risk, id: { lt: p.id } }] };
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
