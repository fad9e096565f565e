import { readFileSync } from "node:fs";
import { join } from "node:path";
import { AutoModelForVision2Seq, AutoProcessor, env, RawImage, type Tensor } from "@huggingface/transformers";
import onnxProto from "onnx-proto";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine, type EngineParams } from "../../../src/describe/engine.js";
import { synthCommand } from "../../../src/describe/models/commands.js";
import { checkModelFolder, readRevision } from "../../../src/describe/models/contract.js";
import { PRESETS } from "../../../src/describe/models/presets.js";
import { createTinyModel, type TinyModel } from "../../support/models.js";

/** The quantised dtypes `models synth` writes, each with transformers.js's file suffix. */
const QUANTIZED = [
  ["int8", "_int8"],
  ["uint8", "_uint8"],
  ["quantized", "_quantized"],
  ["q4", "_q4"],
  ["q4f16", "_q4f16"],
] as const;

let model: TinyModel;
let image: string;

beforeAll(async () => {
  model = createTinyModel({ dtype: ["fp32", ...QUANTIZED.map(([d]) => d)] });
  const w = 96;
  const h = 80;
  const data = Buffer.alloc(w * h * 3);
  for (let i = 0; i < w * h; i++) {
    data[i * 3] = ((i % w) * 7 + 40) % 256;
    data[i * 3 + 1] = (Math.floor(i / w) * 5 + 90) % 256;
    data[i * 3 + 2] = (60 + (i % 13) * 11) % 256;
  }
  image = join(model.root, "stripes.png");
  await sharp(data, { raw: { width: w, height: h, channels: 3 } }).png().toFile(image);
});
afterAll(() => model.remove());

type Node = { opType: string; domain?: string; input: string[]; attribute: { name: string; i?: unknown }[] };
function graphOf(file: string) {
  const m = onnxProto.onnx.ModelProto.decode(readFileSync(join(model.dir, "onnx", file)));
  const nodes = m.graph!.node as Node[];
  const inits = new Map(m.graph!.initializer!.map((t) => [t.name!, t]));
  const attr = (n: Node, name: string) => Number(n.attribute.find((a) => a.name === name)?.i ?? NaN);
  return { m, nodes, inits, attr, ops: new Set(nodes.map((n) => n.opType)) };
}
const { DataType } = onnxProto.onnx.TensorProto;

describe("quantised synthetic exports: the graphs", () => {
  it("int8 / uint8 / quantized rewrite every weight MatMul as quantize_dynamic does, Conv as ConvInteger, Gather on 8-bit tables", () => {
    for (const [dtype, suffix] of QUANTIZED.slice(0, 3)) {
      for (const module of ["vision_encoder", "decoder_model_merged"]) {
        const g = graphOf(`${module}${suffix}.onnx`);
        // No float MatMul keeps a weight: the ones left multiply two activations (attention).
        for (const n of g.nodes.filter((x) => x.opType === "MatMul")) expect(g.inits.has(n.input[1]!)).toBe(false);
        const integer = g.nodes.filter((x) => x.opType === "MatMulInteger");
        expect(integer.length).toBeGreaterThan(0);
        expect(g.ops.has("DynamicQuantizeLinear")).toBe(true);
        // quantize_dynamic's q8 takes uint8 weights where the graph has a Conv, int8 elsewhere.
        const expected = dtype === "uint8" || (dtype === "quantized" && module === "vision_encoder") ? DataType.UINT8 : DataType.INT8;
        for (const n of integer) expect(g.inits.get(n.input[1]!)?.dataType).toBe(expected);
        if (module === "vision_encoder") {
          expect(g.ops.has("ConvInteger")).toBe(true);
          expect(g.ops.has("Conv")).toBe(false);
        }
      }
      const embed = graphOf(`embed_tokens${suffix}.onnx`);
      expect([...embed.ops].sort()).toEqual(["DequantizeLinear", "Gather"]);
    }
  });

  it("q4 / q4f16 use MatMulNBits (com.microsoft, 4 bits, blocks of 32, accuracy_level 4) for every weight MatMul, the head included", () => {
    const t = PRESETS.tiny.text;
    for (const [dtype, suffix] of QUANTIZED.slice(3)) {
      const g = graphOf(`decoder_model_merged${suffix}.onnx`);
      expect(g.m.opsetImport!.map((o) => o.domain ?? "")).toContain("com.microsoft");
      const nbits = g.nodes.filter((n) => n.opType === "MatMulNBits");
      // 7 projections per layer, and the tied head.
      expect(nbits.length).toBe(7 * t.numLayers + 1);
      for (const n of nbits) {
        expect(n.domain).toBe("com.microsoft");
        expect([g.attr(n, "bits"), g.attr(n, "block_size"), g.attr(n, "accuracy_level")]).toEqual([4, 32, 4]);
        const b = g.inits.get(n.input[1]!)!;
        const [k, nOut] = [g.attr(n, "K"), g.attr(n, "N")];
        expect(b.dataType).toBe(DataType.UINT8);
        expect(b.dims!.map(Number)).toEqual([nOut, Math.ceil(k / 32), 16]);
        expect(g.inits.get(n.input[2]!)?.dataType).toBe(dtype === "q4" ? DataType.FLOAT : DataType.FLOAT16);
      }
      const head = nbits.at(-1)!;
      expect([g.attr(head, "K"), g.attr(head, "N")]).toEqual([t.hiddenSize, t.vocabSize]);
      for (const n of g.nodes.filter((x) => x.opType === "MatMul")) expect(g.inits.has(n.input[1]!)).toBe(false);
      // Conv and the embedding Gather stay float, as MatMul4BitsQuantizer leaves them.
      expect(graphOf(`vision_encoder${suffix}.onnx`).ops.has("Conv")).toBe(true);
      expect([...graphOf(`embed_tokens${suffix}.onnx`).ops]).toEqual(["Gather"]);
    }
  });

  it("the files are smaller than fp32, q4 smallest, and the folder passes the contract for each dtype", () => {
    const size = (suffix: string) => readFileSync(join(model.dir, "onnx", `decoder_model_merged${suffix}.onnx`)).length;
    expect(size("_int8")).toBeLessThan(size("") / 3);
    expect(size("_q4")).toBeLessThan(size("_int8"));
    for (const [dtype] of QUANTIZED) expect(checkModelFolder(model.dir, dtype)).toEqual([]);
    expect(readRevision(model.dir)?.q4).toEqual({ blockSize: 32, accuracyLevel: 4 });
  });

  it("`models synth --dtype q4,int8` writes them through the command", () => {
    const out = join(model.root, "cli-q4");
    const lines: string[] = [];
    synthCommand({ preset: "tiny", out, dtype: "q4,int8", seed: "2" }, { write: (s) => lines.push(s) });
    expect(checkModelFolder(out, "q4")).toEqual([]);
    expect(checkModelFolder(out, "int8")).toEqual([]);
    expect(lines.some((l) => l.startsWith("onnx/decoder_model_merged_q4.onnx: "))).toBe(true);
    // Adding a dtype later keeps the record of those already written (and their q4 settings).
    synthCommand({ preset: "tiny", out, dtype: "fp16", seed: "2" }, { write: () => true });
    const record = readRevision(out)!;
    expect(record.dtypes).toEqual(["q4", "int8", "fp16"]);
    expect(record.files).toEqual(expect.arrayContaining(["onnx/decoder_model_merged_q4.onnx", "onnx/decoder_model_merged_fp16.onnx"]));
    expect(record.q4).toEqual({ blockSize: 32, accuracyLevel: 4 });
    // A different seed is another model: its record starts afresh.
    synthCommand({ preset: "tiny", out, dtype: "fp32", seed: "3" }, { write: () => true });
    expect(readRevision(out)!.dtypes).toEqual(["fp32"]);
  });
});

