import type Database from "better-sqlite3";
import { dotScanWasm } from "./dot-scan-wasm.js";
import { decodeVector } from "./store.js";

/**
 * Every stored vector of one model, in one float32 matrix per process, scanned exactly (no
 * approximate index: 20,000 works x 384 dimensions is 7.7 million multiply-adds). The matrix lives
 * in a WebAssembly memory, and the scan is a small SIMD module (dot-scan.wat) that computes, bit for
 * bit, the same float32 dot products as the JavaScript `dot` below, several times faster;
 * docs/search.md has the figures. A large index is first scanned in int8 (each row scaled to
 * -127..127, a quarter of the bytes) with a proven bound on the error, and only the rows that bound
 * leaves in the running are scored exactly: the answer is the exact scan's, bit for bit. It
 * follows the table cheaply: a refresh reads the row count and the newest embeddedAt, loads only
 * rows embedded since, and reloads whole only when rows went away.
 */

export interface Neighbour {
  artworkId: number;
  /** Cosine similarity (the vectors are unit length): 1 same direction, 0 unrelated. */
  similarity: number;
}

/** What a refresh compares: the model's row count and newest embeddedAt (as the database gives it). */
interface EmbeddingState {
  count: number;
  newest: unknown;
}

interface EmbeddingRow {
  artworkId: number;
  dims: number;
  vector: Uint8Array;
}

/**
 * Reads ArtworkEmbedding asynchronously (PostgreSQL, through Prisma): the state, and the rows
 * embedded since `since` (a state's `newest`), or all of them when `since` is null.
 */
export interface AsyncEmbeddingSource {
  state(modelId: string): Promise<EmbeddingState>;
  rows(modelId: string, since: unknown): Promise<EmbeddingRow[]>;
}

const dotScanModule = new WebAssembly.Module(dotScanWasm);
const PAGE = 65_536;

interface DotScan {
  memory: WebAssembly.Memory;
  scan(matrix: number, rows: number, dims: number, query: number, out: number): void;
  scan_i8(matrix: number, rows: number, width: number, query: number, out: number): void;
}

/** The int8 prefilter runs when the index holds more than this many times the rows asked for (below it the exact scan is as cheap). */
const PREFILTER_RATIO = 4;
const I8_MAX = 127;

export class VectorIndex {
  private ids = new Int32Array(0);
  /** Rows back to back from byte 0 of the scan's memory; the query and the scores follow it. */
  private matrix = new Float32Array(0);
  private readonly wasm = new WebAssembly.Instance(dotScanModule).exports as unknown as DotScan;
  /**
   * The prefilter: its own instance (memory) of the module, holding each row scaled to int8
   * (`width` bytes: dims rounded up to 16, zero-padded) back to back from byte 0; the int16
   * query and the int32 sums follow it.
   */
  private readonly approx = new WebAssembly.Instance(dotScanModule).exports as unknown as DotScan;
  private quantized = new Int8Array(0);
  /** Each row's int8 scale: row ≈ scale × its int8 values. */
  private scales = new Float32Array(0);
  /** The largest, over rows, of the Euclidean norm of (row − scale × int8 row), and of a row's norm (bounds for the prefilter). */
  private maxResidual = 0;
  private maxNorm = 0;
  /** The prefilter's scores, kept between searches (a search allocates nothing the size of the index). */
  private approxScores = new Float64Array(0);
  /** False: every search scores every row exactly (bench:scan times both ways). */
  prefilter = true;
  /** Rows the last nearest() scored exactly (every row without the prefilter): for tests and benchmarks. */
  lastExactRows = 0;
  private size = 0;
  private readonly rowOf = new Map<number, number>();
  private dims = 0;
  private seen: EmbeddingState = { count: -1, newest: null };
  private refreshing: Promise<void> = Promise.resolve();

  /**
   * PRAGMA data_version on a query-only connection (query_only is set when a connection opens, so
   * it is read once); null on any other connection, whose own writes would not move it.
   */
  private readonly dataVersion: Database.Statement | null;
  /** dataVersion's value at the last refresh. */
  private version: unknown = null;

