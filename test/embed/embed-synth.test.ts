import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BertTokenizer } from "@huggingface/transformers";
import onnxProto from "onnx-proto";
import { describe, expect, it } from "vitest";
import { bertTokenizerFiles, EMBED_PRESETS, embedVocabulary, synthEmbedModel } from "../../src/describe/models/embed-synth.js";
import { ConfigError } from "../../src/config.js";
import { synthCommand } from "../../src/describe/models/commands.js";
import { EmbeddingModel } from "../../src/embed/model.js";
import { ART_WORDS, bulkText } from "../support/bulk.js";

function tokenizer(kind: "semantic" | "subword") {
  const { tokenizer: json, tokenizerConfig } = bertTokenizerFiles(embedVocabulary(kind), 512);
  return new BertTokenizer(json, tokenizerConfig);
}

describe("the synthetic embedding models' vocabularies", () => {
  it("writes embed-tiny byte for byte as before (the semantic tests' model)", () => {
    // The ONNX file's hash last changed on 2026-12-02, when the last node started writing
    // last_hidden_state itself instead of through an Identity (GraphBuilder.emit): the same
    // numbers, one copy fewer.
    const dir = mkdtempSync(join(tmpdir(), "artdesc-embed-synth-"));
    try {
      synthEmbedModel({ preset: "embed-tiny", outDir: dir });
      const sha = (f: string) => createHash("sha256").update(readFileSync(join(dir, f))).digest("hex");
      expect({
        config: sha("config.json"),
        tokenizer: sha("tokenizer.json"),
        tokenizerConfig: sha("tokenizer_config.json"),
        special: sha("special_tokens_map.json"),
        onnx: sha("onnx/model.onnx"),
      }).toEqual({
        config: "9ff7ccf499b742f63bc1aba3320184e8a166f89f809438c9637b016da7b99f49",
        tokenizer: "1fe3356f829b055a5d984875970b05a88c1309b383db0aa0bc34c8490c78cc61",
        tokenizerConfig: "10c72650765687d0c3ce6a44c99c705977829d4bbf34d8e3b49fcd7c57ee8cb9",
        special: "b6d346be366a7d1d48332dbc9fdf3bf8960b5d879522b7799ddba59e76237ee3",
        onnx: "3c30df8f673d2f6198aad97254d1fbcdaf047bf18572abfe79db9f2d171b501c",
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("keeps the semantic vocabulary's ids in the subword one (appended after it)", () => {
    const semantic = embedVocabulary("semantic").tokens;
    const subword = embedVocabulary("subword").tokens;
    expect(subword.slice(0, semantic.length)).toEqual(semantic);
    expect(subword.length).toBeGreaterThan(semantic.length + 2_000);
    expect(new Set(subword).size).toBe(subword.length);
    expect(EMBED_PRESETS["embed-e5-small"].vocabulary).toBe("subword");
    expect(EMBED_PRESETS["embed-tiny"].vocabulary).toBe("semantic");
  });

  it("cuts bench texts into about as many tokens as e5's sentencepiece: words whole, rare words into syllables and numbers", () => {
    const subword = tokenizer("subword");
    const semantic = tokenizer("semantic");
    // [CLS] query : woman dog [SEP]
    expect(subword.encode("query: woman dog")).toHaveLength(6);
    for (const w of ART_WORDS) expect(subword.tokenize(w), w).toEqual([w]);
    expect(subword.tokenize("kevadi402")).toEqual(["ke", "##va", "##di", "##402"]);
    expect(semantic.tokenize("kevadi402")).toHaveLength(9);
    const words = Array.from({ length: 40 }, (_, i) => bulkText(i + 1, 150)).join(" ").split(/\s+/);
    for (const w of words.filter((x) => /^[a-z]+\.?$/i.test(x))) expect(subword.tokenize(w).length, w).toBeLessThanOrEqual(2);
    // Made-up names (syllables and a number): a few pieces each, never spelled letter by letter.
    for (const w of words.filter((x) => /\d/.test(x))) expect(subword.tokenize(w.replace(".", "")).length, w).toBeLessThanOrEqual(5);
    const perWord = subword.tokenize(words.join(" ")).length / words.length;
    expect(perWord).toBeGreaterThan(1.3);
    expect(perWord).toBeLessThan(2.6);
  });
});

describe("the synthetic embedding models' quantised files", () => {
  const MODEL_ID = "artdesc/synth-embed-e5-small";
  const texts = ["query: a woman walks a dog at night", "passage: soldiers fire on kneeling men in the dark", "passage: Retrato de una mujer con abanico"];

  it("writes model_quantized / model_int8 / model_uint8 / model_q4.onnx that transformers.js loads, each close to fp32", async () => {
    const root = mkdtempSync(join(tmpdir(), "artdesc-embed-quant-"));
    try {
      const dir = join(root, MODEL_ID);
      // e5-small's width and heads, one of its layers: every weight MatMul kind is there, written in a second.
      const out = synthEmbedModel({ preset: "embed-e5-small", outDir: dir, numLayers: 1, dtype: ["fp32", "quantized", "int8", "uint8", "q4"] });
      expect(out.files.map((f) => f.file).filter((f) => f.startsWith("onnx/"))).toEqual([
        "onnx/model.onnx",
        "onnx/model_quantized.onnx",
        "onnx/model_int8.onnx",
        "onnx/model_uint8.onnx",
        "onnx/model_q4.onnx",
      ]);
      expect(JSON.parse(readFileSync(join(dir, ".artdesc-revision.json"), "utf8")).dtypes).toEqual(["fp32", "quantized", "int8", "uint8", "q4"]);
      const graph = (file: string) => {
        const m = onnxProto.onnx.ModelProto.decode(readFileSync(join(dir, "onnx", file)));
        const inits = new Set(m.graph!.initializer!.map((t) => t.name!));
        const nodes = m.graph!.node!;
        // In a quantised file no float MatMul keeps a weight: those left multiply two activations (attention).
        const weighted = nodes.filter((x) => x.opType === "MatMul" && inits.has(x.input![1]!)).length;
        return { ops: nodes.map((n) => n.opType!), weighted };
      };
      // 6 weight MatMuls in a layer: query, key, value, attention output, intermediate, output.
      for (const f of ["model_quantized.onnx", "model_int8.onnx", "model_uint8.onnx"]) {
        const g = graph(f);
        expect([g.ops.filter((op) => op === "MatMulInteger").length, g.weighted], f).toEqual([6, 0]);
      }
      const q4 = graph("model_q4.onnx");
      expect([q4.ops.filter((op) => op === "MatMulNBits").length, q4.weighted]).toEqual([6, 0]);
      // fp32: the 6 weight MatMuls and the 2 of attention.
      const fp32 = graph("model.onnx");
      expect([fp32.ops.filter((op) => op === "MatMul").length, fp32.weighted, fp32.ops.includes("MatMulInteger")]).toEqual([8, 6, false]);

      const vectors: Record<string, Float32Array[]> = {};
      for (const dtype of ["fp32", "quantized", "int8", "uint8", "q4"] as const) {
        const model = await EmbeddingModel.load({ dir, modelId: MODEL_ID, dtype, revision: "r1", threads: 1 });
        try {
          expect(model.info).toEqual({ modelId: MODEL_ID, dims: 384, dtype, revision: "r1" });
          vectors[dtype] = await model.embed(texts, "passage");
        } finally {
          await model.dispose();
        }
      }
      const cos = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);
      for (const dtype of ["quantized", "int8", "uint8", "q4"]) {
        for (let i = 0; i < texts.length; i++) {
          // Quantised, not the same model: close to fp32's vector, never equal to it.
          expect(cos(vectors[dtype]![i]!, vectors.fp32![i]!), `${dtype} text ${i}`).toBeGreaterThan(0.98);
          expect(vectors[dtype]![i]).not.toEqual(vectors.fp32![i]);
        }
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("refuses a dtype it does not write, naming the ones it does", () => {
    expect(() => synthEmbedModel({ preset: "embed-tiny", outDir: join(tmpdir(), "never-written"), dtype: ["fp16" as "fp32"] })).toThrow(
      /written in fp32, quantized, int8, uint8, q4; not fp16/,
    );
  });
});

describe("models synth --preset embed-* --dtype", () => {
  it("writes each listed dtype's file and refuses one it cannot write with a ConfigError naming the flag", () => {
    const dir = mkdtempSync(join(tmpdir(), "artdesc-embed-cli-"));
    try {
      const printed: string[] = [];
      synthCommand({ preset: "embed-tiny", out: dir, dtype: "fp32, quantized", seed: "1" }, { write: (s: string) => printed.push(s) });
      expect(printed.join("")).toMatch(/onnx\/model_quantized\.onnx: /);
      expect(readFileSync(join(dir, "onnx/model.onnx")).length).toBeGreaterThan(0);
      expect(readFileSync(join(dir, "onnx/model_quantized.onnx")).length).toBeGreaterThan(0);
      // Not written for embeddings, empty, an empty item, a path, a huge list: each a ConfigError naming the flag.
      for (const dtype of ["q4f16", "", "fp32,", "../../etc/passwd", "fp32,".repeat(10_000) + "x"]) {
        expect(() => synthCommand({ preset: "embed-tiny", out: dir, dtype, seed: "1" }, { write: () => true }), dtype.slice(0, 20)).toThrow(ConfigError);
        expect(() => synthCommand({ preset: "embed-tiny", out: dir, dtype, seed: "1" }, { write: () => true })).toThrow(/--dtype=".*": the embedding presets are written in/s);
      }
      expect(() => synthCommand({ preset: "embed-tiny", out: dir, dtype: "q4f16", seed: "1" }, { write: () => true })).toThrow(
        /--dtype="q4f16": the embedding presets are written in fp32, quantized, int8, uint8, q4/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
