import { readFileSync } from "node:fs";
import { join } from "node:path";
import { AutoModelForVision2Seq, AutoProcessor, env, RawImage, Tensor } from "@huggingface/transformers";
import * as ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { synthCommand } from "../../../src/describe/models/commands.js";
import { checkModelFolder } from "../../../src/describe/models/contract.js";
import { modelConfig, synthModel } from "../../../src/describe/models/synth.js";
import { decoderGraph } from "../../../src/describe/models/graphs.js";
import { imageSeqLen, PRESETS } from "../../../src/describe/models/presets.js";
import { createTinyModel, type TinyModel } from "../../support/models.js";

let model: TinyModel;

beforeAll(() => {
  model = createTinyModel();
});
afterAll(() => model.remove());

/** A w x h image of coloured stripes, so the pixels are not uniform. */
function stripes(w: number, h: number, seed: number): RawImage {
  const data = new Uint8ClampedArray(w * h * 3);
  for (let i = 0; i < w * h; i++) {
    const x = i % w;
    data[i * 3] = (x * 7 + seed * 40) % 256;
    data[i * 3 + 1] = (Math.floor(i / w) * 5 + seed * 90) % 256;
    data[i * 3 + 2] = seed * 60;
  }
  return new RawImage(data, w, h, 3);
}

const MESSAGES = [{ role: "user", content: [{ type: "image" }, { type: "text", text: "Describe the painting." }] }];