  /** `connection`: the SQLite read connection (refresh); null for an index kept by refreshFrom. */
  constructor(
    private readonly connection: Database.Database | null,
    readonly modelId: string,
  ) {
    this.dataVersion = connection?.pragma("query_only", { simple: true }) === 1 ? connection.prepare("PRAGMA data_version").pluck() : null;
  }

  get count(): number {
    return this.size;
  }

  /** Brings the index up to the table (call inside the caller's read transaction). SQLite. */
  refresh(): void {
    const connection = this.connection!;
    // The count in follow() reads every row's page (the vectors: 30 MB for 20,000 works), about
    // 95 ms. A query-only connection never writes, so an unchanged data_version means nothing was
    // committed anywhere since the last refresh (https://www.sqlite.org/pragma.html#pragma_data_version).
    const version = this.dataVersion ? this.dataVersion.get() : null;
    if (version !== null && version === this.version) return;
    this.follow(connection);
    this.version = version;
  }

  private follow(connection: Database.Database): void {
    for (;;) {
      const state = connection.prepare(`SELECT COUNT(*) AS count, MAX(embeddedAt) AS newest FROM ArtworkEmbedding WHERE modelId = ? AND dims > 0`).get(this.modelId) as EmbeddingState;
      const since = this.since(state);
      if (since === undefined) return;
      const rows = (
        since !== null
          ? connection.prepare(`SELECT artworkId, dims, vector FROM ArtworkEmbedding WHERE modelId = ? AND dims > 0 AND embeddedAt >= ?`).all(this.modelId, since)
          : connection.prepare(`SELECT artworkId, dims, vector FROM ArtworkEmbedding WHERE modelId = ? AND dims > 0`).all(this.modelId)
      ) as EmbeddingRow[];
      if (this.take(state, rows, since !== null)) return;
    }
  }

  /**
   * refresh for an asynchronous source (PostgreSQL). Refreshes take turns, and rows are put in
   * only once read, so a search running meanwhile never sees a half-loaded index.
   */
  refreshFrom(source: AsyncEmbeddingSource): Promise<void> {
    const run = async () => {
      for (;;) {
        const state = await source.state(this.modelId);
        const since = this.since(state);
        if (since === undefined) return;
        const rows = await source.rows(this.modelId, since);
        if (this.take(state, rows, since !== null)) return;
      }
    };
    const next = this.refreshing.then(run);
    // A failed refresh fails its caller only; the next one starts afresh.
    this.refreshing = next.catch(() => {});
    return next;
  }

  /** Undefined: up to date; null: reload whole (rows went away); else load the rows embedded since this. */
  private since(state: EmbeddingState): unknown {
    if (state.count === this.seen.count && state.newest === this.seen.newest) return undefined;
    return this.seen.count >= 0 && state.count >= this.seen.count && this.seen.newest != null ? this.seen.newest : null;
  }

  /** Puts the rows read for `state` in; false when the index must be reloaded whole. */
  private take(state: EmbeddingState, rows: readonly EmbeddingRow[], incremental: boolean): boolean {
    if (!incremental) {
      this.size = 0;
      this.rowOf.clear();
      this.maxResidual = 0;
      this.maxNorm = 0;
    }
    for (const r of rows) this.put(r.artworkId, r.dims, r.vector);
    this.seen = { count: state.count, newest: state.newest };
    // Rows whose count went up by inserts but whose set also lost rows are caught by a full reload.
    if (this.size !== state.count && incremental) {
      this.seen = { count: -1, newest: null };
      return false;
    }
    return true;
  }

  private put(artworkId: number, dims: number, bytes: Uint8Array): void {
    if (this.size === 0 && this.rowOf.size === 0) this.dims = dims;
    // A vector of other dimensions (a model swapped under the same name) is left out.
    if (dims !== this.dims || bytes.byteLength !== dims * 4) return;
    let row = this.rowOf.get(artworkId);
    if (row === undefined) {
      row = this.size++;
      // A reload may bring other dimensions than the matrix was laid out for.
      if (this.size > this.ids.length || this.size * dims > this.matrix.length || this.size * this.width > this.quantized.length) {
        this.grow(Math.max(1024, this.ids.length * 2));
      }
      this.ids[row] = artworkId;
      this.rowOf.set(artworkId, row);
    }
    const vector = decodeVector(bytes);
    this.matrix.set(vector, row * dims);
    this.quantize(row, vector);
  }

