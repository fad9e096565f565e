import { resolve, basename, dirname } from "node:path";
import { env, pipeline, type FeatureExtractionPipeline } from "@huggingface/transformers";
import { noSpinningThreads } from "../describe/ort-threads.js";
import { type EmbedConventions, embedConventions, type EmbedDtype } from "./model-files.js";

/**
 * A sentence-embedding model loaded once through transformers.js's `feature-extraction` pipeline,
 * with the pooling, normalisation and prefixes its model card asks for. Runs inference on the
 * calling thread: use it inside the embedding thread (thread.ts), never on an event loop that serves.
 */

export type EmbedKind = "query" | "passage";

export interface EmbedModelOptions {
  /** The model folder (MODEL_DIR/EMBED_MODEL_ID). */
  dir: string;
  modelId: string;
  dtype: EmbedDtype;
  /** The weights' revision (embedModelRevision), recorded with each vector. */
  revision: string;
  threads?: number;
}

export interface EmbedModelInfo {
  modelId: string;
  dims: number;
  dtype: EmbedDtype;
  /** The weights' revision the model was loaded at (embedModelRevision). */
  revision: string;
}

/** Longest text embedded, in characters (e5 reads 512 tokens; longer text is cut by the tokenizer anyway). */
export const MAX_EMBED_TEXT_CHARS = 4_000;

export class EmbeddingModel {
  private constructor(
    private readonly extractor: FeatureExtractionPipeline,
    private readonly conventions: EmbedConventions,
    readonly info: EmbedModelInfo,
  ) {}

  static async load(o: EmbedModelOptions): Promise<EmbeddingModel> {
    const dir = resolve(o.dir);
    // transformers.js resolves `localModelPath + id`; the folder's parent and name give exactly it.
    env.localModelPath = `${dirname(dir)}/`;
    env.allowLocalModels = true;
    env.allowRemoteModels = false;
    const extractor = (await pipeline("feature-extraction", basename(dir), {
      local_files_only: true,
      device: "cpu",
      dtype: o.dtype === "quantized" ? "q8" : o.dtype,
      session_options: {
        ...(o.threads && o.threads > 0 ? { intraOpNumThreads: o.threads } : {}),
        // Idle threads must not spin: they would steal the cores the API needs.
        extra: noSpinningThreads(),
      },
    })) as FeatureExtractionPipeline;
    const conventions = embedConventions(o.modelId);
    const probe = await extractor([conventions.queryPrefix + "probe"], { pooling: conventions.pooling, normalize: true });
    const dims = probe.dims.at(-1) as number;
    return new EmbeddingModel(extractor, conventions, { modelId: o.modelId, dims, dtype: o.dtype, revision: o.revision });
  }

  /** Unit-length vectors, one per text, in order. */
  async embed(texts: readonly string[], kind: EmbedKind): Promise<Float32Array[]> {
    if (texts.length === 0) return [];
    const prefix = kind === "query" ? this.conventions.queryPrefix : this.conventions.passagePrefix;
    const out = await this.extractor(
      texts.map((t) => prefix + t.slice(0, MAX_EMBED_TEXT_CHARS)),
      { pooling: this.conventions.pooling, normalize: false },
    );
    const data = out.data as Float32Array;
    const dims = this.info.dims;
    return texts.map((_, i) => unitLength(data.slice(i * dims, (i + 1) * dims)));
  }

  async dispose(): Promise<void> {
    await this.extractor.dispose();
  }
}

/** A model gave a vector with a NaN or an infinity: a broken model file, never a text's fault. */
export class NonFiniteEmbeddingError extends Error {
  override name = "NonFiniteEmbeddingError";
}

/**
 * Scales a vector to unit length in place, as sentence-transformers' torch.nn.functional.normalize
 * does: a norm below 1e-12 divides by 1e-12, so a text of which the model reads nothing (a zero
 * vector: unknown characters only) stays zero, similar to nothing, instead of becoming NaN
 * (transformers.js's normalize divides by zero).
 */
export function unitLength(v: Float32Array): Float32Array {
  let sum = 0;
  for (const x of v) sum += x * x;
  if (!Number.isFinite(sum)) throw new NonFiniteEmbeddingError("the embedding model produced a vector that is not finite");
  const scale = 1 / Math.max(Math.sqrt(sum), 1e-12);
  for (let i = 0; i < v.length; i++) v[i]! *= scale;
  return v;
}