describe("synthModel tiny", () => {
  it("writes the folder layout of a transformers.js export", () => {
    const files = JSON.parse(readFileSync(join(model.dir, ".artdesc-revision.json"), "utf8")).files as string[];
    expect(files).toEqual(
      expect.arrayContaining([
        "config.json",
        "generation_config.json",
        "preprocessor_config.json",
        "processor_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "onnx/vision_encoder.onnx",
        "onnx/embed_tokens.onnx",
        "onnx/decoder_model_merged.onnx",
        "onnx/vision_encoder_fp16.onnx",
        "onnx/embed_tokens_fp16.onnx",
        "onnx/decoder_model_merged_fp16.onnx",
      ]),
    );
    const processor = JSON.parse(readFileSync(join(model.dir, "processor_config.json"), "utf8"));
    expect(processor.image_seq_len).toBe(16);
  });

  it("is deterministic for a seed and differs between seeds", () => {
    const again = createTinyModel({ dtype: "fp32", seed: 1 });
    const other = createTinyModel({ dtype: "fp32", seed: 2 });
    try {
      const file = "onnx/decoder_model_merged.onnx";
      const a = readFileSync(join(model.dir, file));
      expect(readFileSync(join(again.dir, file)).equals(a)).toBe(true);
      expect(readFileSync(join(other.dir, file)).equals(a)).toBe(false);
    } finally {
      again.remove();
      other.remove();
    }
  });

  it("loads in onnxruntime with the contract's names and the dtype's element types", async () => {
    for (const [suffix, float] of [["", "float32"], ["_fp16", "float16"]] as const) {
      const decoder = await ort.InferenceSession.create(join(model.dir, `onnx/decoder_model_merged${suffix}.onnx`));
      expect(decoder.inputNames).toEqual([
        "inputs_embeds",
        "attention_mask",
        "position_ids",
        "past_key_values.0.key",
        "past_key_values.0.value",
        "past_key_values.1.key",
        "past_key_values.1.value",
      ]);
      expect(decoder.outputNames).toEqual(["present.0.key", "present.0.value", "present.1.key", "present.1.value", "logits"]);
      const past = decoder.inputMetadata.find((m) => m.name === "past_key_values.0.key");
      expect(past).toMatchObject({ type: float, shape: ["batch_size", 2, "past_sequence_length", 16] });
      const vision = await ort.InferenceSession.create(join(model.dir, `onnx/vision_encoder${suffix}.onnx`));
      expect(vision.inputMetadata.map((m) => [m.name, m.isTensor && m.type])).toEqual([
        ["pixel_values", "float32"],
        ["pixel_attention_mask", "bool"],
      ]);
      expect(vision.outputMetadata[0]).toMatchObject({ name: "image_features", type: float, shape: ["num_images", 16, 64] });
      const embed = await ort.InferenceSession.create(join(model.dir, `onnx/embed_tokens${suffix}.onnx`));
      expect(embed.outputMetadata[0]).toMatchObject({ name: "inputs_embeds", type: float });
      await Promise.all([decoder.release(), vision.release(), embed.release()]);
    }
  });

  it("drops padding images in the vision encoder, as Idefics3 does", async () => {
    const vision = await ort.InferenceSession.create(join(model.dir, "onnx/vision_encoder.onnx"));
    const size = 3 * 64 * 64;
    const pixels = new Float32Array(3 * size);
    for (let i = 0; i < 2 * size; i++) pixels[i] = Math.sin(i);
    const mask = new Uint8Array(3 * 64 * 64).fill(1);
    mask.fill(0, 2 * 64 * 64);
    const out = await vision.run({
      pixel_values: new ort.Tensor("float32", pixels, [1, 3, 3, 64, 64]),
      pixel_attention_mask: new ort.Tensor("bool", mask, [1, 3, 64, 64]),
    });
    expect(out.image_features!.dims).toEqual([2, 16, 64]);
    await vision.release();
  });

  it("the decoder's cache gives the same logits as recomputing the whole sequence", async () => {
    const decoder = await ort.InferenceSession.create(join(model.dir, "onnx/decoder_model_merged.onnx"));
    const hidden = 64;
    const n = 6;
    const embeds = Float32Array.from({ length: n * hidden }, (_, i) => Math.sin(i * 0.37) * 0.05);
    const empty = (len: number) => new ort.Tensor("float32", new Float32Array(2 * len * 16), [1, 2, len, 16]);
    const ids = (xs: number[]) => new ort.Tensor("int64", BigInt64Array.from(xs.map(BigInt)), [1, xs.length]);
    const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
    const pastFeeds = (f: (i: number, kind: string) => ort.Tensor) =>
      Object.fromEntries([0, 1].flatMap((i) => ["key", "value"].map((k) => [`past_key_values.${i}.${k}`, f(i, k)])));

    const full = await decoder.run({
      inputs_embeds: new ort.Tensor("float32", embeds, [1, n, hidden]),
      attention_mask: ids(new Array(n).fill(1)),
      position_ids: ids(range(0, n)),
      ...pastFeeds(() => empty(0)),
    });
    const prefill = await decoder.run({
      inputs_embeds: new ort.Tensor("float32", embeds.slice(0, (n - 1) * hidden), [1, n - 1, hidden]),
      attention_mask: ids(new Array(n - 1).fill(1)),
      position_ids: ids(range(0, n - 1)),
      ...pastFeeds(() => empty(0)),
    });
    const step = await decoder.run({
      inputs_embeds: new ort.Tensor("float32", embeds.slice((n - 1) * hidden), [1, 1, hidden]),
      attention_mask: ids(new Array(n).fill(1)),
      position_ids: ids([n - 1]),
      ...pastFeeds((i, k) => prefill[`present.${i}.${k}`]!),
    });
    const vocab = 300;
    const lastFull = (full.logits!.data as Float32Array).slice((n - 1) * vocab);
    const lastStep = step.logits!.data as Float32Array;
    // The engine compares its cached loop with a full recomputation at 1e-4: the graph must allow it.
    expect(Math.max(...lastStep.map((x, v) => Math.abs(x - lastFull[v]!)))).toBeLessThan(1e-4);
    expect(step["present.0.key"]!.dims).toEqual([1, 2, n, 16]);

    // A padded key changes the result: the mask reaches the attention.
    const padded = await decoder.run({
      inputs_embeds: new ort.Tensor("float32", embeds, [1, n, hidden]),
      attention_mask: ids([0, 1, 1, 1, 1, 1]),
      position_ids: ids(range(0, n)),
      ...pastFeeds(() => empty(0)),
    });
    const lastPadded = (padded.logits!.data as Float32Array).slice((n - 1) * vocab);
    expect(Math.max(...lastPadded.map((x, v) => Math.abs(x - lastFull[v]!)))).toBeGreaterThan(1e-3);
    await decoder.release();
  });

  it("a left-padded row in a batch gives the same logits as the row alone", async () => {
    const decoder = await ort.InferenceSession.create(join(model.dir, "onnx/decoder_model_merged.onnx"));
    const hidden = 64;
    const n = 5;
    const pad = 2;
    const row = Float32Array.from({ length: n * hidden }, (_, i) => Math.cos(i * 0.21) * 0.05);
    const batch = new Float32Array(2 * (n + pad) * hidden);
    batch.set(row, pad * hidden); // row 0: [pad, pad, x0..x4]
    batch.set(row, (n + pad) * hidden + pad * hidden); // row 1: same, different pad content below
    batch.fill(0.3, (n + pad) * hidden, (n + pad) * hidden + pad * hidden);
    const int64 = (xs: number[], dims: number[]) => new ort.Tensor("int64", BigInt64Array.from(xs.map(BigInt)), dims);
    const empty = (b: number) => new ort.Tensor("float32", new Float32Array(0), [b, 2, 0, 16]);
    const past = (b: number) => Object.fromEntries([0, 1].flatMap((i) => ["key", "value"].map((k) => [`past_key_values.${i}.${k}`, empty(b)])));
    const mask = [0, 0, 1, 1, 1, 1, 1];
    const positions = [1, 1, 0, 1, 2, 3, 4];
    const batched = await decoder.run({
      inputs_embeds: new ort.Tensor("float32", batch, [2, n + pad, hidden]),
      attention_mask: int64([...mask, ...mask], [2, n + pad]),
      position_ids: int64([...positions, ...positions], [2, n + pad]),
      ...past(2),
    });
    const alone = await decoder.run({
      inputs_embeds: new ort.Tensor("float32", row, [1, n, hidden]),
      attention_mask: int64([1, 1, 1, 1, 1], [1, n]),
      position_ids: int64([0, 1, 2, 3, 4], [1, n]),
      ...past(1),
    });
    const vocab = 300;
    const b = batched.logits!.data as Float32Array;
    const a = (alone.logits!.data as Float32Array).slice((n - 1) * vocab);
    for (const r of [0, 1]) {
      const last = b.slice((r * (n + pad) + n + pad - 1) * vocab, (r * (n + pad) + n + pad) * vocab);
      expect(Math.max(...last.map((x, v) => Math.abs(x - a[v]!)))).toBeLessThan(1e-4);
    }
    await decoder.release();
  });

  for (const dtype of ["fp32", "fp16"] as const) {
    it(`runs end to end through transformers.js's own processor and greedy generate() (${dtype})`, async () => {
      env.localModelPath = model.root;
      env.allowRemoteModels = false;
      env.allowLocalModels = true;
      const processor = await AutoProcessor.from_pretrained(model.name);
      const vlm = await AutoModelForVision2Seq.from_pretrained(model.name, { dtype, device: "cpu" });
      try {
        const prompt = processor.apply_chat_template(MESSAGES as never, { add_generation_prompt: true }) as string;
        expect(prompt).toBe("<|im_start|>User:<image>Describe the painting.<end_of_utterance>\nAssistant:");
        const texts: string[] = [];
        for (const [image, split] of [
          [stripes(120, 90, 1), false],
          [stripes(200, 60, 2), true],
        ] as const) {
          const inputs = await processor(prompt, [image], { do_image_splitting: split });
          const promptIds = Array.from(inputs.input_ids.data as BigInt64Array, Number);
          const imageTokens = promptIds.filter((id) => id === PRESETS.tiny.tokens.image).length;
          expect(imageTokens).toBe(16 * inputs.pixel_values.dims[1]);
          const started = performance.now();
          const out = (await vlm.generate({ ...inputs, max_new_tokens: 24, do_sample: false })) as Tensor;
          // About 0.1 s here when the machine is idle; the bound leaves room for a loaded CI runner.
          expect(performance.now() - started).toBeLessThan(5000);
          const generated = Array.from(out.data as BigInt64Array, Number).slice(promptIds.length);
          expect(generated.length).toBeGreaterThan(0);
          // Not a constant stream: the next token depends on the context.
          expect(new Set(generated).size).toBeGreaterThan(3);
          texts.push(processor.batch_decode(out.slice(null, [promptIds.length, out.dims[1]!]), { skip_special_tokens: true })[0]!);
        }
        expect(texts[0]).not.toBe(texts[1]);
      } finally {
        await vlm.dispose();
      }
    });
  }

  it("has peaked logits: the top token stands well clear of the second", async () => {
    const decoder = await ort.InferenceSession.create(join(model.dir, "onnx/decoder_model_merged.onnx"));
    const embed = await ort.InferenceSession.create(join(model.dir, "onnx/embed_tokens.onnx"));
    const n = 40;
    const ids = BigInt64Array.from({ length: n }, (_, i) => BigInt(3 + ((i * 37) % 256)));
    const { inputs_embeds } = await embed.run({ input_ids: new ort.Tensor("int64", ids, [1, n]) });
    const empty = new ort.Tensor("float32", new Float32Array(0), [1, 2, 0, 16]);
    const out = await decoder.run({
      inputs_embeds: inputs_embeds!,
      attention_mask: new ort.Tensor("int64", new BigInt64Array(n).fill(1n), [1, n]),
      position_ids: new ort.Tensor("int64", BigInt64Array.from({ length: n }, (_, i) => BigInt(i)), [1, n]),
      "past_key_values.0.key": empty,
      "past_key_values.0.value": empty,
      "past_key_values.1.key": empty,
      "past_key_values.1.value": empty,
    });
    const logits = out.logits!.data as Float32Array;
    const gaps: number[] = [];
    for (let t = 0; t < n; t++) {
      const row = Array.from(logits.slice(t * 300, (t + 1) * 300)).sort((a, b) => b - a);
      gaps.push(row[0]! - row[1]!);
    }
    gaps.sort((a, b) => a - b);
    expect(gaps[Math.floor(n / 2)]).toBeGreaterThan(1);
    await Promise.all([decoder.release(), embed.release()]);
  });
});

