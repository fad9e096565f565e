import type { Config, Dtype, ModelModule } from "../config.js";
import { type GenerationParams, paramsFromConfig } from "../generation/params.js";

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
}

export interface Timings {
  preprocessMs: number;
  visionMs: number;
  prefillMs: number;
  decodeMs: number;
  totalMs: number;
}

export interface DescribeInput {
  /** A local image file (the normalised copy under IMAGE_DIR, or any file for the CLI). */
  imagePath: string;
  /** Optional facts for the prompt template (DESCRIBE_PROMPT_CONTEXT). */
  context?: { title?: string; date?: string; creator?: string; medium?: string };
}

export interface DescribeOutput {
  text: string;
  /** The decoded text before trimming and markdown cleaning. */
  rawText: string;
  finishReason: FinishReason;
  trimmed: boolean;
  /** The full prompt as sent to the model (chat template applied, image tokens collapsed). */
  prompt: string;
  promptTokens: number;
  imageTokens: number;
  generatedTokens: number;
  generatedTokenIds: number[];
  sequenceScore: number;
  timings: Timings;
  params: GenerationParams;
  model: ModelInfo;
}

export interface Describer {
  readonly model: ModelInfo;
  /**
   * Describes each input (decoded together as one batch when there are several). `onProgress`
   * reports tokens generated so far for input `index`. Aborting the signal stops between steps.
   */
  describe(
    inputs: DescribeInput[],
    params: GenerationParams,
    options?: { onProgress?: (index: number, tokens: number) => void; signal?: AbortSignal },
  ): Promise<DescribeOutput[]>;
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

/** The configured defaults (DESCRIBE_* variables). */
export function defaultGenerationParams(config: Config): GenerationParams {
  return paramsFromConfig(config);
}
