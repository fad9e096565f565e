import { join } from "node:path";
import * as ort from "onnxruntime-node";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  checkReorderPath,
  defaultReorderPath,
  DeviceReorder,
  hostReorder,
  reorderGraph,
  ReorderPathError,
} from "../../src/describe/cache-reorder.js";
import { Engine, type EngineParams, ImageInputError } from "../../src/describe/engine.js";
import { PRESETS } from "../../src/describe/models/presets.js";
import { type KvCache, releaseCache } from "../../src/describe/kv-cache.js";
import { encodeOnnxModel, GraphBuilder } from "../../src/describe/models/onnx-builder.js";
import { createTinyModel, type TinyModel } from "../support/models.js";

const HEADS = 2;
const DIM = 3;

/** A cache of `rows` x `length` with distinct seeded values (fp16: distinct bit patterns, NaNs and -0 included). */
function randomCache(float: "float32" | "float16", layers: number, rows: number, length: number, seed: number): KvCache {
  let state = seed * 7919 + 1;
  const next = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0);
  const size = rows * HEADS * length * DIM;
  const make = () =>
    float === "float32"
      ? new ort.Tensor("float32", Float32Array.from({ length: size }, () => (next() % 20001) / 100 - 100), [rows, HEADS, length, DIM])
      : new ort.Tensor("float16", Uint16Array.from({ length: size }, () => next() & 0xffff), [rows, HEADS, length, DIM]);
  return { layers: Array.from({ length: layers }, () => ({ key: make(), value: make() })), rows, length };
}

/** Every tensor's bytes, in layer order, with its dims. */
function bytesOf(cache: KvCache) {
  return cache.layers.flatMap((l) =>
    [l.key, l.value].map((t) => ({ dims: [...t.dims], bytes: Buffer.from((t.data as Float32Array | Uint16Array).buffer.slice(0)) })),
  );
}

/** A deep copy (the host path reorders in place). */
function copy(cache: KvCache): KvCache {
  const c = (t: ort.Tensor) => new ort.Tensor(t.type as "float32", (t.data as Float32Array).slice(), t.dims);
  return { ...cache, layers: cache.layers.map((l) => ({ key: c(l.key), value: c(l.value) })) };
}