describe("artdesc models synth", () => {
  it("writes the folder and prints one line per file and a summary", () => {
    const out = join(model.root, "cli-synth");
    const lines: string[] = [];
    synthCommand({ preset: "tiny", out, dtype: "fp16", seed: "7" }, { write: (s) => lines.push(s) });
    expect(checkModelFolder(out, "fp16")).toEqual([]);
    expect(lines.at(-1)).toMatch(new RegExp(`^${out}: tiny model, [0-9.]+ kB, [0-9.]+ s\n$`));
    expect(lines.some((l) => l.startsWith("onnx/decoder_model_merged_fp16.onnx: "))).toBe(true);
  });

  it("names the bad flag", () => {
    const sink = { write: () => true };
    expect(() => synthCommand({ preset: "huge", out: "/nonexistent", dtype: "fp32", seed: "1" }, sink)).toThrow(/--preset="huge"/);
    expect(() => synthCommand({ preset: "tiny", out: "/nonexistent", dtype: "fp32,bnb4", seed: "1" }, sink)).toThrow(/--dtype="fp32,bnb4"/);
    expect(() => synthCommand({ preset: "tiny", out: "/nonexistent", dtype: "fp32", seed: "x" }, sink)).toThrow(/--seed="x"/);
  });
});

describe("the synthetic decoder's graph", () => {
  // Hugging Face's export writes present.* from the Concat of past and new and feeds the keys'
  // transpose straight into Q·Kᵀ; any node in between copies the whole cache every step and makes
  // the synthetic decoder cost more than the real one (BENCHMARKS.md, issue 13).
  const producers = (float: "float32" | "float16") => {
    const g = decoderGraph(PRESETS.tiny, float);
    const byOutput = new Map(g.nodes.flatMap((n) => (n.output ?? []).map((o) => [o, n] as const)));
    return { g, byOutput };
  };

  it("writes each present.* from its Concat in float32, with no Identity anywhere", () => {
    const { g, byOutput } = producers("float32");
    const presents = g.outputs.map((o) => o.name!).filter((n) => n.startsWith("present."));
    expect(presents).toHaveLength(2 * PRESETS.tiny.text.numLayers);
    for (const name of presents) expect(byOutput.get(name)?.opType, name).toBe("Concat");
    expect(g.nodes.filter((n) => n.opType === "Identity")).toEqual([]);
  });

  it("feeds every Transpose of the keys straight into the attention MatMul, so onnxruntime fuses it", () => {
    const { g, byOutput } = producers("float32");
    const keyTransposes = g.nodes.filter((n) => n.opType === "Transpose" && byOutput.get(n.input![0]!)?.opType === "Unsqueeze");
    expect(keyTransposes).toHaveLength(PRESETS.tiny.text.numLayers);
    for (const t of keyTransposes) {
      const consumers = g.nodes.filter((n) => n.input?.includes(t.output![0]!));
      expect(consumers.map((c) => c.opType)).toEqual(["MatMul"]);
    }
  });

  it("casts present.* to float16 in a float16 file and keeps computing on the float32 values", () => {
    const { g, byOutput } = producers("float16");
    const key = byOutput.get("present.0.key")!;
    expect(key.opType).toBe("Cast");
    expect(byOutput.get(key.input![0]!)?.opType).toBe("Concat");
    expect(g.nodes.some((n) => n.input?.includes("present.0.key"))).toBe(false);
  });
});

