import { createHash } from "node:crypto";
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine, type EngineParams } from "../../src/describe/engine.js";
import type { DescribeOutput } from "../../src/describe/types.js";
import { createTinyModel, type TinyModel } from "../support/models.js";

/**
 * The engine's side of reproducibility: what a description records (image hash, batch size,
 * decoding, model files, honest timings), that a batch decodes each image exactly as it would
 * alone even when the prompts have different lengths (left padding), that the stored instruction
 * sent as it is gives the same tokens, and that an input dropped mid-batch leaves the others as
 * they were.
 */

let model: TinyModel;
let engine: Engine;
const images: string[] = [];

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

async function stripes(name: string, w: number, h: number, seed: number): Promise<string> {
  const data = Buffer.alloc(w * h * 3);
  for (let i = 0; i < w * h; i++) {
    data[i * 3] = ((i % w) * 9 + seed * 50) % 256;
    data[i * 3 + 1] = (Math.floor(i / w) * 3 + seed * 70) % 256;
    data[i * 3 + 2] = (seed * 30 + (i % 11) * 13) % 256;
  }
  const file = join(model.root, name);
  await sharp(data, { raw: { width: w, height: h, channels: 3 } }).png().toFile(file);
  return file;
}

beforeAll(async () => {
  model = createTinyModel({ dtype: "fp32", seed: 3 });
  engine = await Engine.load({ modelDir: model.dir });
  images.push(await stripes("a.png", 120, 90, 1), await stripes("b.png", 200, 150, 2), await stripes("c.png", 60, 60, 3));
});
afterAll(async () => {
  await engine?.dispose();
  model.remove();
});

