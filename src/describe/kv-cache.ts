import * as ort from "onnxruntime-node";

/**
 * The decoder's key/value cache for a batch of rows, one tensor pair per layer
 * ([rows, kv heads, length, head dim]). The host functions here reorder it by parent beam in
 * JavaScript, copying only the rows that change and nothing when the parents are the identity
 * (see /shared/reference/beam-search.md, "Cost"); cache-reorder.ts does the same on the device.
 * The tensors may live on a GPU (`location` "gpu-buffer"), where only explicit `dispose()` frees
 * them: releaseCache does it for every tensor a cache no longer shares with its successor.
 */

type Data = Float32Array | Uint16Array;

export interface LayerCache {
  key: ort.Tensor;
  value: ort.Tensor;
}

export interface KvCache {
  layers: LayerCache[];
  rows: number;
  length: number;
}

const dataOf = (t: ort.Tensor) => t.data as Data;

export function emptyCache(layers: number, kvHeads: number, headDim: number, type: "float32" | "float16"): KvCache {
  const make = () => new ort.Tensor(type, type === "float32" ? new Float32Array(0) : new Uint16Array(0), [1, kvHeads, 0, headDim]);
  return { layers: Array.from({ length: layers }, () => ({ key: make(), value: make() })), rows: 1, length: 0 };
}

/** The cache as the decoder returned it in `present.{i}.key/value`. */
export function cacheFromOutputs(outputs: Record<string, ort.Tensor>, layers: number): KvCache {
  const list: LayerCache[] = [];
  for (let i = 0; i < layers; i++) {
    const key = outputs[`present.${i}.key`];
    const value = outputs[`present.${i}.value`];
    if (!key || !value) throw new Error(`decoder output present.${i}.key/value missing`);
    list.push({ key, value });
  }
  const dims = list[0]!.key.dims;
  return { layers: list, rows: dims[0]!, length: dims[2]! };
}

/** Feeds for the decoder: past_key_values.{i}.key/value. */
export function cacheFeeds(cache: KvCache): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  cache.layers.forEach((l, i) => {
    feeds[`past_key_values.${i}.key`] = l.key;
    feeds[`past_key_values.${i}.value`] = l.value;
  });
  return feeds;
}

function newLike(t: ort.Tensor, rows: number, length: number): ort.Tensor {
  const [, heads, , dim] = t.dims as [number, number, number, number];
  const size = rows * heads * length * dim;
  const data = t.type === "float16" ? new Uint16Array(size) : new Float32Array(size);
  return new ort.Tensor(t.type as "float32" | "float16", data, [rows, heads, length, dim]);
}

/**
 * A new batch whose row r is row `sources[r].row` of cache `sources[r].cache`, left-padded with
 * zeros to `length` (rows from shorter prompts; the attention mask hides the padding). Used once
 * per decode, to copy each image's prefill cache to its beams.
 */
export function stackRows(sources: { cache: KvCache; row: number }[], length: number): KvCache {
  const first = sources[0]!.cache;
  const layers = first.layers.map((_, i) => {
    const out: LayerCache = { key: newLike(first.layers[i]!.key, sources.length, length), value: newLike(first.layers[i]!.value, sources.length, length) };
    for (const which of ["key", "value"] as const) {
      const dst = dataOf(out[which]);
      const [, heads, , dim] = out[which].dims as [number, number, number, number];
      sources.forEach(({ cache, row }, r) => {
        const src = cache.layers[i]![which];
        const srcLen = src.dims[2]!;
        const srcData = dataOf(src);
        const pad = length - srcLen;
        for (let h = 0; h < heads; h++) {
          const from = ((row * heads + h) * srcLen) * dim;
          const to = ((r * heads + h) * length + pad) * dim;
          dst.set(srcData.subarray(from, from + srcLen * dim), to);
        }
      });
    }
    return out;
  });
  return { layers, rows: sources.length, length };
}

/**
 * The rows of `parts` (several caches of one layout, each of any row count) numbered one after
 * another, stacked by `parents` and left-padded to `length`: the first step's copy of each image's
 * prefill cache to its beams.
 */
