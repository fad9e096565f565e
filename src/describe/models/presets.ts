/**
 * Dimensions of the synthetic models. `smolvlm-500m` copies SmolVLM-500M-Instruct's published
 * config (../shared/reference/smolvlm.md), so its compute and memory cost is the real one's;
 * `tiny` keeps the same structure at a size the test suite can afford.
 */

export interface TextDims {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  vocabSize: number;
  ropeTheta: number;
  rmsNormEps: number;
  maxPositionEmbeddings: number;
}

export interface VisionDims {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  patchSize: number;
  imageSize: number;
  layerNormEps: number;
}

export interface SpecialTokenIds {
  /** `<|endoftext|>`, `<|im_start|>`, `<|im_end|>`: SmolLM2's first three ids. */
  endOfText: number;
  imStart: number;
  imEnd: number;
  fakeTokenAroundImage: number;
  image: number;
  globalImage: number;
  /** Ids of `<row_1_col_1>` ... `<row_6_col_6>`, row-major. */
  rowColStart: number;
  endOfUtterance: number;
}

export interface Preset {
  name: PresetName;
  text: TextDims;
  vision: VisionDims;
  scaleFactor: number;
  /** Longest edge the processor resizes to before splitting into tiles. */
  resizeLongestEdge: number;
  tokens: SpecialTokenIds;
  bosTokenId: number;
  eosTokenId: number;
  padTokenId: number;
  /** Standard deviation of the random weights (Hugging Face's initializer_range). */
  initStd: number;
  /**
   * Standard deviation of the decoder's projection weights. With the head tied to the embeddings,
   * layers as weak as initStd leave each position's own embedding dominant, and a random model
   * just repeats its input token; stronger layers make the next token depend on the context.
   */
  decoderStd: number;
  /**
   * Weight of the final RMSNorm. With the head tied to small random embeddings, logits would be
   * near-uniform; this scales them so the top token stands out, as in a trained model.
   */
  headScale: number;
}

export const PRESET_NAMES = ["tiny", "smolvlm-500m"] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

/** Row/col tokens for up to 6x6 tiles (Idefics3's processor names them `<row_i_col_j>`). */
export const MAX_TILE_GRID = 6;

/** Tokens per tile after the pixel shuffle: (image / patch)^2 / scale^2. */
export function imageSeqLen(p: Pick<Preset, "vision" | "scaleFactor">): number {
  const side = p.vision.imageSize / p.vision.patchSize;
  return (side * side) / (p.scaleFactor * p.scaleFactor);
}

const TINY_TEXT_HIDDEN = 64;

export const PRESETS: Record<PresetName, Preset> = {
  tiny: {
    name: "tiny",
    text: {
      hiddenSize: TINY_TEXT_HIDDEN,
      intermediateSize: 128,
      numLayers: 2,
      numHeads: 4,
      numKeyValueHeads: 2,
      headDim: 16,
      // 3 base specials + 256 bytes + 40 image specials + <end_of_utterance>
      vocabSize: 300,
      ropeTheta: 100000,
      rmsNormEps: 1e-5,
      maxPositionEmbeddings: 8192,
    },
    vision: { hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 2, patchSize: 8, imageSize: 64, layerNormEps: 1e-6 },
    scaleFactor: 2,
    resizeLongestEdge: 256,
    tokens: {
      endOfText: 0,
      imStart: 1,
      imEnd: 2,
      fakeTokenAroundImage: 259,
      image: 260,
      globalImage: 261,
      rowColStart: 262,
      endOfUtterance: 299,
    },
    bosTokenId: 0,
    eosTokenId: 299,
    padTokenId: 2,
    initStd: 0.02,
    decoderStd: 3.2 / Math.sqrt(TINY_TEXT_HIDDEN),
    // logits std = headScale * sqrt(hidden) * initStd ≈ 8: a clear top-1 over 300 tokens.
    headScale: 8 / (Math.sqrt(TINY_TEXT_HIDDEN) * 0.02),
  },
  "smolvlm-500m": {
    name: "smolvlm-500m",
    text: {
      hiddenSize: 960,
      intermediateSize: 2560,
      numLayers: 32,
      numHeads: 15,
      numKeyValueHeads: 5,
      headDim: 64,
      vocabSize: 49280,
      ropeTheta: 100000,
      rmsNormEps: 1e-5,
      maxPositionEmbeddings: 8192,
    },
    vision: { hiddenSize: 768, intermediateSize: 3072, numLayers: 12, numHeads: 12, patchSize: 16, imageSize: 512, layerNormEps: 1e-6 },
    scaleFactor: 4,
    resizeLongestEdge: 2048,
    tokens: {
      endOfText: 0,
      imStart: 1,
      imEnd: 2,
      fakeTokenAroundImage: 49189,
      image: 49190,
      globalImage: 49152,
      rowColStart: 49153,
      endOfUtterance: 49279,
    },
    bosTokenId: 0,
    eosTokenId: 49279,
    padTokenId: 2,
    initStd: 0.02,
    decoderStd: 3.2 / Math.sqrt(960),
    headScale: 8 / (Math.sqrt(960) * 0.02),
  },
};
