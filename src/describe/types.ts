import type { Config, Dtype, ModelModule } from "../config.js";
import { type GenerationParams, paramsFromConfig } from "../generation/params.js";
import type { ModelFileHash } from "../generation/reproduction.js";

/**
 * The contract between the description engine (src/describe) and its callers (the describe CLI
 * and the job worker). The parameters themselves live in src/generation/params.ts.
 */

export type { EarlyStopping, GenerationParams } from "../generation/params.js";

export type FinishReason = "eos" | "length" | "stop";

export interface ModelInfo {
  modelId: string;
  revision: string;
  dtypes: Record<ModelModule, Dtype>;
  device: "cpu" | "cuda" | "webgpu";
  /** The files the model was loaded from, hashed once when it was loaded (see model-files.ts). */
  files: ModelFileHash[];
}

export type { ModelFileHash } from "../generation/reproduction.js";

/** "greedy" for one beam (exactly Hugging Face greedy search), "beam" for beam search. */
export type Decoding = "greedy" | "beam";

export function decodingOf(numBeams: number): Decoding {
  return numBeams === 1 ? "greedy" : "beam";
}

/**
 * Milliseconds per phase for one image of a batch. Preprocessing, the vision encoder and the
 * prefill run per image; the decode is shared by the batch, so `decodeMs` is this image's share of
 * it (the decode's wall time split by the rows x steps each image used), and `totalMs` is the sum
 * of the four: the batch's `totalMs` add up to its wall time. `batchMs` is the wall time of the
 * whole batch, the same for every image in it.
 */
export interface Timings {
  preprocessMs: number;
  visionMs: number;
  prefillMs: number;
  decodeMs: number;
  totalMs: number;
  batchMs: number;
}

export interface DescribeInput {
  /** A local image file (the normalised copy under IMAGE_DIR, or any file for the CLI). */
  imagePath: string;
  /** Optional facts for the prompt template (DESCRIBE_PROMPT_CONTEXT). */
  context?: { title?: string; date?: string; creator?: string; medium?: string };
  /**
   * The chat-templated prompt to send as it is, instead of templating `params.prompt` with
   * `context` (`describe --like` sends a stored description's `instruction`).
   */
  instruction?: string;
}

export interface DescribeOutput {
  text: string;
  /** The decoded text before trimming and markdown cleaning. */
  rawText: string;
  finishReason: FinishReason;
  trimmed: boolean;
  /**
   * The chat-templated prompt exactly as it went to the processor: the instruction with its
   * context, one `<image>` placeholder that the processor expands into the image tokens.
   */
  prompt: string;
  /** sha256 (hex) of the image file's bytes as the engine read them (Image.localHash for a stored copy). */
  imageHash: string;
  /** How many images were decoded together in this batch. */
  batchSize: number;
  decoding: Decoding;
  promptTokens: number;
  imageTokens: number;
  generatedTokens: number;
  generatedTokenIds: number[];
  sequenceScore: number;
  timings: Timings;
  params: GenerationParams;
  model: ModelInfo;
}

export interface DescribeOptions {
  onProgress?: (index: number, tokens: number) => void;
  signal?: AbortSignal;
  /** Per input, a signal that drops that input from the batch. */
  itemSignals?: (AbortSignal | undefined)[];
}

export interface Describer {
  readonly model: ModelInfo;
  /**
   * Describes each input (decoded together as one batch when there are several). `onProgress`
   * reports tokens generated so far for input `index`. Aborting `signal` stops the whole batch
   * between steps (the promise rejects); aborting `itemSignals[i]` drops input i alone: its rows
   * leave the batch at the next step, the others go on, and its result is null.
   */
  describe(inputs: DescribeInput[], params: GenerationParams, options?: DescribeOptions): Promise<(DescribeOutput | null)[]>;
  close(): Promise<void>;
}

/** The model folder lacks files: says which, where, and the command that fetches them. */
export class ModelMissingError extends Error {
  override name = "ModelMissingError";
  constructor(
    readonly folder: string,
    readonly missing: string[],
    readonly command: string,
  ) {
    super(`Model files missing in ${folder}: ${missing.join(", ")}. Fetch them with: ${command}`);
  }
}

/** An image that cannot be used: unreadable, corrupt or in an unsupported format. */
export class ImageInputError extends Error {
  override name = "ImageInputError";
  constructor(
    readonly path: string,
    /** What is wrong with the file, without its path: what a job may show to anyone. */
    readonly reason: string,
    cause?: unknown,
  ) {
    super(`Cannot use image ${path}: ${reason}`, cause === undefined ? undefined : { cause });
  }
}

/**
 * The description engine stopped: its thread exited, or the describer was closed. Every later call
 * fails the same way until the model is loaded again; not the fault of the images being described.
 */
export class EngineStoppedError extends Error {
  override name = "EngineStoppedError";
}

/**
 * The model ran out of memory during a run of one of its graphs (onnxruntime could not allocate).
 * Says which graph and how many rows (images x beams) it was given: fewer images per batch
 * (WORKER_BATCH) or fewer beams need less.
 */
export class EngineOutOfMemoryError extends Error {
  override name = "EngineOutOfMemoryError";
  constructor(
    readonly module: string,
    readonly rows: number,
    cause?: unknown,
  ) {
    super(`the model ran out of memory in ${module} with ${rows} row(s) (images x beams); lower WORKER_BATCH or the number of beams`, cause === undefined ? undefined : { cause });
  }
}

/** The configured defaults (DESCRIBE_* variables). */
export function defaultGenerationParams(config: Config): GenerationParams {
  return paramsFromConfig(config);
}
