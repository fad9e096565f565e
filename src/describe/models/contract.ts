import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { type Config, type Dtype, type DtypeConfig, MODEL_MODULES, type ModelModule } from "../../config.js";
import { ModelMissingError } from "../types.js";
import { readOnnxSignature, type TensorSignature } from "./onnx-signature.js";

/**
 * The model-folder contract: which files a SmolVLM/Idefics3 ONNX export must have for the chosen
 * dtypes, and what their tensors look like (smolvlm.md, "The ONNX contract"). Real exports and
 * the synthetic ones pass the same checks, so the engine can rely on them before loading.
 */

/** transformers.js's file suffix per dtype (utils/dtypes.js DEFAULT_DTYPE_SUFFIX_MAPPING). */
export const DTYPE_SUFFIX: Record<Dtype, string> = {
  fp32: "",
  fp16: "_fp16",
  int8: "_int8",
  uint8: "_uint8",
  q4: "_q4",
  q4f16: "_q4f16",
  bnb4: "_bnb4",
  quantized: "_quantized",
};

/** Written next to the model files by `pull` and `synth`: where the files came from. */
export const REVISION_FILE = ".artdesc-revision.json";

export interface RevisionRecord {
  model: string;
  /** The revision asked for (a branch, tag or commit), or the synthetic model's name. */
  revision: string;
  /** The commit the hub resolved it to (its x-repo-commit header), when it said. */
  commit: string | null;
  source: "hub" | "synth";
  /** For synthetic models: the preset and seed that rebuild the same bytes. */
  preset?: string;
  seed?: number;
  /** For synthetic q4/q4f16 files: MatMulNBits' block size and accuracy_level. */
  q4?: { blockSize: number; accuracyLevel: number };
  dtypes: string[];
  /** The files fetched from `commit` (a pending pull: those fetched so far). */
  files: string[];
  createdAt: string;
  /**
   * A pull in progress, or cut short: `files` lists what it has fetched from `commit`. The next
   * pull of the same commit keeps those and fetches the rest; the folder is not loaded meanwhile.
   */
  pending?: boolean;
}

/** Files every model folder needs, whatever the dtype. */
export const REQUIRED_FILES = ["config.json", "preprocessor_config.json", "processor_config.json", "tokenizer.json", "tokenizer_config.json"];
/** Files `pull` fetches when the repository has them; transformers.js reads them if present. */
export const OPTIONAL_FILES = ["generation_config.json", "special_tokens_map.json", "chat_template.json"];

export type ModuleDtypes = Record<ModelModule, Dtype>;

/**
 * Default dtypes per device when MODEL_DTYPE is unset: fp32 on the CPU (onnxruntime's fastest and
 * exact CPU kernels; quantized files are opt-in), fp16 on CUDA and WebGPU.
 */
export function defaultDtypes(device: Config["MODEL_DEVICE"]): ModuleDtypes {
  const d: Dtype = device === "cpu" ? "fp32" : "fp16";
  return { vision_encoder: d, embed_tokens: d, decoder_model_merged: d };
}

export function moduleDtypes(dtype: DtypeConfig | undefined, device: Config["MODEL_DEVICE"]): ModuleDtypes {
  if (dtype === undefined) return defaultDtypes(device);
  if (typeof dtype === "string") return { vision_encoder: dtype, embed_tokens: dtype, decoder_model_merged: dtype };
  return { ...dtype };
}

/** The MODEL_DTYPE / --dtype spelling of module dtypes: one name when they agree. */
export function formatDtypes(d: ModuleDtypes): string {
  const values = MODEL_MODULES.map((m) => d[m]);
  return values.every((v) => v === values[0]) ? values[0]! : MODEL_MODULES.map((m) => `${m}=${d[m]}`).join(",");
}

export const onnxFile = (module: ModelModule, dtype: Dtype) => `onnx/${module}${DTYPE_SUFFIX[dtype]}.onnx`;

/** The files a folder needs for these dtypes (configs first, then the three graphs). */
export function modelFiles(dtypes: ModuleDtypes): string[] {
  return [...REQUIRED_FILES, ...MODEL_MODULES.map((m) => onnxFile(m, dtypes[m]))];
}

/** A graph names external data outside its model folder (an absolute path, or one that climbs out with ".."). */
export class UnsafeModelFileError extends Error {
  override name = "UnsafeModelFileError";
}

/**
 * A file name inside a model folder, as a model's own files may name one (a graph's external data
 * location): relative, "/"-separated, no "." or ".." segment, no backslash or NUL. A downloaded
 * model is someone else's data: `../../.bashrc` there must not make `models pull` write it.
 */