const params: EngineParams = {
  prompt: "Describe the painting.",
  numBeams: 4,
  maxNewTokens: 12,
  minNewTokens: 12,
  targetWords: 0,
  lengthPenalty: 1,
  earlyStopping: true,
  noRepeatNgramSize: 0,
  repetitionPenalty: 1,
  imageSplitting: false,
  cleanMarkdown: true,
};

describe("quantised synthetic exports: end to end", () => {
  for (const [dtype, suffix] of QUANTIZED) {
    it(`${dtype}: the engine loads it through transformers.js and describes an image with 4 beams`, async () => {
      const engine = await Engine.load({ modelDir: model.dir, dtype });
      try {
        expect(engine.model.dtypes).toEqual({ vision_encoder: dtype, embed_tokens: dtype, decoder_model_merged: dtype });
        expect(engine.model.files.map((f) => f.path)).toContain(`onnx/decoder_model_merged${suffix}.onnx`);
        const prepared = await engine.prepare(image, params.prompt, false);
        const prefill = await engine.prefill(prepared);
        expect(prefill.logits.length).toBe(PRESETS.tiny.text.vocabSize);
        expect(prefill.logits.every(Number.isFinite)).toBe(true);
        const [out] = await engine.describe([{ imagePath: image }], params);
        expect(out!.generatedTokens).toBe(12);
        expect(out!.generatedTokenIds.every((id) => id >= 0 && id < PRESETS.tiny.text.vocabSize)).toBe(true);
        expect(Number.isFinite(out!.sequenceScore)).toBe(true);
        expect(typeof out!.rawText).toBe("string");
        expect(out!.model.dtypes.decoder_model_merged).toBe(dtype);
      } finally {
        await engine.dispose();
      }
    });
  }

  it("transformers.js's own greedy generate() runs on every quantised dtype (q4f16: its float16 cache)", async () => {
    env.localModelPath = model.root;
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    const processor = await AutoProcessor.from_pretrained(model.name);
    const messages = [{ role: "user", content: [{ type: "image" }, { type: "text", text: "Describe the painting." }] }];
    const prompt = processor.apply_chat_template(messages as never, { add_generation_prompt: true }) as string;
    const pixels = Buffer.alloc(120 * 90 * 3, 0).map((_, i) => (i * 7) % 256);
    const inputs = await processor(prompt, [new RawImage(new Uint8ClampedArray(pixels), 120, 90, 3)], { do_image_splitting: false });
    const promptLength = inputs.input_ids.dims[1]!;
    for (const [dtype] of QUANTIZED) {
      const vlm = await AutoModelForVision2Seq.from_pretrained(model.name, { dtype: dtype === "quantized" ? "q8" : dtype, device: "cpu" });
      try {
        const out = (await vlm.generate({ ...inputs, max_new_tokens: 8, min_new_tokens: 8, do_sample: false })) as Tensor;
        expect(out.dims[1]! - promptLength).toBe(8);
      } finally {
        await vlm.dispose();
      }
    }
  });
});
