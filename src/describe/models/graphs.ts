import { elemType, GraphBuilder, type Quantization } from "./onnx-builder.js";
import { imageSeqLen, type Preset } from "./presets.js";

/**
 * The three graphs of an Idefics3/SmolVLM export, with the tensor names transformers.js feeds and
 * reads (see smolvlm.md's contract table). They follow Hugging Face's modeling_idefics3.py,
 * modeling_siglip.py and modeling_llama.py op for op; weights are named after the Python
 * parameters and stored as [in, out] for MatMul.
 */

const NEG = -1e9;
const F32 = elemType("float32");
const BOOL = elemType("bool");

/** [in, out] linear layer, with optional bias. */
function linear(g: GraphBuilder, x: string, name: string, inDim: number, outDim: number, std: number, bias: boolean): string {
  const y = g.matmul(x, `${name}.weight`, inDim, outDim, { normal: std });
  if (!bias) return y;
  return g.op("Add", [y, g.weight(`${name}.bias`, [outDim], { normal: std })]);
}

function layerNorm(g: GraphBuilder, x: string, name: string, dim: number, eps: number, std: number): string {
  const scale = g.weight(`${name}.weight`, [dim], { normal: std, mean: 1 });
  const bias = g.weight(`${name}.bias`, [dim], { normal: std });
  return g.op("LayerNormalization", [x, scale, bias], { axis: -1, epsilon: { float: eps } });
}

/** LlamaRMSNorm: x / sqrt(mean(x^2) + eps) * weight. */
function rmsNorm(g: GraphBuilder, x: string, weight: string, eps: number): string {
  const meanSq = g.op("ReduceMean", [g.op("Mul", [x, x])], { axes: [-1], keepdims: 1 });
  const inv = g.op("Sqrt", [g.op("Add", [meanSq, g.scalar(eps)])]);
  return g.op("Mul", [g.op("Div", [x, inv]), weight]);
}

/** gelu_pytorch_tanh (SigLIP's hidden_act): 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))). */
function geluTanh(g: GraphBuilder, x: string): string {
  const cube = g.op("Mul", [g.op("Mul", [x, x]), x]);
  const inner = g.op("Mul", [g.op("Add", [x, g.op("Mul", [cube, g.scalar(0.044715)])]), g.scalar(Math.sqrt(2 / Math.PI))]);
  const t = g.op("Add", [g.op("Tanh", [inner]), g.scalar(1)]);
  return g.op("Mul", [g.op("Mul", [x, t]), g.scalar(0.5)]);
}

/**
 * vision_encoder: Idefics3Model.get_image_features. Drops padding images (all zeros), derives
 * the patch mask from pixel_attention_mask, runs the SigLIP transformer and the connector
 * (pixel shuffle + modality projection). Tiles must be vision.imageSize square, as the processor makes them.
 */