export function stackParts(parts: KvCache[], parents: Int32Array, length: number): KvCache {
  const sources: { cache: KvCache; row: number }[] = [];
  for (const p of parents) {
    let row = p;
    let part = 0;
    while (part < parts.length && row >= parts[part]!.rows) row -= parts[part++]!.rows;
    if (part === parts.length || row < 0) throw new RangeError(`parent row ${p} is outside the ${parts.reduce((s, c) => s + c.rows, 0)} stacked rows`);
    sources.push({ cache: parts[part]!, row });
  }
  return stackRows(sources, length);
}

/** Whether reordering `rows` rows by `parents` leaves the cache as it is. */
export function isIdentityReorder(parents: Int32Array, rows: number): boolean {
  if (parents.length !== rows) return false;
  for (let r = 0; r < rows; r++) if (parents[r] !== r) return false;
  return true;
}

/**
 * Frees the tensors of `cache` that `kept` (its successor, when it shares some) does not hold. On a
 * GPU `dispose()` frees the buffers, which nothing else does. On the CPU it only drops the data:
 * the memory would wait for a full garbage collection, since onnxruntime-node returns every
 * `present.*` in a fresh ArrayBuffer that lives long enough to reach V8's old generation. A dead
 * cache is as large as the live one, and several waited at a time (about 150 MB on smolvlm-500m
 * q4 with 4 beams), so each is detached here, which frees its memory at once.
 */
export function releaseCache(cache: KvCache, kept?: KvCache): void {
  const keep = new Set(kept?.layers.flatMap((l) => [l.key, l.value]));
  for (const l of cache.layers)
    for (const t of [l.key, l.value]) {
      if (keep.has(t)) continue;
      freeHostData(t);
      t.dispose();
    }
}

function freeHostData(t: ort.Tensor): void {
  if (t.location === "cpu") freeBuffer(t.data as Data);
}

/**
 * Detaches the ArrayBuffer behind `view` (`transfer(0)`), which frees its memory now instead of
 * at a full garbage collection, where the view is the whole buffer: a view into a larger buffer
 * may share it with live data. Only for data nothing reads any more: every view of the buffer
 * reads length 0 afterwards.
 */
export function freeBuffer(view: ArrayBufferView): void {
  const buffer = view.buffer as ArrayBuffer & { transfer?: (length: number) => ArrayBuffer };
  if (view.byteLength === 0 || view.byteOffset !== 0 || view.byteLength !== buffer.byteLength || !(buffer instanceof ArrayBuffer)) return;
  buffer.transfer?.(0);
}

export interface ReorderStats {
  /** Rows copied in this reorder (0 when the parents were the identity). */
  copiedRows: number;
}

/**
 * Reorders the cache so row r holds what row `parents[r]` held. Same row count: in place, copying
 * only rows whose parent differs (rows that are read and also overwritten are saved first). Fewer
 * rows (an image finished): a new, smaller batch.
 */
export function reorderRows(cache: KvCache, parents: Int32Array): { cache: KvCache; stats: ReorderStats } {
  const n = parents.length;
  if (isIdentityReorder(parents, cache.rows)) return { cache, stats: { copiedRows: 0 } };

  if (n !== cache.rows) {
    const sources = Array.from(parents, (row) => ({ cache, row }));
    return { cache: stackRows(sources, cache.length), stats: { copiedRows: n } };
  }

  const changed: number[] = [];
  for (let r = 0; r < n; r++) if (parents[r] !== r) changed.push(r);
  const changedSet = new Set(changed);
  // Sources that are themselves overwritten must be read before any write.
  const saved = new Set<number>();
  for (const r of changed) if (changedSet.has(parents[r]!)) saved.add(parents[r]!);

  for (const layer of cache.layers) {
    for (const t of [layer.key, layer.value]) {
      const data = dataOf(t);
      const rowSize = data.length / n;
      const copies = new Map<number, Data>();
      for (const s of saved) copies.set(s, data.slice(s * rowSize, (s + 1) * rowSize));
      for (const r of changed) {
        const p = parents[r]!;
        const src = copies.get(p) ?? data.subarray(p * rowSize, (p + 1) * rowSize);
        data.set(src, r * rowSize);
      }
    }
  }
  return { cache, stats: { copiedRows: changed.length } };
}

/** Bytes of key/value cache per token per row: 2 (key, value) x layers x kv heads x head dim x element size. */
export function kvBytesPerToken(layers: number, kvHeads: number, headDim: number, elementBytes: number): number {
  return 2 * layers * kvHeads * headDim * elementBytes;
}