describe("the device reorder graph, run by onnxruntime's CPU provider, equals the host reorder byte for byte", () => {
  const device = new DeviceReorder("cpu");
  afterAll(() => device.dispose());

  for (const float of ["float32", "float16"] as const) {
    it(`${float}: reorders with overlapping moves, fewer rows, repeated parents`, async () => {
      for (const parents of [[1, 0, 3, 2], [0, 0, 0, 0], [3, 1, 1, 0], [2, 1], [3], [0, 1, 2, 3, 3, 2]]) {
        const cache = randomCache(float, 3, 4, 5, parents.length);
        const p = Int32Array.from(parents);
        const host = await hostReorder.reorder(copy(cache), p);
        const dev = await device.reorder(cache, p);
        expect(bytesOf(dev.cache)).toEqual(bytesOf(host.cache));
        expect(dev.cache.rows).toBe(parents.length);
        expect(dev.cache.length).toBe(5);
        // The device path writes every row, the host path only the rows whose parent changed.
        expect(dev.copiedRows).toBe(parents.length);
        expect(host.copiedRows).toBeLessThanOrEqual(parents.length);
        // The inputs are left as they were: the caller releases them.
        expect(bytesOf(cache)).toEqual(bytesOf(copy(cache)));
      }
    });

    it(`${float}: stacks prefills of different lengths, left-padded with zeros, skipping unused longer parts`, async () => {
      // Part 1 (length 9) is read by no parent, so the stack's length (6) may be shorter than it.
      const parts = [randomCache(float, 2, 1, 6, 1), randomCache(float, 2, 1, 9, 2), randomCache(float, 2, 1, 4, 3), randomCache(float, 2, 2, 6, 4)];
      for (const parents of [[0, 0, 2, 2], [2, 0], [3, 4, 2, 0], [2]]) {
        const p = Int32Array.from(parents);
        const length = parents.length === 1 ? 4 : 6;
        const host = await hostReorder.stack(parts, p, length);
        const dev = await device.stack(parts, p, length);
        expect(bytesOf(dev.cache)).toEqual(bytesOf(host.cache));
        expect([dev.cache.rows, dev.cache.length]).toEqual([parents.length, length]);
        expect(dev.copiedRows).toBe(host.copiedRows);
      }
    });
  }

  it("keeps the identity shortcut: no run, the same cache, nothing copied", async () => {
    const cache = randomCache("float32", 2, 3, 4, 9);
    const dev = await device.reorder(cache, Int32Array.of(0, 1, 2));
    expect(dev.cache).toBe(cache);
    expect(dev.copiedRows).toBe(0);
    const host = await hostReorder.reorder(cache, Int32Array.of(0, 1, 2));
    expect(host.cache).toBe(cache);
    expect(host.copiedRows).toBe(0);
  });

  it("rejects parents outside the stacked rows and stacks shorter than a part", async () => {
    const parts = [randomCache("float32", 1, 1, 4, 1), randomCache("float32", 1, 1, 3, 2)];
    await expect(device.stack(parts, Int32Array.of(0, 2), 4)).rejects.toBeInstanceOf(RangeError);
    await expect(device.stack(parts, Int32Array.of(-1), 4)).rejects.toBeInstanceOf(RangeError);
    await expect(device.stack(parts, Int32Array.of(0, 1), 3)).rejects.toBeInstanceOf(RangeError);
    await expect(device.stack(parts, Int32Array.of(), 4)).rejects.toBeInstanceOf(RangeError);
    await expect(hostReorder.stack(parts, Int32Array.of(0, 2), 4)).rejects.toBeInstanceOf(RangeError);
  });

  it("builds one graph per part count, padding only where parts are stacked", () => {
    const ops = (parts: number) => reorderGraph("float16", 2, parts).nodes.map((n) => n.opType);
    expect(ops(1)).toEqual(["Gather", "Gather", "Gather", "Gather"]);
    // One zero block per part, then per tensor: a Concat per part, one on the batch axis, the Gather.
    expect(ops(3).filter((o) => o === "ConstantOfShape")).toHaveLength(3);
    expect(ops(3).filter((o) => o === "Gather")).toHaveLength(4);
    expect(() => reorderGraph("float32", 2, 0)).toThrow(RangeError);
  });
});

describe("reorder paths and releasing caches", () => {
  it("picks the device path only where the cache stays on the device", () => {
    expect(defaultReorderPath("cpu")).toBe("host");
    expect(defaultReorderPath("cuda")).toBe("host");
    expect(defaultReorderPath("webgpu")).toBe("device");
    expect(() => checkReorderPath("host", "webgpu")).toThrow(ReorderPathError);
    for (const [path, device] of [["device", "cpu"], ["device", "cuda"], ["device", "webgpu"], ["host", "cpu"], ["host", "cuda"]] as const) {
      expect(() => checkReorderPath(path, device)).not.toThrow();
    }
  });

  it("encodes only weightless graphs in memory", () => {
    const g = new GraphBuilder("w", "float32");
    g.weight("w", [2], { constant: 1 });
    expect(() => encodeOnnxModel(g, { opset: 18, producer: "test" })).toThrow(/writeOnnxModel/);
  });

  it("releaseCache disposes what the successor does not share", () => {
    const a = randomCache("float32", 2, 1, 2, 1);
    const b = { ...a, layers: [a.layers[0]!, randomCache("float32", 1, 1, 2, 2).layers[0]!] };
    releaseCache(a, b);
    expect(a.layers[0]!.key.location).toBe("cpu");
    expect(a.layers[1]!.key.location).toBe("none");
    expect(a.layers[1]!.value.location).toBe("none");
  });

  it("releaseCache frees a released host tensor's own buffer at once, and never a shared buffer or a kept tensor", () => {
    const a = randomCache("float32", 2, 1, 2, 1);
    const kept = a.layers[0]!.key;
    const keptValues = Float32Array.from(kept.data as Float32Array);
    const released = a.layers[1]!.key.data as Float32Array;
    // A view into a larger buffer that something else may still read.
    const shared = new Float32Array(16).fill(7);
    a.layers[1]!.value = new ort.Tensor("float32", shared.subarray(0, 8), [1, 2, 2, 2]);
    releaseCache(a, { ...a, layers: [{ key: kept, value: a.layers[0]!.value }] });
    expect(released.buffer.byteLength).toBe(0);
    expect(released.length).toBe(0);
    expect(shared.length).toBe(16);
    expect(shared[15]).toBe(7);
    expect(kept.data).toEqual(keptValues);
  });
});