export function visionGraph(p: Preset, float: "float32" | "float16", quant?: Quantization): GraphBuilder {
  const g = new GraphBuilder("vision_encoder", float, quant);
  const v = p.vision;
  const std = p.initStd;
  const side = v.imageSize / v.patchSize;
  const numPatches = side * side;
  const headDim = v.hiddenSize / v.numHeads;

  // pixel_values stays float32 in every dtype: transformers.js feeds the processor's float32
  // pixels unconverted (transformers.js#1447), so an fp16 export keeps this input's type.
  const pixels = g.input("pixel_values", "float32", ["batch_size", "num_images", 3, "height", "width"]);
  const pixelMask = g.input("pixel_attention_mask", "bool", ["batch_size", "num_images", "height", "width"]);
  const flat = g.op("Reshape", [pixels, g.ints([-1, 3, v.imageSize, v.imageSize])]);

  // real_images_inds: an image is padding when all its values are 0; keep the first if none is real.
  const nonZero = g.op("Cast", [g.op("Not", [g.op("Equal", [flat, g.scalar(0)])])], { to: F32 });
  const anyNonZero = g.op("ReduceMax", [nonZero], { axes: [1, 2, 3], keepdims: 0 });
  const real = g.op("Cast", [anyNonZero], { to: BOOL });
  const count = g.op("Shape", [anyNonZero]);
  const index = g.op("Range", [g.ints([0], []), g.op("Squeeze", [count, g.ints([0])]), g.ints([1], [])]);
  const isFirst = g.op("Equal", [index, g.ints([0], [])]);
  const noneReal = g.op("Not", [g.op("Cast", [g.op("ReduceMax", [anyNonZero], { keepdims: 0 })], { to: BOOL })]);
  const keep = g.op("Or", [real, g.op("And", [isFirst, noneReal])]);
  const images = g.op("Compress", [flat, keep], { axis: 0 });

  // patch_attention_mask: a patch counts when any of its pixels is unmasked; masks keys only.
  const maskF = g.op("Reshape", [g.op("Cast", [pixelMask], { to: F32 }), g.ints([-1, v.imageSize, v.imageSize])]);
  const maskKept = g.op("Compress", [maskF, keep], { axis: 0 });
  const perPatch = g.op("ReduceMax", [g.op("Reshape", [maskKept, g.ints([-1, side, v.patchSize, side, v.patchSize])])], {
    axes: [2, 4],
    keepdims: 0,
  });
  const patchMask = g.op("Cast", [g.op("Reshape", [perPatch, g.ints([-1, 1, 1, numPatches])])], { to: BOOL });
  const attnBias = g.op("Where", [patchMask, g.scalar(0), g.scalar(NEG)]);

  // SiglipVisionEmbeddings: patch convolution + position embeddings (full tiles: positions 0..n-1).
  const convB = () => g.weight("model.vision_model.embeddings.patch_embedding.bias", [v.hiddenSize], { normal: std });
  const conv = g.conv(images, "model.vision_model.embeddings.patch_embedding.weight", [v.hiddenSize, 3, v.patchSize, v.patchSize], { normal: std }, convB, {
    kernel_shape: [v.patchSize, v.patchSize],
    strides: [v.patchSize, v.patchSize],
  });
  const patches = g.op("Transpose", [g.op("Reshape", [conv, g.ints([0, v.hiddenSize, -1])])], { perm: [0, 2, 1] });
  const pos = g.weight("model.vision_model.embeddings.position_embedding.weight", [numPatches, v.hiddenSize], { normal: std });
  let x = g.op("Add", [patches, pos]);

  for (let i = 0; i < v.numLayers; i++) {
    const pre = `model.vision_model.encoder.layers.${i}`;
    const h = layerNorm(g, x, `${pre}.layer_norm1`, v.hiddenSize, v.layerNormEps, std);
    const heads = (t: string) => g.op("Transpose", [g.op("Reshape", [t, g.ints([0, -1, v.numHeads, headDim])])], { perm: [0, 2, 1, 3] });
    const q = heads(linear(g, h, `${pre}.self_attn.q_proj`, v.hiddenSize, v.hiddenSize, std, true));
    const k = heads(linear(g, h, `${pre}.self_attn.k_proj`, v.hiddenSize, v.hiddenSize, std, true));
    const val = heads(linear(g, h, `${pre}.self_attn.v_proj`, v.hiddenSize, v.hiddenSize, std, true));
    const scores = g.op("Mul", [g.op("MatMul", [q, g.op("Transpose", [k], { perm: [0, 1, 3, 2] })]), g.scalar(1 / Math.sqrt(headDim))]);
    const probs = g.op("Softmax", [g.op("Add", [scores, attnBias])], { axis: -1 });
    const ctx = g.op("Reshape", [g.op("Transpose", [g.op("MatMul", [probs, val])], { perm: [0, 2, 1, 3] }), g.ints([0, -1, v.hiddenSize])]);
    x = g.op("Add", [x, linear(g, ctx, `${pre}.self_attn.out_proj`, v.hiddenSize, v.hiddenSize, std, true)]);
    const h2 = layerNorm(g, x, `${pre}.layer_norm2`, v.hiddenSize, v.layerNormEps, std);
    const mlp = linear(g, geluTanh(g, linear(g, h2, `${pre}.mlp.fc1`, v.hiddenSize, v.intermediateSize, std, true)), `${pre}.mlp.fc2`, v.intermediateSize, v.hiddenSize, std, true);
    x = g.op("Add", [x, mlp]);
  }
  x = layerNorm(g, x, "model.vision_model.post_layernorm", v.hiddenSize, v.layerNormEps, std);

  // Idefics3Connector.pixel_shuffle, then modality_projection (no bias).
  const s = p.scaleFactor;
  const d = v.hiddenSize;
  let y = g.op("Reshape", [x, g.ints([-1, side, side / s, d * s])]);
  y = g.op("Transpose", [y], { perm: [0, 2, 1, 3] });
  y = g.op("Reshape", [y, g.ints([-1, side / s, side / s, d * s * s])]);
  y = g.op("Transpose", [y], { perm: [0, 2, 1, 3] });
  y = g.op("Reshape", [y, g.ints([-1, numPatches / (s * s), d * s * s])]);
  const features = linear(g, y, "model.connector.modality_projection.proj", d * s * s, p.text.hiddenSize, std, false);
  g.emit("image_features", features, ["num_images", imageSeqLen(p), p.text.hiddenSize]);
  return g;
}

