import { cpSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/config.js";
import {
  assertModelFolder,
  checkModelFolder,
  defaultDtypes,
  ModelContractError,
  resolveModelFiles,
  resolveModelFolder,
} from "../../../src/describe/models/contract.js";
import { embedGraph } from "../../../src/describe/models/graphs.js";
import { GraphBuilder, writeOnnxModel } from "../../../src/describe/models/onnx-builder.js";
import { PRESETS } from "../../../src/describe/models/presets.js";
import { ModelMissingError } from "../../../src/describe/types.js";
import { createTinyModel, type TinyModel } from "../../support/models.js";

let model: TinyModel;
beforeAll(() => {
  model = createTinyModel();
});
afterAll(() => model.remove());

/** A copy of the tiny model to break. */
function copy(): string {
  const dir = join(model.root, `broken-${Math.random().toString(36).slice(2)}`);
  cpSync(model.dir, dir, { recursive: true });
  return dir;
}

const write = (dir: string, file: string, g: GraphBuilder) => writeOnnxModel(join(dir, file), g, { seed: 1, opset: 17, producer: "test" });

describe("checkModelFolder", () => {
  it("passes the synthetic tiny model in fp32 and fp16, and per-module dtypes", () => {
    expect(checkModelFolder(model.dir, "fp32")).toEqual([]);
    expect(checkModelFolder(model.dir, "fp16")).toEqual([]);
    expect(checkModelFolder(model.dir, { vision_encoder: "fp32", embed_tokens: "fp16", decoder_model_merged: "fp16" })).toEqual([]);
  });

  it("names missing files for a dtype the folder lacks", () => {
    expect(checkModelFolder(model.dir, "q4")).toEqual([
      "onnx/vision_encoder_q4.onnx: missing",
      "onnx/embed_tokens_q4.onnx: missing",
      "onnx/decoder_model_merged_q4.onnx: missing",
    ]);
    expect(checkModelFolder(join(model.root, "nowhere"), "fp32")).toEqual([`${join(model.root, "nowhere")}: no such folder`]);
  });

  it("reports a wrong tensor name, a wrong element type and a wrong rank", () => {
    const dir = copy();
    const g = new GraphBuilder("embed_tokens", "float32");
    const ids = g.input("token_ids", "int64", ["batch_size", "sequence_length"]);
    const table = g.rawWeight("table", [300, 64], { normal: 0.02 });
    g.named("inputs_embeds", "Gather", [table, ids], { axis: 0 });
    g.output("inputs_embeds", "float32", ["batch_size", "sequence_length", 64]);
    write(dir, "onnx/embed_tokens.onnx", g);

    const v = new GraphBuilder("vision_encoder", "float32");
    const px = v.input("pixel_values", "float32", ["batch_size", 3, "height", "width"]);
    v.input("pixel_attention_mask", "int64", ["batch_size", "num_images", "height", "width"]);
    v.named("image_features", "Identity", [px]);
    v.output("image_features", "float32", ["batch_size", 3, "height", "width"]);
    write(dir, "onnx/vision_encoder.onnx", v);

    expect(checkModelFolder(dir, "fp32")).toEqual([
      "onnx/vision_encoder.onnx: pixel_values has rank 4 [batch_size, 3, height, width], expected 5",
      "onnx/vision_encoder.onnx: pixel_attention_mask is int64, expected bool",
      "onnx/vision_encoder.onnx: image_features has rank 4 [batch_size, 3, height, width], expected 3",
      'onnx/embed_tokens.onnx: no tensor named "input_ids"',
      'onnx/embed_tokens.onnx: unexpected input "token_ids"',
    ]);
    rmSync(dir, { recursive: true });
  });

  it("reports fp32 files where fp16 is asked for, and dynamic key/value heads", () => {
    const dir = copy();
    write(dir, "onnx/embed_tokens_fp16.onnx", embedGraph(PRESETS.tiny, "float32"));
    const d = new GraphBuilder("decoder_model_merged", "float32");
    const x = d.input("inputs_embeds", "float32", ["batch_size", "sequence_length", 64]);
    d.input("attention_mask", "int64", ["batch", "total_sequence_length"]);
    d.input("position_ids", "int64", ["batch_size", "sequence_length"]);
    for (const i of [0, 1]) for (const k of ["key", "value"]) d.input(`past_key_values.${i}.${k}`, "float32", ["batch_size", "num_kv_heads", "past", 16]);
    d.named("logits", "Identity", [x]);
    d.output("logits", "float32", ["batch_size", "sequence_length", 64]);
    write(dir, "onnx/decoder_model_merged.onnx", d);
    const problems = checkModelFolder(dir, { vision_encoder: "fp32", embed_tokens: "fp16", decoder_model_merged: "fp32" });
    expect(problems).toContain("onnx/embed_tokens_fp16.onnx: inputs_embeds is float32, expected float16");
    expect(problems).toContain('onnx/decoder_model_merged.onnx: attention_mask dimension 0 is "batch", expected the symbolic "batch_size"');
    expect(problems).toContain('onnx/decoder_model_merged.onnx: past_key_values.0.key dimension 1 is "num_kv_heads", expected the fixed 2');
    expect(problems).toContain("onnx/decoder_model_merged.onnx: logits dimension 2 is 64, expected 300");
    expect(problems).toContain('onnx/decoder_model_merged.onnx: no tensor named "present.1.value"');
    rmSync(dir, { recursive: true });
  });

  it("reports config, processor and tokenizer problems", () => {
    const dir = copy();
    const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    config.image_token_id = 5;
    delete config.text_config.num_key_value_heads;
    writeFileSync(join(dir, "config.json"), JSON.stringify(config));
    writeFileSync(join(dir, "processor_config.json"), JSON.stringify({ image_seq_len: 64 }));
    writeFileSync(join(dir, "tokenizer_config.json"), "{not json");
    expect(checkModelFolder(dir, "fp32")).toEqual([
      "config.json: text_config.num_key_value_heads missing",
      "processor_config.json: image_seq_len 64 != (image_size/patch_size)^2/scale_factor^2 = 16",
      "tokenizer.json: <image> is id 297, config.json says image_token_id 5".replace("297", String(PRESETS.tiny.tokens.image)),
      expect.stringMatching(/^tokenizer_config.json: not valid JSON/),
    ]);
    rmSync(dir, { recursive: true });
  });
});

describe("resolveModelFiles", () => {
  const env = (dir: string, extra: Record<string, string> = {}) =>
    loadConfig({ MODEL_DIR: model.root, MODEL_ID: `local/${dir}`, MODEL_REVISION: "abc123", ...extra });

  it("resolves MODEL_DIR/MODEL_ID with the device's default dtypes and the recorded revision", () => {
    const dir = join(model.root, "local", "ok");
    cpSync(model.dir, dir, { recursive: true });
    const resolved = resolveModelFiles(env("ok"));
    expect(resolved).toMatchObject({
      localModelPath: model.root,
      modelId: "local/ok",
      dir,
      revision: "synth-tiny-seed1",
      dtypes: defaultDtypes("cpu"),
      device: "cpu",
    });
    expect(resolved.files).toContain("onnx/decoder_model_merged.onnx");
    expect(resolveModelFiles(env("ok", { MODEL_DTYPE: "fp16" })).files).toContain("onnx/decoder_model_merged_fp16.onnx");
    expect(() => assertModelFolder(dir, resolved.dtypes, "pull")).not.toThrow();
  });

  it("throws ModelMissingError naming the folder, the missing files and the pull command", () => {
    const dir = join(model.root, "local", "partial");
    cpSync(model.dir, dir, { recursive: true });
    rmSync(join(dir, "onnx/decoder_model_merged_fp16.onnx"));
    rmSync(join(dir, "tokenizer.json"));
    let error: unknown;
    try {
      resolveModelFiles(env("partial", { MODEL_DTYPE: "fp16" }));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ModelMissingError);
    const e = error as ModelMissingError;
    expect(e.folder).toBe(dir);
    expect(e.missing).toEqual(["tokenizer.json", "onnx/decoder_model_merged_fp16.onnx"]);
    expect(e.command).toBe("artdesc models pull --model local/partial --revision abc123 --dtype fp16");
    expect(e.message).toContain(dir);
  });

  it("resolveModelFolder loads an explicit folder and names the command that rebuilds it", () => {
    const dir = copy();
    const dtypes = defaultDtypes("cpu");
    expect(resolveModelFolder(dir, dtypes)).toMatchObject({ localModelPath: model.root, modelId: dir.split("/").at(-1), dir, revision: "synth-tiny-seed1" });
    rmSync(join(dir, "onnx/vision_encoder.onnx"));
    expect(() => resolveModelFolder(dir, dtypes)).toThrow(
      new ModelMissingError(dir, ["onnx/vision_encoder.onnx"], `artdesc models synth --preset tiny --out ${dir} --dtype fp32 --seed 1`),
    );
    rmSync(dir, { recursive: true });
  });

  it("assertModelFolder throws ModelContractError listing the problems", () => {
    const dir = copy();
    writeFileSync(join(dir, "processor_config.json"), JSON.stringify({ image_seq_len: 3 }));
    expect(() => assertModelFolder(dir, defaultDtypes("cpu"), "pull")).toThrow(ModelContractError);
    expect(() => assertModelFolder(dir, defaultDtypes("cpu"), "pull")).toThrow(/image_seq_len 3/);
    rmSync(dir, { recursive: true });
  });
});