export function isModelFileName(name: string): boolean {
  if (name === "" || name.startsWith("/") || /[\\\0]/.test(name) || /^[a-z]:/i.test(name)) return false;
  return name.split("/").every((seg) => seg !== "" && seg !== "." && seg !== "..");
}

/** Files the graphs name as external weight data (large exports), relative to the folder. */
export function externalDataFiles(dir: string, dtypes: ModuleDtypes): string[] {
  const out: string[] = [];
  for (const m of MODEL_MODULES) {
    const file = onnxFile(m, dtypes[m]);
    if (!existsSync(join(dir, file))) continue;
    for (const loc of readOnnxSignature(join(dir, file)).externalData) {
      const folder = dirname(file);
      const name = folder === "." ? loc : `${folder}/${loc}`;
      if (!isModelFileName(name)) throw new UnsafeModelFileError(`${file} names external data outside the model folder (${JSON.stringify(loc.slice(0, 200))}): refused`);
      out.push(name);
    }
  }
  return out;
}

/**
 * The folder's record of where its files came from, or null: none, or one that cannot be read (a
 * pull cut short while writing it; pull writes it whole or not at all now): the files are then of
 * an unknown revision, and the next pull fetches them all again.
 */
export function readRevision(dir: string): RevisionRecord | null {
  const file = join(dir, REVISION_FILE);
  if (!existsSync(file)) return null;
  try {
    const record = JSON.parse(readFileSync(file, "utf8")) as RevisionRecord | null;
    return record !== null && typeof record === "object" ? record : null;
  } catch {
    return null;
  }
}

/** Writes the folder's revision record whole: to a temporary file, then renamed over the old one. */
export function writeRevision(dir: string, record: RevisionRecord): void {
  const tmp = join(dir, `${REVISION_FILE}.${process.pid}.tmp`);
  writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`);
  renameSync(tmp, join(dir, REVISION_FILE));
}

export interface ResolvedModel {
  /** MODEL_DIR: transformers.js's env.localModelPath. */
  localModelPath: string;
  modelId: string;
  /** MODEL_DIR/MODEL_ID. */
  dir: string;
  /** The commit recorded by `pull` when the hub named one, else the recorded or configured revision. */
  revision: string;
  dtypes: ModuleDtypes;
  device: Config["MODEL_DEVICE"];
  files: string[];
}

export function pullCommand(modelId: string, revision: string, dtypes: ModuleDtypes): string {
  return `artdesc models pull --model ${modelId} --revision ${revision} --dtype ${formatDtypes(dtypes)}`;
}

/**
 * Where the configured model lives and which files it uses. Throws ModelMissingError (naming the
 * folder, the missing files and the pull command) when any is absent; does not read the graphs.
 */
export function resolveModelFiles(config: Pick<Config, "MODEL_DIR" | "MODEL_ID" | "MODEL_REVISION" | "MODEL_DTYPE" | "MODEL_DEVICE">): ResolvedModel {
  const dtypes = moduleDtypes(config.MODEL_DTYPE, config.MODEL_DEVICE);
  const dir = join(config.MODEL_DIR, config.MODEL_ID);
  const files = modelFiles(dtypes);
  const missing = files.filter((f) => !existsSync(join(dir, f)));
  const record = readRevision(dir);
  // A pull that did not finish may have left files of two revisions side by side.
  if (record?.pending) missing.push(`${REVISION_FILE} (a models pull that did not finish)`);
  if (missing.length) throw new ModelMissingError(dir, missing, pullCommand(config.MODEL_ID, config.MODEL_REVISION, dtypes));
  return {
    localModelPath: config.MODEL_DIR,
    modelId: config.MODEL_ID,
    dir,
    revision: record?.commit ?? record?.revision ?? config.MODEL_REVISION,
    dtypes,
    device: config.MODEL_DEVICE,
    files: [...files, ...externalDataFiles(dir, dtypes)],
  };
}

/**
 * The same for an explicit folder (`describe --model DIR`): transformers.js then loads it as
 * localModelPath = its parent, model id = its name. The fetch command follows the folder's record.
 */
export function resolveModelFolder(dir: string, dtypes: ModuleDtypes, device: Config["MODEL_DEVICE"] = "cpu"): ResolvedModel {
  const record = readRevision(dir);
  const files = modelFiles(dtypes);
  const missing = files.filter((f) => !existsSync(join(dir, f)));
  if (missing.length) throw new ModelMissingError(dir, missing, fetchCommandFor(dir, dtypes, record));
  return {
    localModelPath: dirname(dir),
    modelId: basename(dir),
    dir,
    revision: record?.commit ?? record?.revision ?? "unknown",
    dtypes,
    device,
    files: [...files, ...externalDataFiles(dir, dtypes)],
  };
}

function fetchCommandFor(dir: string, dtypes: ModuleDtypes, record: RevisionRecord | null): string {
  if (record?.source === "synth" && record.preset) {
    return `artdesc models synth --preset ${record.preset} --out ${dir} --dtype ${formatDtypes(dtypes)} --seed ${record.seed ?? 1}`;
  }
  if (record?.source === "hub") {
    const modelDir = dirname(dirname(dir));
    return `MODEL_DIR=${modelDir} ${pullCommand(record.model, record.commit ?? record.revision, dtypes)}`;
  }
  return `MODEL_DIR=<folder> ${pullCommand("<owner/name>", "main", dtypes)} (the model lands in <folder>/<owner/name>)`;
}

/** A folder whose files are present but break the contract. */
export class ModelContractError extends Error {
  override name = "ModelContractError";
  constructor(
    readonly folder: string,
    readonly problems: string[],
  ) {
    super(`Model in ${folder} does not match the SmolVLM ONNX contract:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  }
}