  /** Dims rounded up to a multiple of 16: the int8 row's length. */
  private get width(): number {
    return Math.ceil(this.dims / 16) * 16;
  }

  /** The row's int8 copy and scale, and the bounds the prefilter proves its error with. */
  private quantize(row: number, v: Float32Array): void {
    let largest = 0;
    for (const x of v) largest = Math.max(largest, Math.abs(x));
    const scale = Math.fround(largest / I8_MAX);
    const out = this.quantized.subarray(row * this.width, (row + 1) * this.width);
    out.fill(0);
    let residual = 0;
    let norm = 0;
    for (let i = 0; i < v.length; i++) {
      const x = v[i]!;
      const q = scale > 0 ? Math.max(-I8_MAX, Math.min(I8_MAX, Math.round(x / scale))) : 0;
      out[i] = q;
      residual += (x - scale * q) ** 2;
      norm += x * x;
    }
    this.scales[row] = scale;
    this.maxResidual = Math.max(this.maxResidual, Math.sqrt(residual));
    this.maxNorm = Math.max(this.maxNorm, Math.sqrt(norm));
  }

  /**
   * Room for `rows` rows. The matrix stays at byte 0, so growing the memory keeps every row in
   * place; views on the old buffer die with it and are made anew. scoreAll reserves its own room
   * after the matrix.
   */
  private grow(rows: number): void {
    const ids = new Int32Array(rows);
    ids.set(this.ids.subarray(0, this.size));
    this.ids = ids;
    const scales = new Float32Array(rows);
    scales.set(this.scales.subarray(0, this.size));
    this.scales = scales;
    this.reserve(rows * this.dims * 4);
    this.matrix = new Float32Array(this.wasm.memory.buffer, 0, rows * this.dims);
    this.reserveApprox(rows * this.width);
    this.quantized = new Int8Array(this.approx.memory.buffer, 0, rows * this.width);
  }

  /** reserve, for the prefilter's memory. */
  private reserveApprox(bytes: number): void {
    // Read before growing: a view on a detached buffer has length 0.
    const length = this.quantized.length;
    if (growTo(this.approx.memory, bytes)) this.quantized = new Int8Array(this.approx.memory.buffer, 0, length);
  }

