import type Database from "better-sqlite3";
import { decodeVector } from "./store.js";

/**
 * Every stored vector of one model, in one Float32Array per process, scanned exactly (no
 * approximate index: 20,000 works x 384 dimensions is 7.7 million multiply-adds, a few
 * milliseconds; docs/search.md has the figures). It follows the table cheaply: a refresh reads
 * the row count and the newest embeddedAt, loads only rows embedded since, and reloads whole only
 * when rows went away.
 */

export interface Neighbour {
  artworkId: number;
  /** Cosine similarity (the vectors are unit length): 1 same direction, 0 unrelated. */
  similarity: number;
}

export class VectorIndex {
  private ids = new Int32Array(0);
  private matrix = new Float32Array(0);
  private size = 0;
  private readonly rowOf = new Map<number, number>();
  private dims = 0;
  private seen: { count: number; newest: unknown } = { count: -1, newest: null };

  constructor(
    private readonly connection: Database.Database,
    readonly modelId: string,
  ) {}

  get count(): number {
    return this.size;
  }

  /** Brings the index up to the table (call inside the caller's read transaction). */
  refresh(): void {
    const state = this.connection.prepare(`SELECT COUNT(*) AS count, MAX(embeddedAt) AS newest FROM ArtworkEmbedding WHERE modelId = ?`).get(this.modelId) as {
      count: number;
      newest: unknown;
    };
    if (state.count === this.seen.count && state.newest === this.seen.newest) return;
    const incremental = this.seen.count >= 0 && state.count >= this.seen.count && this.seen.newest != null;
    if (!incremental) {
      this.size = 0;
      this.rowOf.clear();
    }
    const rows = (
      incremental
        ? this.connection.prepare(`SELECT artworkId, dims, vector FROM ArtworkEmbedding WHERE modelId = ? AND embeddedAt >= ?`).all(this.modelId, this.seen.newest)
        : this.connection.prepare(`SELECT artworkId, dims, vector FROM ArtworkEmbedding WHERE modelId = ?`).all(this.modelId)
    ) as { artworkId: number; dims: number; vector: Buffer }[];
    for (const r of rows) this.put(r.artworkId, r.dims, r.vector);
    this.seen = { count: state.count, newest: state.newest };
    // Rows whose count went up by inserts but whose set also lost rows are caught by the next full reload.
    if (this.size !== state.count && incremental) {
      this.seen = { count: -1, newest: null };
      this.refresh();
    }
  }

  private put(artworkId: number, dims: number, bytes: Uint8Array): void {
    if (this.size === 0 && this.rowOf.size === 0) this.dims = dims;
    // A vector of other dimensions (a model swapped under the same name) is left out.
    if (dims !== this.dims || bytes.byteLength !== dims * 4) return;
    let row = this.rowOf.get(artworkId);
    if (row === undefined) {
      row = this.size++;
      if (this.size > this.ids.length) this.grow(Math.max(1024, this.ids.length * 2));
      this.ids[row] = artworkId;
      this.rowOf.set(artworkId, row);
    }
    this.matrix.set(decodeVector(bytes), row * dims);
  }

  private grow(rows: number): void {
    const ids = new Int32Array(rows);
    ids.set(this.ids.subarray(0, this.size));
    const matrix = new Float32Array(rows * this.dims);
    matrix.set(this.matrix.subarray(0, this.size * this.dims));
    this.ids = ids;
    this.matrix = matrix;
  }

  /** The stored vector of a work, or null. */
  vectorOf(artworkId: number): Float32Array | null {
    const row = this.rowOf.get(artworkId);
    return row === undefined ? null : this.matrix.slice(row * this.dims, (row + 1) * this.dims);
  }

  similarity(query: Float32Array, artworkId: number): number | null {
    const row = this.rowOf.get(artworkId);
    if (row === undefined || query.length !== this.dims) return null;
    return dot(this.matrix, row * this.dims, query);
  }

  /**
   * The k nearest accepted works by cosine, best first, ties in id order: one pass over every
   * vector keeping the best k in a sorted array.
   */
  nearest(query: Float32Array, k: number, accept: (artworkId: number) => boolean): Neighbour[] {
    if (query.length !== this.dims || k < 1) return [];
    const best: Neighbour[] = [];
    for (let row = 0; row < this.size; row++) {
      const id = this.ids[row]!;
      const s = dot(this.matrix, row * this.dims, query);
      if (best.length === k && !better(s, id, best[k - 1]!)) continue;
      if (!accept(id)) continue;
      let i = best.length === k ? k - 1 : best.length;
      while (i > 0 && better(s, id, best[i - 1]!)) i--;
      best.splice(i, 0, { artworkId: id, similarity: s });
      if (best.length > k) best.pop();
    }
    return best;
  }
}

const better = (s: number, id: number, than: Neighbour) => s > than.similarity || (s === than.similarity && id < than.artworkId);

/** Four running sums: V8 keeps them in registers, about twice as fast as one. */
function dot(matrix: Float32Array, offset: number, q: Float32Array): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const n = q.length - (q.length % 4);
  let j = 0;
  for (; j < n; j += 4) {
    s0 += matrix[offset + j]! * q[j]!;
    s1 += matrix[offset + j + 1]! * q[j + 1]!;
    s2 += matrix[offset + j + 2]! * q[j + 2]!;
    s3 += matrix[offset + j + 3]! * q[j + 3]!;
  }
  for (; j < q.length; j++) s0 += matrix[offset + j]! * q[j]!;
  return s0 + s1 + s2 + s3;
}

const indexes = new WeakMap<Database.Database, VectorIndex>();

/** The process's index of `modelId` vectors on this read connection (one model at a time). */
export function vectorIndex(connection: Database.Database, modelId: string): VectorIndex {
  let index = indexes.get(connection);
  if (!index || index.modelId !== modelId) indexes.set(connection, (index = new VectorIndex(connection, modelId)));
  return index;
}