/** Throws ModelMissingError or ModelContractError; returns quietly when the folder is usable. */
export function assertModelFolder(dir: string, dtypes: ModuleDtypes, pull: string): void {
  const missing = modelFiles(dtypes).filter((f) => !existsSync(join(dir, f)));
  if (missing.length) throw new ModelMissingError(dir, missing, pull);
  const problems = checkModelFolder(dir, dtypes);
  if (problems.length) throw new ModelContractError(dir, problems);
}

interface Dims {
  textHidden: number;
  layers: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
}

interface TensorRule {
  name: string;
  /** "float": the dtype's float type; "pixel": float32 or the dtype's float type. */
  type: "float" | "pixel" | "int64" | "bool";
  rank: number;
  /** Dimensions that must be symbolic. */
  dynamic?: number[];
  /** Dimensions that must be this exact symbolic name (transformers.js fills `batch_size`). */
  named?: Record<number, string>;
  /** Dimensions that must be this fixed number. */
  fixed?: Record<number, number>;
  /** Dimensions that, when fixed, must be this number (exports may leave them symbolic). */
  size?: Record<number, number>;
}

const floatType = (d: Dtype) => (d === "fp16" || d === "q4f16" ? "float16" : "float32");

function rules(module: ModelModule, d: Dims): { inputs: TensorRule[]; outputs: TensorRule[] } {
  const kv = (name: string, pastDim: number): TensorRule => ({
    name,
    type: "float",
    rank: 4,
    named: { 0: "batch_size" },
    dynamic: [pastDim],
    fixed: { 1: d.kvHeads, 3: d.headDim },
  });
  const layers = Array.from({ length: d.layers }, (_, i) => i);
  switch (module) {
    case "vision_encoder":
      return {
        inputs: [
          { name: "pixel_values", type: "pixel", rank: 5, dynamic: [0, 1, 3, 4], size: { 2: 3 } },
          { name: "pixel_attention_mask", type: "bool", rank: 4, dynamic: [0, 1, 2, 3] },
        ],
        outputs: [{ name: "image_features", type: "float", rank: 3, dynamic: [0], size: { 2: d.textHidden } }],
      };
    case "embed_tokens":
      return {
        inputs: [{ name: "input_ids", type: "int64", rank: 2, dynamic: [0, 1] }],
        outputs: [{ name: "inputs_embeds", type: "float", rank: 3, dynamic: [0, 1], size: { 2: d.textHidden } }],
      };
    case "decoder_model_merged":
      return {
        inputs: [
          { name: "inputs_embeds", type: "float", rank: 3, named: { 0: "batch_size" }, dynamic: [1], size: { 2: d.textHidden } },
          { name: "attention_mask", type: "int64", rank: 2, named: { 0: "batch_size" }, dynamic: [1] },
          { name: "position_ids", type: "int64", rank: 2, dynamic: [0, 1] },
          ...layers.flatMap((i) => [kv(`past_key_values.${i}.key`, 2), kv(`past_key_values.${i}.value`, 2)]),
        ],
        outputs: [
          { name: "logits", type: "float", rank: 3, dynamic: [0, 1], size: { 2: d.vocab } },
          ...layers.flatMap((i) => [kv(`present.${i}.key`, 2), kv(`present.${i}.value`, 2)]).map((r) => ({ ...r, named: {}, dynamic: [0, 2] })),
        ],
      };
  }
}

