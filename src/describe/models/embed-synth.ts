import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_EMBED_MODEL_DTYPE } from "../../config.js";
import { embedOnnxFile } from "../../embed/model-files.js";
import { REVISION_FILE, type RevisionRecord } from "./contract.js";
import { elemType, GraphBuilder, type Quantization, uniformStream, writeOnnxModel } from "./onnx-builder.js";
import { DEFAULT_Q4_ACCURACY_LEVEL, moduleStorage } from "./synth.js";

/**
 * Synthetic sentence-embedding models in the file layout of a Hugging Face ONNX export of a BERT
 * encoder (Xenova/multilingual-e5-small: config.json, tokenizer.json, tokenizer_config.json,
 * special_tokens_map.json, onnx/model.onnx with inputs input_ids, attention_mask, token_type_ids
 * and output last_hidden_state). transformers.js's `feature-extraction` pipeline loads them as it
 * loads the real one.
 *
 * The word-embedding table is designed, not random: the words of each SEMANTIC_GROUPS entry share
 * one direction (dog, hound, cur, perro ...), function words and the e5 prefixes ("query:",
 * "passage:") embed to zero, other whole words get their own random direction, and the letter
 * pieces a WordPiece tokenizer falls back to get short random vectors. With no encoder layers
 * (embed-tiny) the mean-pooled output is the mean of the table rows, so two texts that share a
 * group, and no word, land close together: a test can then prove that search finds by meaning
 * through the real tokenizer, the real ONNX session and the real ranking code.
 */

export const EMBED_PRESET_NAMES = ["embed-tiny", "embed-e5-small"] as const;
export type EmbedPresetName = (typeof EMBED_PRESET_NAMES)[number];

export interface EmbedPreset {
  name: EmbedPresetName;
  hiddenSize: number;
  /** BERT encoder layers (post-LayerNorm, as BertLayer); 0 keeps the table's geometry exactly. */
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  maxPositionEmbeddings: number;
  /** embeddings.LayerNorm; off in the semantic preset (it would give zero rows unit length). */
  embeddingLayerNorm: boolean;
  /** Standard deviation of the random encoder weights. */
  initStd: number;
  /**
   * "semantic": the designed test words and letters only (a word it does not know is spelled letter
   * by letter). "subword": those plus common English and Spanish words and the syllable and number
   * pieces a trained subword vocabulary splits rarer words into, so texts are about as many tokens
   * as multilingual-e5-small's sentencepiece makes of them (compute grows with tokens).
   */
  vocabulary: "semantic" | "subword";
}

export const EMBED_PRESETS: Record<EmbedPresetName, EmbedPreset> = {
  // The semantic test model: the suite loads it in milliseconds.
  "embed-tiny": {
    name: "embed-tiny",
    hiddenSize: 128,
    numLayers: 0,
    numHeads: 2,
    intermediateSize: 256,
    maxPositionEmbeddings: 512,
    embeddingLayerNorm: false,
    initStd: 0.02,
    vocabulary: "semantic",
  },
  // multilingual-e5-small's dimensions (384 wide, 12 layers of 12 heads, 1536 inner): its compute
  // per token, for benchmarks. Its vocabulary is this file's (about 2,700 words and pieces, not
  // 250,002: a Gather costs the same whatever the table's height), made to cut texts into about
  // as many tokens as the real one does.
  "embed-e5-small": {
    name: "embed-e5-small",
    hiddenSize: 384,
    numLayers: 12,
    numHeads: 12,
    intermediateSize: 1536,
    maxPositionEmbeddings: 512,
    embeddingLayerNorm: true,
    initStd: 0.02,
    vocabulary: "subword",
  },
};

export const isEmbedPreset = (name: string): name is EmbedPresetName => (EMBED_PRESET_NAMES as readonly string[]).includes(name);

