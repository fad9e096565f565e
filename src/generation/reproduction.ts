import type { Description } from "../generated/prisma/client.js";
import { type GenerationParams, parseEarlyStopping, checkParams, EARLY_STOPPING_TEXTS, type EarlyStoppingText, ParamOutOfRangeError } from "./params.js";

/**
 * What a model description stores so that it can be run again (`artdesc describe --like`), and
 * how it is read back. Pure: no engine, no database (the API layer reads it too).
 */

/** One model file: its path in the model folder and its sha256. */
export interface ModelFileHash {
  path: string;
  sha256: string;
}

/** The reproduction data of a description, as GraphQL shows it (`Description.reproduction`). */
export interface Reproduction {
  /** The chat-templated prompt exactly as it went to the processor (context and `<image>` placeholder included). */
  instruction: string | null;
  cleanMarkdown: boolean | null;
  /** "greedy" or "beam". */
  decoding: string | null;
  batchSize: number | null;
  imageHash: string | null;
  modelFiles: ModelFileHash[];
}

/** `Description.modelFiles`: a JSON object path -> sha256, keys sorted. */
export function encodeModelFiles(files: readonly ModelFileHash[]): string {
  return JSON.stringify(Object.fromEntries([...files].sort((a, b) => a.path.localeCompare(b.path)).map((f) => [f.path, f.sha256])));
}

/** Reads `Description.dtypes` (module -> dtype) as pairs; absent or unreadable reads as none. */
export function decodeDtypes(json: string | null | undefined): { module: string; dtype: string }[] {
  if (!json) return [];
  try {
    const map = JSON.parse(json) as Record<string, unknown>;
    return Object.entries(map).flatMap(([module, dtype]) => (typeof dtype === "string" ? [{ module, dtype }] : []));
  } catch {
    return [];
  }
}

/** Reads `Description.modelFiles`; a text that is not such a map reads as no files. */
export function decodeModelFiles(json: string | null): ModelFileHash[] {
  if (!json) return [];
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    return [];
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return [];
  return Object.entries(raw as Record<string, unknown>)
    .filter((e): e is [string, string] => typeof e[1] === "string")
    .map(([path, sha256]) => ({ path, sha256 }));
}

type ReproductionColumns = Pick<Description, "instruction" | "cleanMarkdown" | "decoding" | "batchSize" | "imageHash" | "modelFiles">;

export function storedReproduction(d: ReproductionColumns): Reproduction {
  return {
    instruction: d.instruction,
    cleanMarkdown: d.cleanMarkdown,
    decoding: d.decoding,
    batchSize: d.batchSize,
    imageHash: d.imageHash,
    modelFiles: decodeModelFiles(d.modelFiles),
  };
}

/** A description that cannot be run again: each reason says what is missing or differs. */
export class NotReproducibleError extends Error {
  override name = "NotReproducibleError";
  constructor(
    readonly descriptionId: number,
    readonly reasons: string[],
  ) {
    super(`Description ${descriptionId} is not reproducible: ${reasons.join("; ")}`);
  }
}

type StoredRun = Pick<
  Description,
  | "id"
  | "source"
  | "prompt"
  | "numBeams"
  | "maxNewTokens"
  | "minNewTokens"
  | "targetWords"
  | "lengthPenalty"
  | "earlyStopping"
  | "noRepeatNgramSize"
  | "repetitionPenalty"
  | "imageSplitting"
  | "generatedTokenIds"
> &
  ReproductionColumns;

/** What a stored model description was made with, ready to run again. */
export interface StoredRunSpec {
  params: GenerationParams;
  instruction: string;
  imageHash: string;
  modelFiles: ModelFileHash[];
  generatedTokenIds: number[];
}

type ParamColumns = Pick<
  Description,
  "prompt" | "numBeams" | "maxNewTokens" | "minNewTokens" | "targetWords" | "lengthPenalty" | "earlyStopping" | "noRepeatNgramSize" | "repetitionPenalty" | "imageSplitting" | "cleanMarkdown"