function checkTensor(file: string, rule: TensorRule, actual: TensorSignature | undefined, dtype: Dtype): string[] {
  if (!actual) return [`${file}: no tensor named "${rule.name}"`];
  const where = `${file}: ${rule.name}`;
  const problems: string[] = [];
  const float = floatType(dtype);
  const allowed = rule.type === "float" ? [float] : rule.type === "pixel" ? ["float32", float] : [rule.type];
  if (!allowed.includes(actual.type)) problems.push(`${where} is ${actual.type}, expected ${allowed.join(" or ")}`);
  if (actual.dims.length !== rule.rank) {
    problems.push(`${where} has rank ${actual.dims.length} [${actual.dims.join(", ")}], expected ${rule.rank}`);
    return problems;
  }
  for (const i of rule.dynamic ?? []) {
    if (typeof actual.dims[i] === "number") problems.push(`${where} dimension ${i} is fixed at ${actual.dims[i]}, expected dynamic`);
  }
  for (const [i, name] of Object.entries(rule.named ?? {})) {
    if (actual.dims[Number(i)] !== name) problems.push(`${where} dimension ${i} is ${JSON.stringify(actual.dims[Number(i)])}, expected the symbolic "${name}"`);
  }
  for (const [i, n] of Object.entries(rule.fixed ?? {})) {
    if (actual.dims[Number(i)] !== n) problems.push(`${where} dimension ${i} is ${JSON.stringify(actual.dims[Number(i)])}, expected the fixed ${n}`);
  }
  for (const [i, n] of Object.entries(rule.size ?? {})) {
    const dim = actual.dims[Number(i)];
    if (typeof dim === "number" && dim !== n) problems.push(`${where} dimension ${i} is ${dim}, expected ${n}`);
  }
  return problems;
}

function readJson(dir: string, file: string, problems: string[]): Record<string, unknown> | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, file), "utf8")) as Record<string, unknown>;
  } catch (err) {
    problems.push(`${file}: ${existsSync(join(dir, file)) ? `not valid JSON (${(err as Error).message})` : "missing"}`);
    return undefined;
  }
}

const isInt = (v: unknown): v is number => Number.isInteger(v);

/**
 * Checks a model folder against the contract for these dtypes. Returns every problem found
 * (empty: the folder is usable): missing files, config keys, tokenizer specials, and per graph
 * the input/output names, element types, ranks and which dimensions are dynamic.
 */
export function checkModelFolder(dir: string, dtypes: ModuleDtypes | Dtype): string[] {
  const d: ModuleDtypes = typeof dtypes === "string" ? moduleDtypes(dtypes, "cpu") : dtypes;
  const problems: string[] = [];
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return [`${dir}: no such folder`];
  for (const f of modelFiles(d)) if (!existsSync(join(dir, f))) problems.push(`${f}: missing`);

  const config = readJson(dir, "config.json", []);
  const dims = config ? configProblems(config, problems) : undefined;
  if (!config && existsSync(join(dir, "config.json"))) readJson(dir, "config.json", problems);

  const processor = existsSync(join(dir, "processor_config.json")) ? readJson(dir, "processor_config.json", problems) : undefined;
  if (processor && config) {
    const vision = config.vision_config as Record<string, unknown> | undefined;
    const scale = config.scale_factor;
    if (!isInt(processor.image_seq_len)) problems.push("processor_config.json: image_seq_len missing");
    else if (vision && isInt(vision.image_size) && isInt(vision.patch_size) && isInt(scale)) {
      const expected = (vision.image_size / vision.patch_size) ** 2 / scale ** 2;
      if (processor.image_seq_len !== expected) {
        problems.push(`processor_config.json: image_seq_len ${processor.image_seq_len} != (image_size/patch_size)^2/scale_factor^2 = ${expected}`);
      }
    }
  }
  const pre = existsSync(join(dir, "preprocessor_config.json")) ? readJson(dir, "preprocessor_config.json", problems) : undefined;
  if (pre) {
    const maxSize = pre.max_image_size as { longest_edge?: unknown } | undefined;
    if (!isInt(maxSize?.longest_edge)) problems.push("preprocessor_config.json: max_image_size.longest_edge missing");
    const vision = config?.vision_config as Record<string, unknown> | undefined;
    if (isInt(maxSize?.longest_edge) && isInt(vision?.image_size) && maxSize.longest_edge !== vision.image_size) {
      problems.push(`preprocessor_config.json: max_image_size.longest_edge ${maxSize.longest_edge} != vision_config.image_size ${vision.image_size}`);
    }
  }
  if (existsSync(join(dir, "tokenizer.json"))) tokenizerProblems(dir, config, problems);
  const tokConfig = existsSync(join(dir, "tokenizer_config.json")) ? readJson(dir, "tokenizer_config.json", problems) : undefined;
  if (tokConfig && typeof tokConfig.chat_template !== "string" && !existsSync(join(dir, "chat_template.json"))) {
    problems.push("tokenizer_config.json: no chat_template (nor chat_template.json)");
  }

  if (!dims) return problems;
  for (const m of MODEL_MODULES) {
    const file = onnxFile(m, d[m]);
    if (!existsSync(join(dir, file))) continue;
    let sig;
    try {
      sig = readOnnxSignature(join(dir, file));
    } catch (err) {
      problems.push(`${file}: unreadable (${(err as Error).message})`);
      continue;
    }
    const r = rules(m, dims);
    for (const rule of r.inputs) problems.push(...checkTensor(file, rule, sig.inputs.find((t) => t.name === rule.name), d[m]));
    for (const rule of r.outputs) problems.push(...checkTensor(file, rule, sig.outputs.find((t) => t.name === rule.name), d[m]));
    const known = new Set(r.inputs.map((x) => x.name));
    for (const extra of sig.inputs.filter((t) => !known.has(t.name))) problems.push(`${file}: unexpected input "${extra.name}"`);
    for (const loc of sig.externalData) {
      if (!existsSync(join(dir, dirname(file), loc))) problems.push(`${file}: external data file ${join(dirname(file), loc)} missing`);
    }
  }
  return problems;
}