describe("presets", () => {
  it("smolvlm-500m has the published dimensions", () => {
    const p = PRESETS["smolvlm-500m"];
    const c = modelConfig(p) as { text_config: Record<string, unknown>; vision_config: Record<string, unknown>; image_token_id: number };
    expect(c.text_config).toMatchObject({
      hidden_size: 960,
      intermediate_size: 2560,
      num_attention_heads: 15,
      num_key_value_heads: 5,
      head_dim: 64,
      num_hidden_layers: 32,
      vocab_size: 49280,
    });
    expect(c.vision_config).toMatchObject({ hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, patch_size: 16, image_size: 512 });
    expect(c.image_token_id).toBe(49190);
    expect(imageSeqLen(p)).toBe(64);
  });

  it("rejects an unknown preset, dtype or seed", () => {
    expect(() => synthModel({ preset: "huge" as never, outDir: "/nonexistent" })).toThrow(/unknown preset "huge"/);
    expect(() => synthModel({ preset: "tiny", outDir: "/nonexistent", dtype: "bnb4" as never })).toThrow(/not "bnb4"/);
    expect(() => synthModel({ preset: "tiny", outDir: "/nonexistent", dtype: "q4", q4AccuracyLevel: 5 })).toThrow(/q4AccuracyLevel/);
    expect(() => synthModel({ preset: "tiny", outDir: "/nonexistent", seed: -1 })).toThrow(/seed/);
  });
});