/** Words that embed together, English and Spanish (accents are stripped by the tokenizer's normalizer). */
export const SEMANTIC_GROUPS: Record<string, readonly string[]> = {
  dog: ["dog", "dogs", "hound", "hounds", "cur", "curs", "puppy", "mastiff", "perro", "perros", "perrito"],
  execution: ["execution", "executions", "executed", "firing", "squad", "shooting", "shot", "fusilamiento", "fusilamientos", "fusilados", "rifles"],
  sea: ["sea", "ocean", "waves", "shore", "coast", "mar", "oceano", "olas", "costa"],
  horse: ["horse", "horses", "steed", "mare", "stallion", "caballo", "caballos", "jinete", "rider"],
  woman: ["woman", "women", "lady", "ladies", "mujer", "mujeres", "dama", "maja"],
  child: ["child", "children", "boy", "girl", "infant", "baby", "nino", "nina", "ninos"],
  death: ["death", "skull", "corpse", "dead", "muerte", "muerto", "calavera"],
  church: ["church", "cathedral", "chapel", "altar", "iglesia", "catedral"],
  king: ["king", "queen", "monarch", "throne", "rey", "reina", "prince", "principe"],
  food: ["bread", "fruit", "apple", "grapes", "pan", "fruta", "manzana", "uvas"],
};

/** Words that carry no meaning here (and the e5 prefixes): they embed to zero. */
export const NEUTRAL_WORDS = [
  "query", "passage", "the", "a", "an", "of", "and", "or", "in", "on", "at", "by", "with", "to", "from", "is", "are", "was",
  "his", "her", "its", "their", "this", "that", "it", "el", "la", "los", "las", "de", "del", "y", "o", "en", "un", "una",
  "con", "por", "para", "al", "se", "su", "sus", "es",
] as const;

/** Other whole words, each its own direction. */
const OTHER_WORDS = (
  "book reading donkey ship boat fire sleeps sleeping sits sitting stands standing portrait landscape tree trees sky night " +
  "light dark red blue green yellow black white gold painting drawing print etching man men soldier soldiers hill mountain " +
  "river city street house room table chair window door flowers flower garden field cloud clouds sun moon star bird birds " +
  "cat cats cow sheep goat bull bullfight hat dress coat face hands eyes head body figure figures group crowd background " +
  "foreground left right large small old young two three behind front under over holding wearing looking dancing " +
  "music guitar war battle sword saint virgin christ angel angels god witch witches sabbath giant colossus saturn " +
  "asnografia caprichos desastres guerra retrato paisaje libro leyendo burro barco fuego noche luz cielo arbol hombre"
).split(" ");

/**
 * Common English and Spanish words, each one token in multilingual-e5-small's sentencepiece
 * vocabulary (as in any trained subword vocabulary of 250,000 pieces), for the "subword" vocabulary.
 */
const COMMON_WORDS = (
  "who which what when where why how not no all some any each every other another such only also very more most much many " +
  "few both but if then than so as as into onto upon about above across after against along among around before below " +
  "beneath beside between beyond down during inside near off out outside through toward towards up within without while " +
  "one two three four five six seven eight nine ten first second third last next has have had be been being do does did " +
  "will would can could may might shall should must he she they we you i me him them us my our your who whom whose " +
  "there here now still just even again once never always often almost nearly " +
  "owl giant priest monk beggar fan letter curtain wall floor road bridge tower day shadow smoke water grey gray brown " +
  "bright pale lies holds reads writes looks walks rides eats drinks plays prays fights waits " +
  "stand sit lie hold read write look walk ride eat drink play pray fight wait sleep see seen show shows shown " +
  "painted paints depicts depicted scene view side top bottom middle centre center corner edge part half " +
  "people person family mother father son daughter friend couple crowd lord saintly holy " +
  "oil canvas panel paper wood ink chalk pencil watercolour watercolor fresco engraving lithograph sketch study copy " +
  "museum collection artist painter work works century year years style school " +
  "blanco negro rojo azul verde amarillo oro mano manos cara ojos cabeza cuerpo figura grupo fondo izquierda derecha " +
  "grande pequeno viejo joven dos tres detras delante sobre bajo entre hacia desde hasta sin tras ante " +
  "santo santa virgen cristo angel dios bruja gigante perro caballo mujer hombre nino rey reina iglesia muerte"
).split(" ");
const SYLLABLE_PIECES = [..."bcdfghjklmnpqrstvwxyz"].flatMap((c) => [..."aeiou"].map((v) => c + v));
const NUMBER_PIECES = Array.from({ length: 1000 }, (_, i) => String(i));

const SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] as const;
const PUNCTUATION = [..."!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~¡¿«»…"];
const LETTERS = [..."abcdefghijklmnopqrstuvwxyz0123456789"];

export interface EmbedVocabulary {
  tokens: string[];
  /** What each token's row holds. */
  role: ("neutral" | "piece" | "word" | { group: string })[];
}

export function embedVocabulary(kind: EmbedPreset["vocabulary"] = "semantic"): EmbedVocabulary {
  const tokens: string[] = [];
  const role: EmbedVocabulary["role"] = [];
  const seen = new Set<string>();
  const add = (t: string, r: EmbedVocabulary["role"][number]) => {
    if (seen.has(t)) return;
    seen.add(t);
    tokens.push(t);
    role.push(r);
  };
  for (const s of SPECIALS) add(s, "neutral");
  for (const p of PUNCTUATION) add(p, "neutral");
  for (const w of NEUTRAL_WORDS) add(w, "neutral");
  for (const [group, words] of Object.entries(SEMANTIC_GROUPS)) for (const w of words) add(w, { group });
  for (const w of OTHER_WORDS) add(w, "word");
  // WordPiece falls back to letters: every ASCII word has a path, so nothing becomes [UNK].
  for (const l of LETTERS) add(l, "piece");
  for (const l of LETTERS) add(`##${l}`, "piece");
  if (kind === "subword") {
    // Appended after the semantic vocabulary, so its ids and rows are the same in both.
    for (const w of COMMON_WORDS) add(w, "word");
    for (const p of [...SYLLABLE_PIECES, ...NUMBER_PIECES]) {
      add(p, "piece");
      add(`##${p}`, "piece");
    }
  }
  return { tokens, role };
}