>;

/** A description's parameter columns as a parameter set (unchecked). */
function paramColumns(d: ParamColumns): Record<string, unknown> {
  return {
    prompt: d.prompt,
    numBeams: d.numBeams,
    maxNewTokens: d.maxNewTokens,
    minNewTokens: d.minNewTokens,
    targetWords: d.targetWords,
    lengthPenalty: d.lengthPenalty,
    earlyStopping: (EARLY_STOPPING_TEXTS as readonly string[]).includes(d.earlyStopping ?? "") ? parseEarlyStopping(d.earlyStopping as EarlyStoppingText) : d.earlyStopping,
    noRepeatNgramSize: d.noRepeatNgramSize,
    repetitionPenalty: d.repetitionPenalty,
    imageSplitting: d.imageSplitting,
    cleanMarkdown: d.cleanMarkdown,
  };
}

/** The parameters a model description was made with, when every one was stored and is readable; else null. */
export function storedParams(d: ParamColumns): GenerationParams | null {
  try {
    return checkParams(paramColumns(d));
  } catch (err) {
    if (err instanceof ParamOutOfRangeError) return null;
    throw err;
  }
}

/**
 * The parameters, instruction, image hash and model files of a stored model description. Throws
 * NotReproducibleError for a person's text, for a row written before reproduction data was
 * stored, and for stored values this version cannot read.
 */
export function storedRunSpec(d: StoredRun): StoredRunSpec {
  if (d.source !== "MODEL") throw new NotReproducibleError(d.id, ["it is a person's text"]);
  const missing = (["instruction", "cleanMarkdown", "imageHash", "modelFiles", "generatedTokenIds", "prompt", "numBeams"] as const).filter((k) => d[k] == null);
  if (missing.length) throw new NotReproducibleError(d.id, [`written before reproduction data was stored (no ${missing.join(", ")})`]);
  if (!(EARLY_STOPPING_TEXTS as readonly string[]).includes(d.earlyStopping ?? "")) {
    throw new NotReproducibleError(d.id, [`stored earlyStopping ${JSON.stringify(d.earlyStopping)} is not true, false or never`]);
  }
  let params: GenerationParams;
  try {
    params = checkParams(paramColumns(d));
  } catch (err) {
    if (err instanceof ParamOutOfRangeError) throw new NotReproducibleError(d.id, [`stored parameter ${err.message}`]);
    throw err;
  }
  const modelFiles = decodeModelFiles(d.modelFiles);
  if (modelFiles.length === 0) throw new NotReproducibleError(d.id, ["its model files record is empty or unreadable"]);
  let tokens: unknown;
  try {
    tokens = JSON.parse(d.generatedTokenIds!);
  } catch {
    tokens = null;
  }
  if (!Array.isArray(tokens) || !tokens.every((t) => Number.isInteger(t))) {
    throw new NotReproducibleError(d.id, ["its generated token ids are unreadable"]);
  }
  return { params, instruction: d.instruction!, imageHash: d.imageHash!, modelFiles, generatedTokenIds: tokens as number[] };
}

/** What differs between two sets of model files, one line each ("onnx/x.onnx: sha256 differs ..."); empty when none. */
export function modelFileDifferences(stored: readonly ModelFileHash[], current: readonly ModelFileHash[]): string[] {
  const now = new Map(current.map((f) => [f.path, f.sha256]));
  const then = new Map(stored.map((f) => [f.path, f.sha256]));
  const out: string[] = [];
  for (const [path, sha] of then) {
    const c = now.get(path);
    if (c === undefined) out.push(`${path}: not loaded now`);
    else if (c !== sha) out.push(`${path}: sha256 differs (${sha.slice(0, 12)}… then, ${c.slice(0, 12)}… now)`);
  }
  for (const path of now.keys()) if (!then.has(path)) out.push(`${path}: not used then`);
  return out;
}

/** Where two token sequences first differ, or null when they are identical. */
export function firstDifference(a: readonly number[], b: readonly number[]): number | null {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? null : n;
}