  /** At least `bytes` of memory; the matrix view follows a grown buffer. */
  private reserve(bytes: number): void {
    // Read before growing: a view on a detached buffer has length 0.
    const floats = this.matrix.length;
    if (growTo(this.wasm.memory, bytes)) this.matrix = new Float32Array(this.wasm.memory.buffer, 0, floats);
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
   * The k nearest accepted works by cosine, best first, ties in id order. The module scores every
   * row; `accept` is then asked in ranking order, of the best 2k first, so that a costly test (a
   * database lookup) runs about k times, not for every row that enters the best k on the way
   * (about k ln(n/k): 600 lookups for the top 100 of 20,000). `acceptAmong`, when given, answers
   * for those 2k at once instead (the accepted ones among them): one query for the lot where k
   * lookups cost about four times as much. When fewer than k of them pass, a second pass asks
   * `accept` of every row good enough to enter the best k, as rows come.
   */
  nearest(
    query: Float32Array,
    k: number,
    accept: (artworkId: number) => boolean,
    acceptAmong?: (artworkIds: readonly number[]) => ReadonlySet<number>,
  ): Neighbour[] {
    if (query.length !== this.dims || k < 1 || this.size === 0) return [];
    const first = Math.min(this.size, 2 * k);
    const best: Neighbour[] = [];
    const ranked = this.prefilter && this.size > PREFILTER_RATIO * first ? this.prefiltered(query, first) : this.best(this.scoreAll(query), first, () => true);
    const accepted = acceptAmong?.(ranked.map((n) => n.artworkId));
    for (const n of ranked) {
      if ((accepted ? accepted.has(n.artworkId) : accept(n.artworkId)) && best.push(n) === k) return best;
    }
    return 2 * k >= this.size ? best : this.best(this.scoreAll(query), k, accept);
  }

  /**
   * The best m rows by the exact scan's score, best first, ties in id order, scoring exactly only
   * the rows the int8 scan cannot rule out. With the query scaled to int16 (largest magnitude L,
   * kept so that no int32 sum overflows), each row's approximate score a = (int sum) × row scale ×
   * query scale differs from the exact one by at most
   *   eps = R·|q| + (N + R)·E + F,
   * where R bounds every row's rounding residual, N every row's norm, E is the query's residual,
   * and F bounds the float32 rounding of the exact scan ((dims/8 + 16) · 2^-23 · N · |q|). If
   * a_m is the m-th best approximate score, m rows score exactly at least a_m − eps, so a row of
   * the exact best m scores at least that and has a ≥ a_m − 2·eps: only those rows are scored.
   */
  private prefiltered(query: Float32Array, m: number): Neighbour[] {
    const { dims, width, size } = this;
    let largest = 0;
    let queryNorm = 0;
    for (const x of query) {
      largest = Math.max(largest, Math.abs(x));
      queryNorm += x * x;
    }
    queryNorm = Math.sqrt(queryNorm);
    const limit = Math.min(32_767, Math.floor(0x7fffffff / (I8_MAX * width)));
    const queryScale = largest / limit;
    const at = scratchAt(this.quantized.length / 4);
    const out = at + width * 2;
    this.reserveApprox(out + size * 4);
    const { memory, scan_i8 } = this.approx;
    const q16 = new Int16Array(memory.buffer, at, width).fill(0);
    let queryResidual = 0;
    for (let i = 0; i < dims; i++) {
      const q = queryScale > 0 ? Math.round(query[i]! / queryScale) : 0;
      q16[i] = q;
      queryResidual += (query[i]! - queryScale * q) ** 2;
    }
    scan_i8(0, size, width, at, out);
    const sums = new Int32Array(memory.buffer, out, size);
    if (this.approxScores.length < size) this.approxScores = new Float64Array(this.ids.length);
    const approx = this.approxScores.subarray(0, size);
    const scales = this.scales;
    for (let r = 0; r < size; r++) approx[r] = sums[r]! * scales[r]! * queryScale;
    const { maxResidual: R, maxNorm: N } = this;
    const eps = (R * queryNorm + (N + R) * Math.sqrt(queryResidual) + (dims / 8 + 16) * 2 ** -23 * N * queryNorm) * (1 + 1e-6) + 1e-12;
    const floor = mthLargest(approx, m) - 2 * eps;
    const rows: number[] = [];
    for (let r = 0; r < size; r++) if (approx[r]! >= floor) rows.push(r);
    const scores = this.scoreRows(query, rows);
    this.lastExactRows = rows.length;
    return rows
      .map((row, i) => ({ artworkId: this.ids[row]!, similarity: scores[i]! }))
      .sort((a, b) => b.similarity - a.similarity || a.artworkId - b.artworkId)
      .slice(0, m);
  }

  /** The exact scan's scores of the listed rows, in their order. */
  private scoreRows(query: Float32Array, rows: readonly number[]): Float32Array {
    const { at, out } = this.placeQuery(query, rows.length);
    rows.forEach((row, i) => this.wasm.scan(row * this.dims * 4, 1, this.dims, at, out + i * 4));
    return new Float32Array(this.wasm.memory.buffer, out, rows.length).slice();
  }

  /**
   * Writes the query after the whole matrix (a reload with other dimensions keeps the old layout's
   * length), with room after it for `scores` float32 scores; their byte offsets.
   */
  private placeQuery(query: Float32Array, scores: number): { at: number; out: number } {
    const at = scratchAt(this.matrix.length);
    const out = scratchAt(at / 4 + this.dims);
    this.reserve(out + scores * 4);
    new Float32Array(this.wasm.memory.buffer, at, this.dims).set(query);
    return { at, out };
  }

  /** The best k rows by score that `accept` passes (asked only of rows good enough to enter), best first. */
  private best(scores: Float32Array, k: number, accept: (artworkId: number) => boolean): Neighbour[] {
    const best: Neighbour[] = [];
    for (let row = 0; row < this.size; row++) {
      const id = this.ids[row]!;
      const s = scores[row]!;
      if (best.length === k && !better(s, id, best[k - 1]!)) continue;
      if (!accept(id)) continue;
      let i = best.length === k ? k - 1 : best.length;
      while (i > 0 && better(s, id, best[i - 1]!)) i--;
      best.splice(i, 0, { artworkId: id, similarity: s });
      if (best.length > k) best.pop();
    }
    return best;
  }

  /** Every row's dot product with the query, in row order (a view valid until the next call). */
  private scoreAll(query: Float32Array): Float32Array {
    const { at, out } = this.placeQuery(query, this.size);
    this.wasm.scan(0, this.size, this.dims, at, out);
    this.lastExactRows = this.size;
    return new Float32Array(this.wasm.memory.buffer, out, this.size);
  }
}

/**
 * The m-th largest of the values (1 <= m <= their number), with a min-heap of the m largest. An
 * indexed loop: `for (const v of values)` over a typed array ran 5 times slower (0.24 against
 * 0.044 ms for 20,000 values, m = 200).
 */
function mthLargest(values: Float64Array, m: number): number {
  const heap = new Float64Array(m);
  const n = values.length;
  let size = 0;
  for (let j = 0; j < n; j++) {
    const v = values[j]!;
    if (size < m) {
      // Sift up.
      let i = size++;
      while (i > 0 && heap[(i - 1) >> 1]! > v) {
        heap[i] = heap[(i - 1) >> 1]!;
        i = (i - 1) >> 1;
      }
      heap[i] = v;
    } else if (v > heap[0]!) {
      // Replace the smallest, sift down.
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= m) break;
        const c = l + 1 < m && heap[l + 1]! < heap[l]! ? l + 1 : l;
        if (heap[c]! >= v) break;
        heap[i] = heap[c]!;
        i = c;
      }
      heap[i] = v;
    }
  }
  return heap[0]!;
}