/** mulberry32 with Box-Muller: a seeded normal stream. */
function normals(seed: number): () => number {
  const uniform = uniformStream(seed);
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** Relative length of a letter piece's row: unknown words add a little noise, not a meaning. */
const PIECE_NORM = 0.25;
/** How far a group's words sit from the group's direction (each also gets a little of its own). */
const GROUP_SPREAD = 0.15;

/** The designed word-embedding table, [vocab, hidden] row-major. */
export function embeddingTable(vocab: EmbedVocabulary, hidden: number, seed: number): Float32Array {
  const next = normals(seed);
  const unit = () => {
    const v = Float64Array.from({ length: hidden }, next);
    const n = Math.hypot(...v);
    return v.map((x) => x / n);
  };
  const groups = new Map(Object.keys(SEMANTIC_GROUPS).map((g) => [g, unit()]));
  const table = new Float32Array(vocab.tokens.length * hidden);
  vocab.role.forEach((r, i) => {
    let row: Float64Array | null = null;
    if (r === "word") row = unit();
    else if (r === "piece") row = unit().map((x) => x * PIECE_NORM);
    else if (typeof r === "object") {
      const g = groups.get(r.group)!;
      const own = unit();
      row = g.map((x, j) => x + GROUP_SPREAD * own[j]!);
    }
    if (row) table.set(row, i * hidden);
  });
  return table;
}

const F32 = elemType("float32");

function layerNorm(g: GraphBuilder, x: string, name: string, dim: number): string {
  const scale = g.weight(`${name}.weight`, [dim], { constant: 1 });
  const bias = g.weight(`${name}.bias`, [dim], { constant: 0 });
  return g.op("LayerNormalization", [x, scale, bias], { axis: -1, epsilon: { float: 1e-12 } });
}

function linear(g: GraphBuilder, x: string, name: string, inDim: number, outDim: number, std: number): string {
  const y = g.matmul(x, `${name}.weight`, inDim, outDim, { normal: std });
  return g.op("Add", [y, g.weight(`${name}.bias`, [outDim], { constant: 0 })]);
}

/**
 * GELU as BERT's "gelu": 0.5x(1 + erf(x / sqrt 2)), written node for node as torch.onnx exports
 * F.gelu (Div by sqrt 2, Erf, Add 1, Mul x, Mul 0.5), so onnxruntime fuses it into one Gelu node as it
 * would in an exported model (a Mul by 1/sqrt 2 is not fused: 48 more nodes in e5-small's 12 layers,
 * though no slower on a CPU: 1.9 ms a query either way, measured 2026-12-03).
 */
function gelu(g: GraphBuilder, x: string): string {
  const erf = g.op("Erf", [g.op("Div", [x, g.scalar(Math.SQRT2)])]);
  return g.op("Mul", [g.op("Mul", [x, g.op("Add", [erf, g.scalar(1)])]), g.scalar(0.5)]);
}

/** BertModel: embeddings (word + position + token type), then numLayers BertLayers; emits last_hidden_state. */
export function bertGraph(p: EmbedPreset, table: Float32Array, vocabSize: number, quant: Quantization = { kind: "none" }): GraphBuilder {
  const g = new GraphBuilder("bert", "float32", quant);
  const h = p.hiddenSize;
  const ids = g.input("input_ids", "int64", ["batch_size", "sequence_length"]);
  const mask = g.input("attention_mask", "int64", ["batch_size", "sequence_length"]);
  const types = g.input("token_type_ids", "int64", ["batch_size", "sequence_length"]);

  const words = g.op("Gather", [g.floats([...table], [vocabSize, h]), ids], { axis: 0 });
  const seqLen = g.op("Gather", [g.op("Shape", [ids]), g.ints([1], [])], { axis: 0 });
  const positions = g.op("Range", [g.ints([0], []), seqLen, g.ints([1], [])]);
  const positionInit = p.numLayers === 0 ? { constant: 0 } : { normal: p.initStd };
  const pos = g.op("Gather", [g.weight("embeddings.position_embeddings.weight", [p.maxPositionEmbeddings, h], positionInit), positions], { axis: 0 });
  const type = g.op("Gather", [g.weight("embeddings.token_type_embeddings.weight", [2, h], positionInit), types], { axis: 0 });
  let x = g.op("Add", [g.op("Add", [words, pos]), type]);
  if (p.embeddingLayerNorm) x = layerNorm(g, x, "embeddings.LayerNorm", h);

  if (p.numLayers > 0) {
    const headDim = h / p.numHeads;
    // BertModel's extended attention mask: 0 where attended, a large negative where padded.
    const keep = g.op("Cast", [g.op("Unsqueeze", [mask, g.ints([1, 2])])], { to: F32 });
    const bias = g.op("Mul", [g.op("Sub", [g.scalar(1), keep]), g.scalar(-1e4)]);
    const heads = (t: string) => g.op("Transpose", [g.op("Reshape", [t, g.ints([0, -1, p.numHeads, headDim])])], { perm: [0, 2, 1, 3] });
    for (let i = 0; i < p.numLayers; i++) {
      const pre = `encoder.layer.${i}`;
      const q = heads(linear(g, x, `${pre}.attention.self.query`, h, h, p.initStd));
      const k = heads(linear(g, x, `${pre}.attention.self.key`, h, h, p.initStd));
      const v = heads(linear(g, x, `${pre}.attention.self.value`, h, h, p.initStd));
      const scores = g.op("Mul", [g.op("MatMul", [q, g.op("Transpose", [k], { perm: [0, 1, 3, 2] })]), g.scalar(1 / Math.sqrt(headDim))]);
      const probs = g.op("Softmax", [g.op("Add", [scores, bias])], { axis: -1 });
      const ctx = g.op("Reshape", [g.op("Transpose", [g.op("MatMul", [probs, v])], { perm: [0, 2, 1, 3] }), g.ints([0, -1, h])]);
      x = layerNorm(g, g.op("Add", [x, linear(g, ctx, `${pre}.attention.output.dense`, h, h, p.initStd)]), `${pre}.attention.output.LayerNorm`, h);
      const inner = gelu(g, linear(g, x, `${pre}.intermediate.dense`, h, p.intermediateSize, p.initStd));
      x = layerNorm(g, g.op("Add", [x, linear(g, inner, `${pre}.output.dense`, p.intermediateSize, h, p.initStd)]), `${pre}.output.LayerNorm`, h);
    }
  }
  g.emit("last_hidden_state", x, ["batch_size", "sequence_length", h]);
  return g;
}

/** tokenizer.json and tokenizer_config.json of a lower-casing, accent-stripping BERT WordPiece tokenizer. */
export function bertTokenizerFiles(vocab: EmbedVocabulary, maxLength: number) {
  const id = (t: string) => vocab.tokens.indexOf(t);
  const special = (t: string) => ({ id: id(t), content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const tokenizer = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: SPECIALS.map(special),
    normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "[SEP]", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: "[CLS]", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "[SEP]", type_id: 0 } },
        { Sequence: { id: "B", type_id: 1 } },
        { SpecialToken: { id: "[SEP]", type_id: 1 } },
      ],
      special_tokens: Object.fromEntries(["[CLS]", "[SEP]"].map((t) => [t, { id: t, ids: [id(t)], tokens: [t] }])),
    },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: {
      type: "WordPiece",
      unk_token: "[UNK]",
      continuing_subword_prefix: "##",
      max_input_chars_per_word: 100,
      vocab: Object.fromEntries(vocab.tokens.map((t, i) => [t, i])),
    },
  };
  const tokenizerConfig = {
    added_tokens_decoder: Object.fromEntries(SPECIALS.map((t) => { const { id: i, ...rest } = special(t); return [String(i), rest]; })),
    clean_up_tokenization_spaces: true,
    cls_token: "[CLS]",
    do_lower_case: true,
    mask_token: "[MASK]",
    model_max_length: maxLength,
    pad_token: "[PAD]",
    sep_token: "[SEP]",
    strip_accents: null,
    tokenize_chinese_chars: true,
    tokenizer_class: "BertTokenizer",
    unk_token: "[UNK]",
  };
  return { tokenizer, tokenizerConfig };
}

