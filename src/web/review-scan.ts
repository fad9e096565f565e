/**
 * A filter GraphQL cannot apply, applied by the workbench: walk the connection a batch at a time
 * from a cursor, keep what matches, and stop at a full page or after a bounded number of batches,
 * so a rare match costs at most `maxBatches` queries, never a walk of the whole collection.
 * The collection's review-state and "needs a person" filters use it (ArtworkFilter has neither).
 */

export interface Batch<T> {
  /** In the connection's order (a backward batch too, as Relay returns `last`). */
  items: { cursor: string; value: T }[];
  /** Whether more lie beyond this batch in the walking direction (hasNextPage, or hasPreviousPage backward). */
  more: boolean;
}

export interface ScanResult<T> {
  /** In the connection's order. */
  matches: { cursor: string; value: T }[];
  /** How many items were looked at. */
  examined: number;
  /** Where the next page would start (an `after` cursor forward, a `before` one backward); null at the end. */
  resume: string | null;
  /** The scan stopped at maxBatches before the page was full. */
  bounded: boolean;
}

export interface ScanOptions {
  start: string | null;
  backward: boolean;
  want: number;
  maxBatches: number;
}

export async function scanConnection<T>(
  fetchBatch: (cursor: string | null) => Promise<Batch<T>>,
  keep: (value: T) => boolean,
  { start, backward, want, maxBatches }: ScanOptions,
): Promise<ScanResult<T>> {
  const matches: { cursor: string; value: T }[] = [];
  let cursor = start;
  let examined = 0;
  for (let batchNo = 0; batchNo < maxBatches; batchNo++) {
    const batch = await fetchBatch(cursor);
    const walk = backward ? [...batch.items].reverse() : batch.items;
    for (let i = 0; i < walk.length; i++) {
      const item = walk[i]!;
      examined++;
      if (!keep(item.value)) continue;
      if (backward) matches.unshift(item);
      else matches.push(item);
      if (matches.length === want) {
        const last = i === walk.length - 1 && !batch.more;
        return { matches, examined, resume: last ? null : item.cursor, bounded: false };
      }
    }
    if (!batch.more || walk.length === 0) return { matches, examined, resume: null, bounded: false };
    cursor = walk[walk.length - 1]!.cursor;
  }
  return { matches, examined, resume: cursor, bounded: true };
}