const base: EngineParams = {
  prompt: "Describe the print.",
  numBeams: 3,
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

const all = (outs: (DescribeOutput | null)[]) => outs.map((o) => o!);

describe("reproduction data recorded by the engine", () => {
  it("records the image hash, batch size, decoding and the model files hashed at load", async () => {
    const outs = all(await engine.describe(images.slice(0, 2).map((imagePath) => ({ imagePath })), base));
    expect(outs.map((o) => o.imageHash)).toEqual([sha256(images[0]!), sha256(images[1]!)]);
    expect(outs.map((o) => o.batchSize)).toEqual([2, 2]);
    expect(outs[0]!.decoding).toBe("beam");
    const [greedy] = all(await engine.describe([{ imagePath: images[0]! }], { ...base, numBeams: 1 }));
    expect(greedy).toMatchObject({ decoding: "greedy", batchSize: 1 });
    const files = outs[0]!.model.files;
    expect(files.map((f) => f.path)).toEqual([...files.map((f) => f.path)].sort());
    for (const path of ["config.json", "tokenizer.json", "onnx/vision_encoder.onnx", "onnx/embed_tokens.onnx", "onnx/decoder_model_merged.onnx"]) {
      expect(files.find((f) => f.path === path)?.sha256).toBe(sha256(join(model.dir, path)));
    }
    // Only the loaded dtype's graphs: the fp16 files of the folder (if any) are not among them.
    expect(files.some((f) => f.path.includes("_fp16"))).toBe(false);
  });

  it("hashes the model files once per load, not per description", async () => {
    const before = engine.model.files.find((f) => f.path === "onnx/decoder_model_merged.onnx")!.sha256;
    // Changing a file after the load does not change what later descriptions record...
    const special = join(model.dir, "special_tokens_map.json");
    const original = readFileSync(special);
    appendFileSync(special, "\n");
    try {
      const [o] = all(await engine.describe([{ imagePath: images[2]! }], { ...base, maxNewTokens: 4 }));
      expect(o!.model.files.find((f) => f.path === "special_tokens_map.json")!.sha256).toBe(createHash("sha256").update(original).digest("hex"));
      expect(o!.model.files.find((f) => f.path === "onnx/decoder_model_merged.onnx")!.sha256).toBe(before);
      // ...while a new load sees it.
      const again = await Engine.load({ modelDir: model.dir });
      try {
        expect(again.model.files.find((f) => f.path === "special_tokens_map.json")!.sha256).toBe(sha256(special));
      } finally {
        await again.dispose();
      }
    } finally {
      writeFileSync(special, original);
    }
  });

  it("times each image honestly: its own phases plus its share of the shared decode", async () => {
    const t0 = performance.now();
    const outs = all(await engine.describe(images.map((imagePath) => ({ imagePath })), base));
    const wall = performance.now() - t0;
    const batchMs = outs[0]!.timings.batchMs;
    expect(outs.every((o) => o.timings.batchMs === batchMs)).toBe(true);
    expect(batchMs).toBeLessThanOrEqual(wall + 1);
    for (const o of outs) {
      const t = o.timings;
      expect(t.totalMs).toBeCloseTo(t.preprocessMs + t.visionMs + t.prefillMs + t.decodeMs, 6);
      expect(t.decodeMs).toBeGreaterThan(0);
    }
    // The shares add up to no more than the batch's wall time (the old totalMs counted the whole
    // decode for every image, so three of them added up to far more).
    const sum = outs.reduce((s, o) => s + o.timings.totalMs, 0);
    expect(sum).toBeLessThanOrEqual(batchMs + 1);
    expect(sum).toBeGreaterThan(batchMs * 0.8);
  });
});

describe("batching does not change tokens", () => {
  const cases: [string, Partial<EngineParams>, { title: string; creator?: string }[]][] = [
    ["prompts of different lengths (context), 3 beams", {}, [{ title: "A" }, { title: "The Disasters of War, plate 30", creator: "Francisco Goya" }]],
    ["greedy, different lengths", { numBeams: 1 }, [{ title: "The Disasters of War, plate 30, with a long subtitle" }, { title: "B" }]],
    ["image splitting: different tile counts", { imageSplitting: true, numBeams: 2 }, [{ title: "A" }, { title: "B" }]],
  ];
  for (const [name, over, contexts] of cases) {
    it(name, async () => {
      const p = { ...base, ...over };
      const inputs = contexts.map((context, i) => ({ imagePath: images[i]!, context }));
      const batch = all(await engine.describe(inputs, p));
      expect(batch[0]!.promptTokens).not.toBe(batch[1]!.promptTokens);
      for (const [i, o] of batch.entries()) {
        // Alone, from the stored instruction sent as it is: the `describe --like` path.
        const [alone] = all(await engine.describe([{ imagePath: images[i]!, instruction: o.prompt }], { ...p, prompt: "ignored when an instruction is given" }));
        expect(alone!.prompt).toBe(o.prompt);
        expect(alone!.generatedTokenIds).toEqual(o.generatedTokenIds);
        expect(alone!.sequenceScore).toBeCloseTo(o.sequenceScore, 4);
        expect(alone!.batchSize).toBe(1);
      }
    });
  }
});

describe("dropping an input from a running batch", () => {
  it("stops that input's rows at the next step; the others decode as they would alone", async () => {
    const p = { ...base, maxNewTokens: 16, earlyStopping: "never" as const };
    const solo = all(await engine.describe([{ imagePath: images[0]! }, { imagePath: images[2]! }], p));
    const progress = new Map<number, number[]>();
    let drop = false;
    const outs = await engine.describe([{ imagePath: images[0]! }, { imagePath: images[1]! }, { imagePath: images[2]! }], p, {
      onProgress: (i, n) => {
        progress.set(i, [...(progress.get(i) ?? []), n]);
        if (i === 1 && n === 3) drop = true;
      },
      dropped: (i) => i === 1 && drop,
    });
    expect(outs[1]).toBeNull();
    expect(Math.max(...progress.get(1)!)).toBe(3);
    expect(Math.max(...progress.get(0)!)).toBeGreaterThan(3);
    expect(outs[0]!.generatedTokenIds).toEqual(solo[0]!.generatedTokenIds);
    expect(outs[2]!.generatedTokenIds).toEqual(solo[1]!.generatedTokenIds);
    expect(outs[0]!.batchSize).toBe(3);
  });

  it("skips an input dropped before its prefill, and gives all nulls when every input is dropped", async () => {
    const outs = await engine.describe([{ imagePath: images[0]! }, { imagePath: join(model.root, "never-read.png") }], base, { dropped: (i) => i === 1 });
    expect(outs[1]).toBeNull();
    expect(outs[0]!.generatedTokens).toBeGreaterThan(0);
    expect(await engine.describe([{ imagePath: images[0]! }], base, { dropped: () => true })).toEqual([null]);
  });
});