/** Grows the memory to at least `bytes`; true when it grew (views on its old buffer are then detached). */
function growTo(memory: WebAssembly.Memory, bytes: number): boolean {
  if (bytes <= memory.buffer.byteLength) return false;
  memory.grow(Math.ceil((bytes - memory.buffer.byteLength) / PAGE));
  return true;
}

/** Where scratch space starts after `floats` float32 values from byte 0: the next 16-byte boundary. */
const scratchAt = (floats: number) => Math.ceil((floats * 4) / 16) * 16;

const better = (s: number, id: number, than: Neighbour) => s > than.similarity || (s === than.similarity && id < than.artworkId);

/**
 * The scan's float32 dot product (dot-scan.wat), in JavaScript: eight running sums (element j to
 * sum j mod 8, below the last multiple of 8), sums k and k + 4 added, those four added in order,
 * then the rest; every product and sum rounded to float32 (Math.fround of a float64 product or sum
 * of two float32 values is the correctly rounded float32 result, as WebAssembly's f32 operations give).
 */
export function dot(matrix: Float32Array, offset: number, q: Float32Array): number {
  const f = Math.fround;
  const sums = new Float32Array(8);
  const n = q.length - (q.length % 8);
  let j = 0;
  for (; j < n; j++) sums[j % 8] = f(sums[j % 8]! + f(matrix[offset + j]! * q[j]!));
  let s = f(f(f(f(sums[0]! + sums[4]!) + f(sums[1]! + sums[5]!)) + f(sums[2]! + sums[6]!)) + f(sums[3]! + sums[7]!));
  for (; j < q.length; j++) s = f(s + f(matrix[offset + j]! * q[j]!));
  return s;
}

const indexes = new WeakMap<object, VectorIndex>();

/**
 * The process's index of `modelId` vectors on this SQLite read connection (one model at a time);
 * with a null connection, the one kept for `owner` (a PostgreSQL client) and filled by refreshFrom.
 */
export function vectorIndex(connection: Database.Database, modelId: string): VectorIndex;
export function vectorIndex(connection: null, modelId: string, owner: object): VectorIndex;
export function vectorIndex(connection: Database.Database | null, modelId: string, owner: object | null = connection): VectorIndex {
  let index = indexes.get(owner!);
  if (!index || index.modelId !== modelId) indexes.set(owner!, (index = new VectorIndex(connection, modelId)));
  return index;
}
