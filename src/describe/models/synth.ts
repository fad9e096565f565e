import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { decoderGraph, embedGraph, visionGraph } from "./graphs.js";
import { writeOnnxModel, type GraphBuilder, type Quantization } from "./onnx-builder.js";
import { imageSeqLen, PRESET_NAMES, PRESETS, type Preset, type PresetName } from "./presets.js";
import { tokenizerFiles } from "./tokenizer.js";
import { DTYPE_SUFFIX, readRevision, REVISION_FILE, type RevisionRecord } from "./contract.js";

/** The dtypes `synth` can write (every one transformers.js maps to a file, except bnb4). */
export const SYNTH_DTYPES = ["fp32", "fp16", "int8", "uint8", "quantized", "q4", "q4f16"] as const;
export type SynthDtype = (typeof SYNTH_DTYPES)[number];

/** MatMul4BitsQuantizer's block size in transformers.js's scripts/quantize.py (its default). */
export const Q4_BLOCK_SIZE = 32;
/**
 * MatMulNBits accuracy_level written by default: 4 lets onnxruntime quantise the activations to
 * int8 per block and use its integer kernels. Hugging Face's files leave it unset (0: float
 * compute), which on the 2-core build machine runs slower than fp32 (see docs/describe.md).
 */
export const DEFAULT_Q4_ACCURACY_LEVEL = 4;

/**
 * Storage of each module per dtype, as transformers.js's scripts/quantize.py makes the files:
 * `quantized` (its q8) picks uint8 weights for a graph with a Conv (the vision encoder: ConvInteger
 * has no int8-weight kernel in onnxruntime-web) and int8 for the others; q4 leaves Conv and Gather
 * in float; q4f16 is q4 with float16 storage and float16 inputs and outputs.
 */
export function moduleStorage(
  dtype: SynthDtype,
  module: "vision_encoder" | "embed_tokens" | "decoder_model_merged",
  accuracyLevel: number,
): { float: "float32" | "float16"; quant: Quantization } {
  const q4: Quantization = { kind: "q4", blockSize: Q4_BLOCK_SIZE, accuracyLevel };
  switch (dtype) {
    case "fp32":
      return { float: "float32", quant: { kind: "none" } };
    case "fp16":
      return { float: "float16", quant: { kind: "none" } };
    case "int8":
    case "uint8":
      return { float: "float32", quant: { kind: "int8", weights: dtype } };
    case "quantized":
      return { float: "float32", quant: { kind: "int8", weights: module === "vision_encoder" ? "uint8" : "int8" } };
    case "q4":
      return { float: "float32", quant: q4 };
    case "q4f16":
      return { float: "float16", quant: q4 };
  }
}

export interface SynthOptions {
  preset: PresetName;
  outDir: string;
  /** One dtype or several; each adds its three ONNX files to the same folder. */
  dtype?: SynthDtype | SynthDtype[];
  seed?: number;
  /** MatMulNBits accuracy_level of the q4 and q4f16 files (0-4); DEFAULT_Q4_ACCURACY_LEVEL if absent. */
  q4AccuracyLevel?: number;
  /** Called after each file, for progress output. */
  onFile?: (file: string, bytes: number, ms: number) => void;
}

export interface SynthResult {
  dir: string;
  files: { file: string; bytes: number }[];
  ms: number;
}

/** ONNX opset of the written graphs (LayerNormalization needs 17). */
const OPSET = 17;