const EMBED = "model.text_model.embed_tokens.weight";

/** embed_tokens: one Gather on the embedding table (kept in the file's float type). */
export function embedGraph(p: Preset, float: "float32" | "float16", quant?: Quantization): GraphBuilder {
  const g = new GraphBuilder("embed_tokens", float, quant);
  const ids = g.input("input_ids", "int64", ["batch_size", "sequence_length"]);
  g.embedding("inputs_embeds", ids, EMBED, [p.text.vocabSize, p.text.hiddenSize], { normal: p.initStd });
  g.output("inputs_embeds", float, ["batch_size", "sequence_length", p.text.hiddenSize]);
  return g;
}

/**
 * decoder_model_merged: the Llama decoder over inputs_embeds with a key/value cache. Rotary
 * positions come from position_ids; the mask is causal over past+seq and hides padded keys;
 * grouped-query attention broadcasts each key/value head over its group of query heads
 * (repeat_kv without the copy). The head is tied to the embedding table, scaled by the final norm.
 */
export function decoderGraph(p: Preset, float: "float32" | "float16", quant?: Quantization): GraphBuilder {
  const g = new GraphBuilder("decoder_model_merged", float, quant);
  const t = p.text;
  const std = p.decoderStd;
  const group = t.numHeads / t.numKeyValueHeads;
  const kvDims = ["batch_size", t.numKeyValueHeads, "past_sequence_length", t.headDim];
  const presentDims = ["batch_size", t.numKeyValueHeads, "total_sequence_length", t.headDim];

  let x = g.toCompute(g.input("inputs_embeds", float, ["batch_size", "sequence_length", t.hiddenSize]));
  const attentionMask = g.input("attention_mask", "int64", ["batch_size", "total_sequence_length"]);
  const positionIds = g.input("position_ids", "int64", ["batch_size", "sequence_length"]);
  const past: { key: string; value: string }[] = [];
  for (let i = 0; i < t.numLayers; i++) {
    past.push({
      key: g.toCompute(g.input(`past_key_values.${i}.key`, float, kvDims)),
      value: g.toCompute(g.input(`past_key_values.${i}.value`, float, kvDims)),
    });
  }

  // LlamaRotaryEmbedding: angles = position * inv_freq, duplicated over both halves of head_dim.
  const invFreq = Array.from({ length: t.headDim / 2 }, (_, i) => 1 / t.ropeTheta ** ((2 * i) / t.headDim));
  const angles = g.op("Mul", [g.op("Unsqueeze", [g.op("Cast", [positionIds], { to: F32 }), g.ints([2])]), g.floats(invFreq)]);
  const emb = g.op("Unsqueeze", [g.op("Concat", [angles, angles], { axis: -1 }), g.ints([1])]);
  const cos = g.op("Cos", [emb]);
  const sin = g.op("Sin", [emb]);
  const halves = g.ints([t.headDim / 2, t.headDim / 2]);
  const rope = (h: string) => {
    const [a, b] = g.node("Split", [h, halves], { axis: -1 }, 2) as [string, string];
    const rotated = g.op("Concat", [g.op("Neg", [b]), a], { axis: -1 });
    return g.op("Add", [g.op("Mul", [h, cos]), g.op("Mul", [rotated, sin])]);
  };

  // Causal + padding mask over [past + seq] keys, as an additive bias [batch, 1, 1, seq, total].
  const total = g.op("Shape", [attentionMask], { start: 1, end: 2 });
  const seq = g.op("Shape", [positionIds], { start: 1, end: 2 });
  const totalS = g.op("Squeeze", [total, g.ints([0])]);
  const pastS = g.op("Squeeze", [g.op("Sub", [total, seq]), g.ints([0])]);
  const keyPos = g.op("Unsqueeze", [g.op("Range", [g.ints([0], []), totalS, g.ints([1], [])]), g.ints([0])]);
  const queryPos = g.op("Unsqueeze", [g.op("Range", [pastS, totalS, g.ints([1], [])]), g.ints([1])]);
  const causal = g.op("LessOrEqual", [keyPos, queryPos]);
  const keyValid = g.op("Unsqueeze", [g.op("Cast", [attentionMask], { to: BOOL }), g.ints([1, 2, 3])]);
  const allowed = g.op("And", [causal, keyValid]);
  const bias = g.op("Where", [allowed, g.scalar(0), g.scalar(NEG)]);
  const scale = g.scalar(1 / Math.sqrt(t.headDim));

  for (let i = 0; i < t.numLayers; i++) {
    const pre = `model.text_model.layers.${i}`;
    const h = rmsNorm(g, x, g.weight(`${pre}.input_layernorm.weight`, [t.hiddenSize], { normal: std, mean: 1 }), t.rmsNormEps);
    const heads = (y: string, n: number) => g.op("Transpose", [g.op("Reshape", [y, g.ints([0, 0, n, t.headDim])])], { perm: [0, 2, 1, 3] });
    const q = rope(heads(linear(g, h, `${pre}.self_attn.q_proj`, t.hiddenSize, t.numHeads * t.headDim, std, false), t.numHeads));
    const k = rope(heads(linear(g, h, `${pre}.self_attn.k_proj`, t.hiddenSize, t.numKeyValueHeads * t.headDim, std, false), t.numKeyValueHeads));
    const v = heads(linear(g, h, `${pre}.self_attn.v_proj`, t.hiddenSize, t.numKeyValueHeads * t.headDim, std, false), t.numKeyValueHeads);
    const keys = g.emit(`present.${i}.key`, g.op("Concat", [past[i]!.key, k], { axis: 2 }), presentDims);
    const values = g.emit(`present.${i}.value`, g.op("Concat", [past[i]!.value, v], { axis: 2 }), presentDims);

    // [b, H, s, d] -> [b, kvH, group, s, d] against keys [b, kvH, 1, d, T]. The Transpose feeds the
    // MatMul directly, as `q @ k.transpose(2, 3)` exports, so onnxruntime fuses it into the product
    // (FusedMatMul, transB) instead of copying the whole key cache every step.
    const qg = g.op("Reshape", [q, g.ints([0, t.numKeyValueHeads, group, -1, t.headDim])]);
    const kT = g.op("Transpose", [g.op("Unsqueeze", [keys, g.ints([2])])], { perm: [0, 1, 2, 4, 3] });
    const scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [qg, kT]), scale]), bias]);
    const probs = g.op("Softmax", [scores], { axis: -1 });
    const ctx5 = g.op("MatMul", [probs, g.op("Unsqueeze", [values, g.ints([2])])]);
    const ctx = g.op("Reshape", [
      g.op("Transpose", [g.op("Reshape", [ctx5, g.ints([0, t.numHeads, -1, t.headDim])])], { perm: [0, 2, 1, 3] }),
      g.ints([0, 0, t.numHeads * t.headDim]),
    ]);
    x = g.op("Add", [x, linear(g, ctx, `${pre}.self_attn.o_proj`, t.numHeads * t.headDim, t.hiddenSize, std, false)]);

    const h2 = rmsNorm(g, x, g.weight(`${pre}.post_attention_layernorm.weight`, [t.hiddenSize], { normal: std, mean: 1 }), t.rmsNormEps);
    const gate = linear(g, h2, `${pre}.mlp.gate_proj`, t.hiddenSize, t.intermediateSize, std, false);
    const up = linear(g, h2, `${pre}.mlp.up_proj`, t.hiddenSize, t.intermediateSize, std, false);
    const act = g.op("Mul", [gate, g.op("Sigmoid", [gate])]);
    x = g.op("Add", [x, linear(g, g.op("Mul", [act, up]), `${pre}.mlp.down_proj`, t.intermediateSize, t.hiddenSize, std, false)]);
  }

  const normed = rmsNorm(g, x, g.weight("model.text_model.norm.weight", [t.hiddenSize], { constant: p.headScale }), t.rmsNormEps);
  // The head is the embedding table [vocab, hidden] used as B = table^T.
  const logits = g.matmul(normed, EMBED, t.hiddenSize, t.vocabSize, { normal: p.initStd }, "nk");
  g.emit("logits", logits, ["batch_size", "sequence_length", t.vocabSize]);
  return g;
}