/**
 * The dtypes an embedding preset is written in, with transformers.js's file names
 * (onnx/model.onnx, model_quantized.onnx ...), quantised as the VLM's text decoder is (moduleStorage):
 * `quantized`/`int8`/`uint8` as quantize_dynamic (MatMulInteger on activations quantised at run
 * time), `q4` as MatMulNBits. The designed word table stays float32 in every file, so the groups of
 * words that embed together do so whatever the dtype. fp16 is not written (its float16 outputs are
 * not what the feature-extraction pipeline's pooling reads here).
 */
export const EMBED_SYNTH_DTYPES = ["fp32", "quantized", "int8", "uint8", "q4"] as const;
export type EmbedSynthDtype = (typeof EMBED_SYNTH_DTYPES)[number];
/** What synth writes unless told: fp32 and the file the service loads by default (EMBED_MODEL_DTYPE). */
export const DEFAULT_EMBED_SYNTH_DTYPES: EmbedSynthDtype[] = [...new Set<EmbedSynthDtype>(["fp32", DEFAULT_EMBED_MODEL_DTYPE])];

export interface EmbedSynthOptions {
  preset: EmbedPresetName;
  outDir: string;
  /** One dtype or several; each adds its onnx/model*.onnx to the same folder (default DEFAULT_EMBED_SYNTH_DTYPES). */
  dtype?: EmbedSynthDtype | EmbedSynthDtype[];
  /** Encoder layers instead of the preset's (tests: the same width, fewer layers, quicker to write). */
  numLayers?: number;
  seed?: number;
  onFile?: (file: string, bytes: number, ms: number) => void;
}