function configProblems(config: Record<string, unknown>, problems: string[]): Dims | undefined {
  const bad = (msg: string) => problems.push(`config.json: ${msg}`);
  if (config.model_type !== "idefics3" && config.model_type !== "smolvlm") bad(`model_type ${JSON.stringify(config.model_type)}, expected "idefics3" or "smolvlm"`);
  const imageToken = config.image_token_id ?? config.image_token_index;
  if (!isInt(imageToken)) bad("image_token_id missing");
  if (!isInt(config.scale_factor)) bad("scale_factor missing");
  const text = config.text_config as Record<string, unknown> | undefined;
  const vision = config.vision_config as Record<string, unknown> | undefined;
  if (!text || typeof text !== "object") {
    bad("text_config missing");
    return undefined;
  }
  if (!vision || typeof vision !== "object") bad("vision_config missing");
  else for (const k of ["hidden_size", "patch_size", "image_size"]) if (!isInt(vision[k])) bad(`vision_config.${k} missing`);
  for (const k of ["hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "vocab_size"]) {
    if (!isInt(text[k])) bad(`text_config.${k} missing`);
  }
  const heads = text.num_attention_heads;
  const hidden = text.hidden_size;
  const headDim = isInt(text.head_dim) ? text.head_dim : isInt(hidden) && isInt(heads) ? hidden / heads : undefined;
  if (!isInt(hidden) || !isInt(text.num_hidden_layers) || !isInt(text.num_key_value_heads) || !isInt(text.vocab_size) || !isInt(headDim)) return undefined;
  return { textHidden: hidden, layers: text.num_hidden_layers, kvHeads: text.num_key_value_heads, headDim, vocab: text.vocab_size };
}

const IMAGE_SPECIALS = ["<fake_token_around_image>", "<image>", "<global-img>", "<end_of_utterance>"];

function tokenizerProblems(dir: string, config: Record<string, unknown> | undefined, problems: string[]): void {
  const tok = readJson(dir, "tokenizer.json", problems) as { added_tokens?: { id: number; content: string }[] } | undefined;
  if (!tok) return;
  const ids = new Map((tok.added_tokens ?? []).map((t) => [t.content, t.id]));
  for (const s of IMAGE_SPECIALS) if (!ids.has(s)) problems.push(`tokenizer.json: special token ${s} missing`);
  if (!ids.has("<row_1_col_1>")) problems.push("tokenizer.json: tile tokens <row_i_col_j> missing");
  const imageToken = config?.image_token_id ?? config?.image_token_index;
  if (ids.has("<image>") && isInt(imageToken) && ids.get("<image>") !== imageToken) {
    problems.push(`tokenizer.json: <image> is id ${ids.get("<image>")}, config.json says image_token_id ${imageToken}`);
  }
}