describe("the engine decodes the same tokens and scores on both reorder paths", () => {
  let model: TinyModel;
  const images: string[] = [];
  const engines = new Map<string, Engine>();

  beforeAll(async () => {
    model = createTinyModel();
    for (let s = 0; s < 2; s++) {
      const data = Buffer.alloc((100 + 30 * s) * 80 * 3).map((_, i) => (i * (13 + s * 6) + s * 71) % 256);
      const file = join(model.root, `img${s}.png`);
      await sharp(data, { raw: { width: 100 + 30 * s, height: 80, channels: 3 } }).png().toFile(file);
      images.push(file);
    }
    for (const dtype of ["fp32", "fp16"] as const) {
      for (const reorder of ["host", "device"] as const) engines.set(`${dtype}/${reorder}`, await Engine.load({ modelDir: model.dir, dtype, reorder }));
    }
  });
  afterAll(async () => {
    for (const e of engines.values()) await e.dispose();
    model?.remove();
  });

  const base: EngineParams = {
    prompt: "Describe the painting.",
    numBeams: 4,
    maxNewTokens: 20,
    minNewTokens: 0,
    targetWords: 0,
    lengthPenalty: 1,
    earlyStopping: true,
    noRepeatNgramSize: 0,
    repetitionPenalty: 1,
    imageSplitting: false,
    cleanMarkdown: true,
  };
  const settings: [string, Partial<EngineParams>, number][] = [
    ["1 beam (greedy)", { numBeams: 1 }, 1],
    ["2 beams, never, lp 2", { numBeams: 2, earlyStopping: "never", lengthPenalty: 2, numReturnSequences: 2 }, 1],
    ["4 beams", { numBeams: 4, numReturnSequences: 4 }, 1],
    ["4 beams, image splitting, min 6", { numBeams: 4, imageSplitting: true, minNewTokens: 6 }, 1],
    ["1 beam, image splitting", { numBeams: 1, imageSplitting: true }, 1],
    ["4 beams, batch of 2 images", { numBeams: 4, earlyStopping: false, numReturnSequences: 2 }, 2],
    ["1 beam, batch of 2 images", { numBeams: 1 }, 2],
    ["2 beams, batch of 2 images, splitting", { numBeams: 2, imageSplitting: true, repetitionPenalty: 1.3 }, 2],
  ];

  for (const dtype of ["fp32", "fp16"] as const) {
    for (const [name, over, count] of settings) {
      it(`${dtype}, ${name}`, async () => {
        const p = { ...base, ...over };
        const run = async (path: "host" | "device") => {
          const engine = engines.get(`${dtype}/${path}`)!;
          expect(engine.reorderPath).toBe(path);
          const prepared = await Promise.all(images.slice(0, count).map((f) => engine.prepare(f, p.prompt, p.imageSplitting)));
          const prefills = [];
          for (const x of prepared) prefills.push(await engine.prefill(x));
          const copied = engine.stats.copiedRows;
          const { hypotheses } = await engine.search(prepared.map((x) => x.inputIds), prefills, p);
          // Every cache the search held is released, the prefills' included.
          for (const f of prefills) expect(f.cache.layers.every((l) => l.key.location === "none" && l.value.location === "none")).toBe(true);
          return { hypotheses, copied: engine.stats.copiedRows - copied };
        };
        const host = await run("host");
        const device = await run("device");
        expect(host.hypotheses.flat().length).toBeGreaterThanOrEqual(count);
        // Exactly: same tokens, same scores, same finish reasons.
        expect(device.hypotheses).toEqual(host.hypotheses);
        // The device path writes whole batches, so it never counts fewer rows.
        expect(device.copied).toBeGreaterThanOrEqual(host.copied);
        if (p.numBeams === 1) expect(device.copied).toBe(host.copied);
      });
    }
  }

  it("describe() gives the same outputs on both paths", async () => {
    const p = { ...base, numBeams: 3 };
    const outs = await Promise.all(
      (["host", "device"] as const).map((path) => engines.get(`fp32/${path}`)!.describe(images.map((imagePath) => ({ imagePath })), p)),
    );
    const pick = (o: (typeof outs)[number]) => o.map((x) => [x!.generatedTokenIds, x!.sequenceScore, x!.finishReason]);
    expect(pick(outs[1]!)).toEqual(pick(outs[0]!));
  });

  it("an image dropped mid-search leaves the batch on both paths alike (fewer rows: a real gather)", async () => {
    const p = { ...base, numBeams: 4, earlyStopping: "never" as const, maxNewTokens: 12 };
    const run = async (path: "host" | "device") => {
      const engine = engines.get(`fp16/${path}`)!;
      let steps = 0;
      const out = await engine.describe(
        images.map((imagePath) => ({ imagePath })),
        p,
        { onProgress: (index) => void (index === 1 && steps++), dropped: (index) => index === 0 && steps >= 3 },
      );
      return out.map((o) => o && [o.generatedTokenIds, o.sequenceScore]);
    };
    const host = await run("host");
    expect(host[0]).toBeNull();
    expect(host[1]).not.toBeNull();
    expect(await run("device")).toEqual(host);
  });

  it("a search aborted mid-way releases its caches, and the engine decodes the same afterwards", async () => {
    const engine = engines.get("fp32/device")!;
    const p = { ...base, numBeams: 4, earlyStopping: "never" as const };
    const prepared = await engine.prepare(images[1]!, p.prompt, false);
    const before = (await engine.search([prepared.inputIds], [await engine.prefill(prepared)], p)).hypotheses;
    const prefill = await engine.prefill(prepared);
    const controller = new AbortController();
    let steps = 0;
    await expect(
      engine.search([prepared.inputIds], [prefill], p, { signal: controller.signal, onProgress: () => void (++steps === 4 && controller.abort()) }),
    ).rejects.toBeDefined();
    expect(prefill.cache.layers.every((l) => l.key.location === "none" && l.value.location === "none")).toBe(true);
    expect((await engine.search([prepared.inputIds], [await engine.prefill(prepared)], p)).hypotheses).toEqual(before);
  });

  it("a batch that fails at a later image releases the prefill caches made before it", async () => {
    const engine = engines.get("fp32/device")!;
    const disposed: ort.Tensor[] = [];
    const original = ort.Tensor.prototype.dispose;
    const spy = vi.spyOn(ort.Tensor.prototype, "dispose").mockImplementation(function (this: ort.Tensor) {
      disposed.push(this);
      original.call(this);
    });
    try {
      const missing = join(model.root, "missing.png");
      await expect(engine.describe([{ imagePath: images[0]! }, { imagePath: missing }], base)).rejects.toBeInstanceOf(ImageInputError);
    } finally {
      spy.mockRestore();
    }
    const prompt = (await engine.prepare(images[0]!, base.prompt, false)).inputIds.length;
    // Key and value of every layer of image 0's prefill ([1, kv heads, prompt, head dim]).
    const cacheTensors = disposed.filter((t) => t.dims.length === 4 && t.dims[0] === 1 && t.dims[2] === prompt);
    expect(cacheTensors.length).toBe(2 * PRESETS.tiny.text.numLayers);
  });

  it("refuses the host path where the cache stays on the GPU, before loading anything", async () => {
    await expect(Engine.load({ modelDir: model.dir, device: "webgpu", reorder: "host" })).rejects.toBeInstanceOf(ReorderPathError);
  });
});