/** Writes an embedding model folder (one onnx/model*.onnx per dtype), like `synthModel` does for the VLM. */
export function synthEmbedModel(options: EmbedSynthOptions): { dir: string; files: { file: string; bytes: number }[]; ms: number } {
  if (!isEmbedPreset(options.preset)) throw new Error(`unknown embedding preset "${options.preset}"; use one of ${EMBED_PRESET_NAMES.join(", ")}`);
  const p = { ...EMBED_PRESETS[options.preset], ...(options.numLayers !== undefined ? { numLayers: options.numLayers } : {}) };
  const seed = options.seed ?? 1;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`seed must be an integer in 0..2^32-1, got ${seed}`);
  const started = performance.now();
  const dir = options.outDir;
  mkdirSync(join(dir, "onnx"), { recursive: true });
  const files: { file: string; bytes: number }[] = [];
  const json = (file: string, value: unknown) => {
    const t = performance.now();
    const text = `${JSON.stringify(value, null, 2)}\n`;
    writeFileSync(join(dir, file), text);
    files.push({ file, bytes: Buffer.byteLength(text) });
    options.onFile?.(file, Buffer.byteLength(text), performance.now() - t);
  };
  const vocab = embedVocabulary(p.vocabulary);
  const { tokenizer, tokenizerConfig } = bertTokenizerFiles(vocab, p.maxPositionEmbeddings);
  json("config.json", {
    architectures: ["BertModel"],
    model_type: "bert",
    hidden_size: p.hiddenSize,
    num_hidden_layers: p.numLayers,
    num_attention_heads: p.numHeads,
    intermediate_size: p.intermediateSize,
    hidden_act: "gelu",
    max_position_embeddings: p.maxPositionEmbeddings,
    type_vocab_size: 2,
    vocab_size: vocab.tokens.length,
    layer_norm_eps: 1e-12,
    pad_token_id: 0,
    torch_dtype: "float32",
  });
  json("tokenizer.json", tokenizer);
  json("tokenizer_config.json", tokenizerConfig);
  json("special_tokens_map.json", { cls_token: "[CLS]", mask_token: "[MASK]", pad_token: "[PAD]", sep_token: "[SEP]", unk_token: "[UNK]" });
  const dtypes = [...new Set([options.dtype ?? DEFAULT_EMBED_SYNTH_DTYPES].flat())];
  const bad = dtypes.filter((d) => !(EMBED_SYNTH_DTYPES as readonly string[]).includes(d));
  if (bad.length || !dtypes.length) throw new Error(`the embedding presets are written in ${EMBED_SYNTH_DTYPES.join(", ")}; not ${bad.join(", ")}`);
  const table = embeddingTable(vocab, p.hiddenSize, seed);
  for (const dtype of dtypes) {
    const file = embedOnnxFile(dtype);
    const t = performance.now();
    // An encoder's MatMuls are stored as the VLM decoder's are (int8 weights, not the vision encoder's uint8 for Conv).
    const { quant } = moduleStorage(dtype, "decoder_model_merged", DEFAULT_Q4_ACCURACY_LEVEL);
    const bytes = writeOnnxModel(join(dir, file), bertGraph(p, table, vocab.tokens.length, quant), {
      seed,
      opset: 17,
      producer: `artdesc synth ${p.name}`,
    });
    files.push({ file, bytes });
    options.onFile?.(file, bytes, performance.now() - t);
  }
  const record: RevisionRecord = {
    model: `artdesc/synth-${p.name}`,
    revision: `synth-${p.name}-seed${seed}`,
    commit: null,
    source: "synth",
    preset: p.name,
    seed,
    dtypes,
    files: files.map((f) => f.file),
    createdAt: new Date().toISOString(),
  };
  json(REVISION_FILE, record);
  return { dir, files, ms: performance.now() - started };
}
