import * as ort from "onnxruntime-node";
import { ELEM_BYTES, elemType, encodeOnnxModel, GraphBuilder } from "./models/onnx-builder.js";
import { isIdentityReorder, type KvCache, type LayerCache, reorderRows, stackParts } from "./kv-cache.js";
import type { ModelInfo } from "./types.js";

/**
 * Where the beam search's key/value cache is reordered by parent beam between decode steps.
 *
 * - "host": in JavaScript on the tensors' CPU data (kv-cache.ts): copies only the rows whose
 *   parent changed. Right wherever the decoder's outputs come back to the host anyway: on the CPU,
 *   and with CUDA, because onnxruntime-node can keep an output on the device only as a WebGPU
 *   buffer (`preferredOutputLocation` "gpu-buffer"; its bindings have no CUDA location), so there
 *   every step's cache crosses to the host and back whatever the reorder does.
 * - "device": one run of a small ONNX graph (Concat, Gather on the batch axis) on the
 *   execution provider the decoder runs on, taking every layer's key and value and returning the
 *   reordered cache where it already was. With WebGPU, transformers.js creates the decoder with its
 *   `present.*` outputs on "gpu-buffer", so the cache never leaves the GPU between steps.
 *
 * Both give the same bytes (a gather copies values exactly), and both skip the work when the
 * parents are the identity.
 */
export type ReorderPath = "host" | "device";

export const REORDER_PATHS = ["host", "device"] as const satisfies readonly ReorderPath[];

type Device = ModelInfo["device"];

/** The path for a device: the device one only where the cache stays on it (WebGPU). */
export function defaultReorderPath(device: Device): ReorderPath {
  return device === "webgpu" ? "device" : "host";
}

/** The host path cannot read a cache that stays on a GPU. */
export class ReorderPathError extends Error {
  constructor(
    readonly path: ReorderPath,
    readonly device: Device,
  ) {
    super(`cache reorder "${path}" cannot run with device ${device}: the key/value cache stays on the GPU there; use "device"`);
    this.name = "ReorderPathError";
  }
}

export function checkReorderPath(path: ReorderPath, device: Device): void {
  if (path === "host" && device === "webgpu") throw new ReorderPathError(path, device);
}

/** A reorder's result: the new cache and the key/value rows written to make it. */
export interface Reordered {
  cache: KvCache;
  /** Host: rows whose parent changed; device: every row of the new batch (Gather writes all); 0 for the identity. */
  copiedRows: number;
}

/** One reorder path: the first step's stack of prefill caches and every later step's reorder. */
export interface CacheReorder {
  readonly path: ReorderPath;
  /** Rows of `parts` numbered one after another, taken by `parents`, left-padded with zeros to `length`. */
  stack(parts: KvCache[], parents: Int32Array, length: number): Promise<Reordered>;
  /** Row r of the result is row `parents[r]` of `cache` (which it may reuse or update in place). */
  reorder(cache: KvCache, parents: Int32Array): Promise<Reordered>;
  dispose(): Promise<void>;
}

export const hostReorder: CacheReorder = {
  path: "host",
  async stack(parts, parents, length) {
    return { cache: stackParts(parts, parents, length), copiedRows: parents.length };
  },
  async reorder(cache, parents) {
    const r = reorderRows(cache, parents);
    return { cache: r.cache, copiedRows: r.stats.copiedRows };
  },
  async dispose() {},
};

const REORDER_OPSET = 18;

/**
 * The reorder graph for `layers` layers of `float` keys and values coming from `parts` caches:
 * inputs `part{p}.{i}.key/value` [rows_p, kv heads, length_p, head dim] (and for several parts
 * `pad{p}`, int64 [1], how many zero positions go left of part p), `parents` int64 [n]; outputs
 * `{i}.key/value` [n, kv heads, length, head dim]: the parts left-padded to one length,
 * concatenated on the batch axis and gathered by `parents`. Only Concat and Gather touch the
 * values, so every value is copied bit for bit (Pad was tried: it rewrites float16 NaN payloads).
 */
export function reorderGraph(float: "float32" | "float16", layers: number, parts: number): GraphBuilder {
  if (!Number.isInteger(parts) || parts < 1) throw new RangeError(`parts must be a positive integer, got ${parts}`);
  const g = new GraphBuilder(`kv_reorder_${layers}x${parts}`, float);
  const dims = (p: number | string) => [`rows_${p}`, "kv_heads", `length_${p}`, "head_dim"];
  const inputs = Array.from({ length: layers }, (_, i) =>
    (["key", "value"] as const).map((which) => Array.from({ length: parts }, (_, p) => g.input(`part${p}.${i}.${which}`, float, dims(p)))),
  );
  // Per part, one block of zeros [rows_p, kv heads, pad_p, head dim] shared by all its tensors.
  const zeros =
    parts > 1
      ? Array.from({ length: parts }, (_, p) => {
          const pad = g.input(`pad${p}`, "int64", [1]);
          const like = inputs[0]![0]![p]!;
          const shape = g.op("Concat", [g.op("Shape", [like], { start: 0, end: 2 }), pad, g.op("Shape", [like], { start: 3, end: 4 })], { axis: 0 });
          const zero = { dims: [1], dataType: elemType(float), rawData: new Uint8Array(ELEM_BYTES[float]) };
          return g.op("ConstantOfShape", [shape], { value: { tensor: zero } });
        })
      : [];
  const parents = g.input("parents", "int64", ["n"]);
  inputs.forEach((pair, i) =>
    pair.forEach((partsOf, w) => {
      const which = w === 0 ? "key" : "value";
      const stacked =
        parts > 1 ? g.op("Concat", partsOf.map((x, p) => g.op("Concat", [zeros[p]!, x], { axis: 2 })), { axis: 0 }) : partsOf[0]!;
      g.named(`${i}.${which}`, "Gather", [stacked, parents], { axis: 0 });
      g.output(`${i}.${which}`, float, ["n", "kv_heads", "length", "head_dim"]);
    }),
  );
  return g;
}