/** Writes a model folder in the layout of a Hugging Face ONNX export, with seeded random weights. */
export function synthModel(options: SynthOptions): SynthResult {
  if (!(PRESET_NAMES as readonly string[]).includes(options.preset)) {
    throw new Error(`unknown preset "${options.preset}"; use one of ${PRESET_NAMES.join(", ")}`);
  }
  const dtypes = [...new Set(Array.isArray(options.dtype) ? options.dtype : [options.dtype ?? "fp32"])];
  for (const d of dtypes) {
    if (!(SYNTH_DTYPES as readonly string[]).includes(d)) throw new Error(`synth writes ${SYNTH_DTYPES.join(" or ")}, not "${d}"`);
  }
  const seed = options.seed ?? 1;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`seed must be an integer in 0..2^32-1, got ${seed}`);
  const accuracyLevel = options.q4AccuracyLevel ?? DEFAULT_Q4_ACCURACY_LEVEL;
  if (!Number.isInteger(accuracyLevel) || accuracyLevel < 0 || accuracyLevel > 4) throw new Error(`q4AccuracyLevel must be 0..4, got ${accuracyLevel}`);
  const p = PRESETS[options.preset];
  const started = performance.now();
  const dir = options.outDir;
  mkdirSync(join(dir, "onnx"), { recursive: true });
  const files: SynthResult["files"] = [];

  const json = (file: string, value: unknown) => {
    const t = performance.now();
    const text = `${JSON.stringify(value, null, 2)}\n`;
    writeFileSync(join(dir, file), text);
    files.push({ file, bytes: Buffer.byteLength(text) });
    options.onFile?.(file, Buffer.byteLength(text), performance.now() - t);
  };
  const { tokenizer, tokenizerConfig } = tokenizerFiles(p);
  json("config.json", modelConfig(p));
  json("generation_config.json", generationConfig(p));
  json("preprocessor_config.json", preprocessorConfig(p));
  json("processor_config.json", { image_seq_len: imageSeqLen(p), processor_class: "Idefics3Processor" });
  json("tokenizer.json", tokenizer);
  json("tokenizer_config.json", tokenizerConfig);
  json("special_tokens_map.json", {
    additional_special_tokens: tokenizerConfig.additional_special_tokens,
    bos_token: tokenizerConfig.bos_token,
    eos_token: tokenizerConfig.eos_token,
    pad_token: tokenizerConfig.pad_token,
    unk_token: tokenizerConfig.unk_token,
  });

  const builders: [Parameters<typeof moduleStorage>[1], (p: Preset, f: "float32" | "float16", q: Quantization) => GraphBuilder][] = [
    ["vision_encoder", visionGraph],
    ["embed_tokens", embedGraph],
    ["decoder_model_merged", decoderGraph],
  ];
  for (const dtype of dtypes) {
    for (const [module, build] of builders) {
      const t = performance.now();
      const file = `onnx/${module}${DTYPE_SUFFIX[dtype]}.onnx`;
      const { float, quant } = moduleStorage(dtype, module, accuracyLevel);
      const bytes = writeOnnxModel(join(dir, file), build(p, float, quant), {
        seed,
        opset: OPSET,
        producer: `artdesc synth ${p.name}`,
      });
      files.push({ file, bytes });
      options.onFile?.(file, bytes, performance.now() - t);
    }
  }
  // Adding dtypes to a folder of the same preset and seed keeps the record of the ones already there.
  const before = readRevision(dir);
  const same = before?.source === "synth" && before.preset === p.name && before.seed === seed;
  const wroteQ4 = dtypes.some((d) => d === "q4" || d === "q4f16");
  const q4 = wroteQ4 ? { blockSize: Q4_BLOCK_SIZE, accuracyLevel } : same ? before.q4 : undefined;
  const record: RevisionRecord = {
    model: `artdesc/synth-${p.name}`,
    revision: `synth-${p.name}-seed${seed}`,
    commit: null,
    source: "synth",
    preset: p.name,
    seed,
    dtypes: [...new Set([...(same ? before.dtypes : []), ...dtypes])],
    ...(q4 ? { q4 } : {}),
    files: [...new Set([...(same ? before.files : []), ...files.map((f) => f.file)])],
    createdAt: new Date().toISOString(),
  };
  json(REVISION_FILE, record);
  return { dir, files, ms: performance.now() - started };
}

export function modelConfig(p: Preset): Record<string, unknown> {
  const t = p.text;
  const v = p.vision;
  return {
    architectures: ["Idefics3ForConditionalGeneration"],
    model_type: "idefics3",
    image_token_id: p.tokens.image,
    scale_factor: p.scaleFactor,
    vocab_size: t.vocabSize,
    bos_token_id: p.bosTokenId,
    eos_token_id: p.eosTokenId,
    pad_token_id: p.padTokenId,
    tie_word_embeddings: true,
    torch_dtype: "float32",
    use_cache: true,
    text_config: {
      model_type: "llama",
      architectures: ["VLlama3ForCausalLM"],
      hidden_size: t.hiddenSize,
      intermediate_size: t.intermediateSize,
      num_hidden_layers: t.numLayers,
      num_attention_heads: t.numHeads,
      num_key_value_heads: t.numKeyValueHeads,
      head_dim: t.headDim,
      vocab_size: t.vocabSize,
      hidden_act: "silu",
      rms_norm_eps: t.rmsNormEps,
      rope_theta: t.ropeTheta,
      max_position_embeddings: t.maxPositionEmbeddings,
      attention_bias: false,
      mlp_bias: false,
      tie_word_embeddings: true,
      bos_token_id: p.bosTokenId,
      eos_token_id: p.eosTokenId,
      pad_token_id: p.padTokenId,
    },
    vision_config: {
      model_type: "idefics3_vision",
      hidden_size: v.hiddenSize,
      intermediate_size: v.intermediateSize,
      num_hidden_layers: v.numLayers,
      num_attention_heads: v.numHeads,
      num_channels: 3,
      patch_size: v.patchSize,
      image_size: v.imageSize,
      hidden_act: "gelu_pytorch_tanh",
      layer_norm_eps: v.layerNormEps,
      max_image_size: { longest_edge: v.imageSize },
      size: { longest_edge: p.resizeLongestEdge },
    },
    "transformers.js_config": { kv_cache_dtype: { fp16: "float16", q4f16: "float16" } },
  };
}

function generationConfig(p: Preset): Record<string, unknown> {
  return {
    _from_model_config: true,
    bos_token_id: p.bosTokenId,
    eos_token_id: [p.eosTokenId],
    pad_token_id: p.padTokenId,
  };
}

function preprocessorConfig(p: Preset): Record<string, unknown> {
  return {
    image_processor_type: "Idefics3ImageProcessor",
    processor_class: "Idefics3Processor",
    do_convert_rgb: true,
    do_resize: true,
    size: { longest_edge: p.resizeLongestEdge },
    resample: 1,
    do_image_splitting: true,
    max_image_size: { longest_edge: p.vision.imageSize },
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: [0.5, 0.5, 0.5],
    image_std: [0.5, 0.5, 0.5],
    do_pad: true,
  };
}
