import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Tensor } from "@huggingface/transformers";
import * as ort from "onnxruntime-node";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { beamSearch, decodeTokens, type Hypothesis, type StepFn } from "../../src/describe/beam-search.js";
import { cpuMemArenaDefault, Engine, type EngineParams, ImageInputError } from "../../src/describe/engine.js";
import { synthModel } from "../../src/describe/models/synth.js";
import { ModelMissingError } from "../../src/describe/types.js";
import { createTinyModel, type TinyModel } from "../support/models.js";

let model: TinyModel;
let engine: Engine;
const images: string[] = [];

/** A w x h PNG of coloured stripes (seeded), written into the model's temp folder. */
async function stripes(name: string, w: number, h: number, seed: number): Promise<string> {
  const data = Buffer.alloc(w * h * 3);
  for (let i = 0; i < w * h; i++) {
    data[i * 3] = ((i % w) * 7 + seed * 40) % 256;
    data[i * 3 + 1] = (Math.floor(i / w) * 5 + seed * 90) % 256;
    data[i * 3 + 2] = (seed * 60 + (i % 13) * 11) % 256;
  }
  const file = join(model.root, name);
  await sharp(data, { raw: { width: w, height: h, channels: 3 } }).png().toFile(file);
  return file;
}

beforeAll(async () => {
  model = createTinyModel();
  engine = await Engine.load({ modelDir: model.dir });
  for (let s = 0; s < 3; s++) images.push(await stripes(`img${s}.png`, 96 + 20 * s, 80, s + 1));
});
afterAll(async () => {
  await engine?.dispose();
  model.remove();
});

const base: EngineParams = {
  prompt: "Describe the painting.",
  numBeams: 4,
  maxNewTokens: 24,
  minNewTokens: 0,
  targetWords: 0,
  lengthPenalty: 1,
  earlyStopping: true,
  noRepeatNgramSize: 0,
  repetitionPenalty: 1,
  imageSplitting: false,
  cleanMarkdown: true,
};

/**
 * The naive reference: every step recomputes each row's whole sequence (prompt embeddings, then
 * the generated tokens' embeddings) at batch 1 with an empty cache, decoded by `search` (greedy
 * for one beam, beam search for more, unless told otherwise). Records the smallest gap
 * between the two best logits of any row, so a near-tie cannot pass for a bug (or hide one).
 */
async function naiveRun(imagePath: string, p: EngineParams, search = decodeTokens) {
  const prepared = await engine.prepare(imagePath, p.prompt, p.imageSplitting);
  const { features } = await engine.encodeImage(prepared);
  const prompt = await engine.promptEmbeddings(prepared, features);
  const hidden = prompt.dims[2]!;
  let minGap = Infinity;
  const lastLogits = async (generated: number[]) => {
    const n = prepared.inputIds.length + generated.length;
    const data = new Float32Array(n * hidden);
    data.set(prompt.data as Float32Array);
    if (generated.length) data.set((await engine.embed(generated)).data as Float32Array, prepared.inputIds.length * hidden);
    const { logits } = await engine.decode(
      new ort.Tensor("float32", data, [1, n, hidden]),
      new BigInt64Array(n).fill(1n),
      BigInt64Array.from({ length: n }, (_, i) => BigInt(i)),
      engine.emptyCache(),
    );
    const v = engine.vocabSize;
    const row = (logits.data as Float32Array).slice((n - 1) * v, n * v);
    const sorted = [...row].sort((a, b) => b - a);
    minGap = Math.min(minGap, sorted[0]! - sorted[1]!);
    return row;
  };
  let rows: number[][] = [[]];
  const step: StepFn = async (parents, tokens) => {
    rows = Array.from(parents, (par, i) => [...rows[par]!, tokens[i]!]);
    const out = new Float32Array(rows.length * engine.vocabSize);
    for (let r = 0; r < rows.length; r++) out.set(await lastLogits(rows[r]!), r * engine.vocabSize);
    return out;
  };
  const { hypotheses } = await search({
    items: [{ promptIds: prepared.inputIds }],
    prefillLogits: await lastLogits([]),
    vocabSize: engine.vocabSize,
    params: {
      ...p,
      numReturnSequences: p.numReturnSequences ?? 1,
      eosTokenIds: engine.special.eosTokenIds,
      badWordsIds: engine.special.badWordsIds,
    },
    step,
  });
  return { hypotheses: hypotheses[0]!, minGap };
}

async function fastRun(imagePaths: string[], p: EngineParams): Promise<Hypothesis[][]> {
  const prepared = await Promise.all(imagePaths.map((f) => engine.prepare(f, p.prompt, p.imageSplitting)));
  const prefills = [];
  for (const x of prepared) prefills.push(await engine.prefill(x));
  return (await engine.search(
    prepared.map((x) => x.inputIds),
    prefills,
    p,
  )).hypotheses;
}