/**
 * The device path: one session per (float type, layers, parts), built in memory and run by the
 * decoder's execution provider, with its outputs on the GPU for WebGPU. `parts` is the number of
 * images whose prefills one first step stacks, so an engine holds at most a batch's worth
 * (WORKER_BATCH <= 16) plus the one-part reorder session. The inputs stay untouched; the caller
 * releases them (releaseCache).
 */
export class DeviceReorder implements CacheReorder {
  readonly path = "device" as const;
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();

  constructor(
    private readonly device: Device,
    private readonly sessionOptions: ort.InferenceSession.SessionOptions = {},
  ) {}

  private session(float: "float32" | "float16", layers: number, parts: number): Promise<ort.InferenceSession> {
    const key = `${float}/${layers}/${parts}`;
    let s = this.sessions.get(key);
    if (!s) {
      const bytes = encodeOnnxModel(reorderGraph(float, layers, parts), { opset: REORDER_OPSET, producer: "artdesc kv reorder" });
      s = ort.InferenceSession.create(bytes, {
        ...this.sessionOptions,
        executionProviders: [this.device],
        ...(this.device === "webgpu" ? { preferredOutputLocation: "gpu-buffer" as const } : {}),
      });
      // A failed creation is not cached: the next call tries again and reports its own error.
      s.catch(() => this.sessions.delete(key));
      this.sessions.set(key, s);
    }
    return s;
  }

  private async gather(parts: KvCache[], parents: Int32Array, length: number): Promise<KvCache> {
    const first = parts[0]!.layers[0]!.key;
    const float = first.type === "float16" ? "float16" : "float32";
    const layers = parts[0]!.layers.length;
    const feeds: Record<string, ort.Tensor> = { parents: new ort.Tensor("int64", BigInt64Array.from(parents, BigInt), [parents.length]) };
    parts.forEach((part, p) => {
      if (part.layers.length !== layers) throw new RangeError(`cache part ${p} has ${part.layers.length} layers, part 0 has ${layers}`);
      if (part.length > length || (parts.length === 1 && part.length !== length)) {
        throw new RangeError(`cache part ${p} holds ${part.length} positions; the stack has ${length}`);
      }
      if (parts.length > 1) feeds[`pad${p}`] = new ort.Tensor("int64", BigInt64Array.of(BigInt(length - part.length)), [1]);
      part.layers.forEach((l, i) => {
        feeds[`part${p}.${i}.key`] = l.key;
        feeds[`part${p}.${i}.value`] = l.value;
      });
    });
    const out = (await (await this.session(float, layers, parts.length)).run(feeds)) as Record<string, ort.Tensor>;
    const list: LayerCache[] = Array.from({ length: layers }, (_, i) => ({ key: out[`${i}.key`]!, value: out[`${i}.value`]! }));
    return { layers: list, rows: parents.length, length };
  }

  async stack(parts: KvCache[], parents: Int32Array, length: number): Promise<Reordered> {
    if (parents.length === 0) throw new RangeError("a stack needs at least one row");
    // Only the parts some parent reads go in (an image done after its first token may hold a
    // longer prompt than `length`), with the parents renumbered over them.
    const offsets: number[] = [];
    let total = 0;
    for (const part of parts) {
      offsets.push(total);
      total += part.rows;
    }
    const partOf = (row: number) => {
      if (row < 0 || row >= total) throw new RangeError(`parent row ${row} is outside the ${total} stacked rows`);
      let p = parts.length - 1;
      while (offsets[p]! > row) p--;
      return p;
    };
    const used = [...new Set(Array.from(parents, partOf))].sort((a, b) => a - b);
    const newOffset = new Map<number, number>();
    let next = 0;
    for (const p of used) {
      newOffset.set(p, next);
      next += parts[p]!.rows;
    }
    const renumbered = Int32Array.from(parents, (row) => {
      const p = partOf(row);
      return row - offsets[p]! + newOffset.get(p)!;
    });
    const cache = await this.gather(used.map((p) => parts[p]!), renumbered, length);
    return { cache, copiedRows: parents.length };
  }

  async reorder(cache: KvCache, parents: Int32Array): Promise<Reordered> {
    if (isIdentityReorder(parents, cache.rows)) return { cache, copiedRows: 0 };
    return { cache: await this.gather([cache], parents, cache.length), copiedRows: parents.length };
  }

  async dispose(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of await Promise.allSettled(all)) if (s.status === "fulfilled") await s.value.release();
  }
}
