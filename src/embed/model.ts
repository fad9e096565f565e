import { resolve, basename, dirname } from "node:path";
import { env, pipeline, type FeatureExtractionPipeline } from "@huggingface/transformers";
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
  threads?: number;
}

export interface EmbedModelInfo {
  modelId: string;
  dims: number;
  dtype: EmbedDtype;
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
        // Idle onnxruntime threads spin by default and steal the cores the API needs.
        extra: { session: { intra_op: { allow_spinning: "0" }, inter_op: { allow_spinning: "0" } } },
      },
    })) as FeatureExtractionPipeline;
    const conventions = embedConventions(o.modelId);
    const probe = await extractor([conventions.queryPrefix + "probe"], { pooling: conventions.pooling, normalize: true });
    const dims = probe.dims.at(-1) as number;
    return new EmbeddingModel(extractor, conventions, { modelId: o.modelId, dims, dtype: o.dtype });
  }

  /** Unit-length vectors, one per text, in order. */
  async embed(texts: readonly string[], kind: EmbedKind): Promise<Float32Array[]> {
    if (texts.length === 0) return [];
    const prefix = kind === "query" ? this.conventions.queryPrefix : this.conventions.passagePrefix;
    const out = await this.extractor(
      texts.map((t) => prefix + t.slice(0, MAX_EMBED_TEXT_CHARS)),
      { pooling: this.conventions.pooling, normalize: this.conventions.normalize },
    );
    const data = out.data as Float32Array;
    const dims = this.info.dims;
    return texts.map((_, i) => data.slice(i * dims, (i + 1) * dims));
  }

  async dispose(): Promise<void> {
    await this.extractor.dispose();
  }
}