function expectSameHypotheses(fast: Hypothesis[], naive: Hypothesis[]) {
  expect(fast.map((h) => h.tokens)).toEqual(naive.map((h) => h.tokens));
  expect(fast.map((h) => h.finishReason)).toEqual(naive.map((h) => h.finishReason));
  fast.forEach((h, i) => expect(Math.abs(h.score - naive[i]!.score)).toBeLessThan(1e-4));
}

describe("engine on the tiny model", () => {
  const settings: [string, Partial<EngineParams>][] = [
    ["1 beam", { numBeams: 1 }],
    ["2 beams, early_stopping false, lp 2", { numBeams: 2, earlyStopping: false, lengthPenalty: 2, numReturnSequences: 2 }],
    ["4 beams, early_stopping true", { numBeams: 4, numReturnSequences: 4 }],
    ["4 beams, never, no-repeat 3, repetition 1.3", { numBeams: 4, earlyStopping: "never", noRepeatNgramSize: 3, repetitionPenalty: 1.3 }],
    ["4 beams, image splitting, min 8 tokens", { numBeams: 4, imageSplitting: true, minNewTokens: 8, lengthPenalty: 0.5 }],
  ];
  for (const [name, over] of settings) {
    it(`the cached, reordered loop equals the naive recompute: ${name}`, async () => {
      const p = { ...base, ...over };
      const naive = await naiveRun(images[0]!, p);
      expect(naive.minGap).toBeGreaterThan(1e-3);
      const [fast] = await fastRun([images[0]!], p);
      expectSameHypotheses(fast!, naive.hypotheses);
    });
  }

  it("decodes a byte token that stands for U+0000 to nothing: no stored text holds one (PostgreSQL's text type refuses it)", () => {
    const tokenizer = (engine as unknown as { processor: { tokenizer: { decode(ids: number[], o: object): string } } }).processor.tokenizer;
    const nul = Array.from({ length: 2000 }, (_, id) => id).filter((id) => tokenizer.decode([id], { skip_special_tokens: true }).includes("\u0000"));
    // The tiny model's vocabulary has such a token, so this checks something.
    expect(nul.length).toBeGreaterThan(0);
    const other = nul[0]! + 40;
    expect(engine.decodeText([other, ...nul, other])).toBe(tokenizer.decode([other, other], { skip_special_tokens: true }));
  });

  it("reorders the cache without copying when the parents are the identity", async () => {
    const before = engine.stats.copiedRows;
    const [greedy] = await fastRun([images[1]!], { ...base, numBeams: 1 });
    // One beam: its parent is always itself, so only the prefill's copy to the beam (1 row) happens.
    expect(engine.stats.copiedRows - before).toBe(1);
    expect(greedy![0]!.tokens.length).toBeGreaterThan(1);
  });

  it("a profiled engine with tuned session options decodes the same tokens, and its profile holds every decoder step", async () => {
    const p = { ...base, maxNewTokens: 12, minNewTokens: 12 };
    const [plain] = await engine.describe([{ imagePath: images[2]! }], p);
    const prefix = join(model.root, "profile", "decoder");
    const tuned = await Engine.load({
      modelDir: model.dir,
      // Memory planning only: graphOptimizationLevel "basic" fuses fewer ops and moves the score in the 5th digit.
      session: { enableMemPattern: false, enableCpuMemArena: false, executionMode: "sequential" },
      profileDecoderPrefix: prefix,
    });
    try {
      const [out] = await tuned.describe([{ imagePath: images[2]! }], p);
      expect(out!.generatedTokenIds).toEqual(plain!.generatedTokenIds);
      expect(out!.sequenceScore).toBe(plain!.sequenceScore);
      // Inside the step: reorder, embed and decoder runs; the rest of the decode is the search's own.
      expect(tuned.stats.stepMs).toBeGreaterThan(tuned.stats.reorderMs);
      expect(tuned.stats.stepMs).toBeLessThanOrEqual(out!.timings.decodeMs);
      tuned.endProfiling();
    } finally {
      await tuned.dispose();
    }
    const files = readdirSync(join(model.root, "profile")).filter((f) => f.startsWith("decoder") && f.endsWith(".json"));
    expect(files).toHaveLength(1);
    const events = JSON.parse(readFileSync(join(model.root, "profile", files[0]!), "utf8")) as { cat: string; name: string; args?: { op_name?: string } }[];
    // The prefill and one run per generated token after the first.
    expect(events.filter((e) => e.cat === "Session" && e.name === "model_run")).toHaveLength(1 + 11);
    expect(events.some((e) => e.cat === "Node" && e.args?.op_name === "Concat")).toBe(true);
  });

  it("a batch of 3 images equals 3 single runs", async () => {
    const p = { ...base, numBeams: 3, earlyStopping: false as const, numReturnSequences: 2 };
    const batch = await fastRun(images, p);
    for (let i = 0; i < 3; i++) {
      const [single] = await fastRun([images[i]!], p);
      expectSameHypotheses(batch[i]!, single!);
    }
    const out = await engine.describe(
      images.map((imagePath) => ({ imagePath })),
      p,
    );
    expect(out.map((o) => o!.generatedTokenIds)).toEqual(batch.map((h) => h[0]!.tokens));
  });

  // transformers.js's generate() with do_sample false and num_beams 1 is greedy search (its
  // GreedySampler), with the processors of Hugging Face's list; early_stopping is passed through
  // and ignored there, as in Python.
  const greedySettings: [string, Partial<EngineParams>][] = [
    ["defaults", {}],
    ["repetition penalty 1.3", { repetitionPenalty: 1.3 }],
    ["repetition penalty 0.8", { repetitionPenalty: 0.8 }],
    ["no-repeat-ngram 2", { noRepeatNgramSize: 2 }],
    ['early_stopping "never", length penalty 2', { earlyStopping: "never", lengthPenalty: 2 }],
    ["repetition 1.5, no-repeat 3, min 20 tokens, never", { repetitionPenalty: 1.5, noRepeatNgramSize: 3, minNewTokens: 20, earlyStopping: "never" }],
  ];
  for (const [name, over] of greedySettings) {
    it(`one beam equals transformers.js generate() greedy, token for token: ${name}`, async () => {
      const p: EngineParams = { ...base, numBeams: 1, maxNewTokens: 32, ...over };
      for (const imagePath of images) {
        const prepared = await engine.prepare(imagePath, p.prompt, false);
        const [ours] = await fastRun([imagePath], p);
        const out = (await engine.hfModel.generate({
          ...prepared.processorInputs,
          max_new_tokens: p.maxNewTokens,
          min_new_tokens: p.minNewTokens,
          repetition_penalty: p.repetitionPenalty,
          no_repeat_ngram_size: p.noRepeatNgramSize,
          early_stopping: p.earlyStopping,
          length_penalty: p.lengthPenalty,
          num_beams: 1,
          do_sample: false,
          bad_words_ids: engine.special.badWordsIds,
        } as never)) as Tensor;
        const theirs = Array.from(out.data as BigInt64Array, Number).slice(prepared.inputIds.length);
        expect(ours![0]!.tokens).toEqual(theirs);
        expect(theirs.length).toBeGreaterThan(p.minNewTokens);
      }
    });
  }

  it("a one-beam beam search (the old path) differs there, so the comparison above can fail", async () => {
    // Repetition penalty 1.3: beam search applies it to log-probabilities, greedy to raw logits.
    const p: EngineParams = { ...base, numBeams: 1, maxNewTokens: 32, repetitionPenalty: 1.3 };
    let differs = 0;
    for (const imagePath of images) {
      const [greedy] = await fastRun([imagePath], p);
      const old = await naiveRun(imagePath, p, beamSearch);
      if (old.hypotheses[0]!.tokens.join() !== greedy![0]!.tokens.join()) differs++;
    }
    expect(differs).toBeGreaterThan(0);
  });

  it("describe() returns text, counts, ids, score, timings and model info", async () => {
    const progress: number[] = [];
    const [o] = await engine.describe([{ imagePath: images[0]!, context: { title: "The Mill", creator: "Rembrandt" } }], base, {
      onProgress: (_, n) => progress.push(n),
    });
    expect(o!.prompt).toContain("Title: The Mill.");
    expect(o!.prompt.match(/<image>/g)?.length).toBe(1);
    expect(o!.imageTokens).toBe(16);
    expect(o!.promptTokens).toBeGreaterThan(o!.imageTokens);
    expect(o!.generatedTokens).toBe(o!.generatedTokenIds.length);
    expect(o!.generatedTokens).toBeLessThanOrEqual(24);
    expect(["eos", "length", "stop"]).toContain(o!.finishReason);
    expect(o!.sequenceScore).toBeLessThan(0);
    expect(progress).toEqual(Array.from({ length: progress.length }, (_, i) => i + 1));
    for (const k of ["preprocessMs", "visionMs", "prefillMs", "decodeMs", "totalMs"] as const) expect(o!.timings[k]).toBeGreaterThan(0);
    expect(o!.model).toMatchObject({ modelId: "artdesc/synth-tiny", device: "cpu", dtypes: { decoder_model_merged: "fp32" } });
    expect(o!.text.length).toBeLessThanOrEqual(o!.rawText.length);
  });

  it("splits into tiles from the image's own resolution, never upscaling past it", async () => {
    // Tiny: 64 px tiles, 16 tokens each, longest edge at most 256.
    const small = await stripes("small.png", 100, 80, 4);
    const big = await stripes("big.png", 1000, 800, 5);
    const count = async (f: string, split: boolean) => (await engine.prepare(f, "x", split)).tiles;
    expect(await count(small, false)).toBe(1);
    expect(await count(small, true)).toBe(2 * 2 + 1); // 100x80 -> 128x128 -> 2x2 + global
    expect(await count(big, true)).toBe(4 * 4 + 1); // capped at 256 -> 4x4 + global
  });

  it("handles a 1x1 and a 10000x200 image", async () => {
    const dot = await stripes("dot.png", 1, 1, 6);
    const strip = await stripes("strip.png", 10000, 200, 7);
    for (const f of [dot, strip]) {
      for (const imageSplitting of [false, true]) {
        const [o] = await engine.describe([{ imagePath: f }], { ...base, numBeams: 2, maxNewTokens: 16, imageSplitting });
        expect(o!.generatedTokens).toBeGreaterThan(0);
      }
    }
  });

  it("rejects a corrupt or unsupported image with a clear error", async () => {
    const corrupt = join(model.root, "corrupt.png");
    const png = await sharp({ create: { width: 20, height: 20, channels: 3, background: "red" } }).png().toBuffer();
    writeFileSync(corrupt, png.subarray(0, 40));
    const text = join(model.root, "notes.txt");
    writeFileSync(text, "not an image at all");
    for (const f of [corrupt, text, join(model.root, "missing.png")]) {
      const err = await engine.describe([{ imagePath: f }], base).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ImageInputError);
      expect((err as Error).message).toContain(f);
    }
  });

  it("a missing model names the folder, the files and the command", async () => {
    const err = await Engine.load({ modelDir: join(model.root, "nowhere"), modelId: "HuggingFaceTB/SmolVLM-500M-Instruct" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelMissingError);
    const e = err as ModelMissingError;
    expect(e.folder).toBe(join(model.root, "nowhere"));
    expect(e.missing).toContain("onnx/decoder_model_merged.onnx");
    expect(e.message).toContain("artdesc models pull --model HuggingFaceTB/SmolVLM-500M-Instruct --revision main --dtype fp32");
    // An explicit folder from `models synth` names the synth command instead.
    const synthDir = join(model.root, "half-written");
    synthModel({ preset: "tiny", outDir: synthDir, dtype: "fp32" });
    rmSync(join(synthDir, "onnx", "embed_tokens.onnx"));
    const err2 = await Engine.load({ modelDir: synthDir }).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(ModelMissingError);
    expect((err2 as ModelMissingError).missing).toEqual(["onnx/embed_tokens.onnx"]);
    expect((err2 as Error).message).toContain("artdesc models synth --preset tiny");
  });

  it("runs the fp16 export", async () => {
    const half = await Engine.load({ modelDir: model.dir, dtype: "fp16" });
    try {
      const [o] = await half.describe([{ imagePath: images[0]! }], { ...base, numBeams: 2, maxNewTokens: 12 });
      expect(o!.model.dtypes.decoder_model_merged).toBe("fp16");
      expect(o!.generatedTokens).toBeGreaterThan(0);
    } finally {
      await half.dispose();
    }
  });
});

describe("cpuMemArenaDefault", () => {
  it("turns onnxruntime's CPU arena off where a module has 4-bit weights, and leaves every other case to onnxruntime", () => {
    const all = (d: string) => ({ vision_encoder: d, embed_tokens: d, decoder_model_merged: d }) as Parameters<typeof cpuMemArenaDefault>[0];
    expect(cpuMemArenaDefault(all("q4"), "cpu")).toBe(false);
    expect(cpuMemArenaDefault(all("q4f16"), "cpu")).toBe(false);
    expect(cpuMemArenaDefault({ ...all("fp32"), decoder_model_merged: "q4" }, "cpu")).toBe(false);
    for (const d of ["fp32", "fp16", "int8", "uint8", "quantized"]) expect(cpuMemArenaDefault(all(d), "cpu"), d).toBeUndefined();
    // Not the CPU: the arena option is the CPU provider's.
    expect(cpuMemArenaDefault(all("q4"), "webgpu")).toBeUndefined();
    expect(cpuMemArenaDefault(all("q4"), "cuda")).toBeUndefined();
  });
});
