import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config.js";
import { DTYPE_SUFFIX, readRevision, REVISION_FILE } from "../describe/models/contract.js";
import { pullFiles, type PullOptions, type PullResult } from "../describe/models/pull.js";

/**
 * The embedding model's folder: MODEL_DIR/EMBED_MODEL_ID in the layout of a Hugging Face ONNX
 * export of a sentence encoder (Xenova/multilingual-e5-small): configs, tokenizer, onnx/model*.onnx.
 */

export type EmbedDtype = Config["EMBED_MODEL_DTYPE"];
export type EmbedConfig = Pick<Config, "MODEL_DIR" | "EMBED_MODEL_ID" | "EMBED_MODEL_REVISION" | "EMBED_MODEL_DTYPE">;

export const EMBED_REQUIRED_FILES = ["config.json", "tokenizer.json", "tokenizer_config.json"] as const;
export const EMBED_OPTIONAL_FILES = ["special_tokens_map.json", "sentence_bert_config.json", "modules.json", "1_Pooling/config.json"] as const;

export const embedOnnxFile = (dtype: EmbedDtype) => `onnx/model${DTYPE_SUFFIX[dtype]}.onnx`;

/**
 * The model a stored vector is recorded under (ArtworkEmbedding.modelId): the model id, and the
 * ONNX file's dtype unless fp32 ("Xenova/multilingual-e5-small:quantized"). Another file of the
 * same model gives slightly other vectors, so a changed EMBED_MODEL_DTYPE makes the stored ones
 * stale (made again in the background) and a query is never compared with another file's vectors.
 */
export function vectorModelId(modelId: string, dtype: EmbedDtype): string {
  return dtype === "fp32" ? modelId : `${modelId}:${dtype}`;
}

/** vectorModelId of the configured model and file: what this process's vectors are stored and searched under. */
export const configuredVectorModel = (config: Pick<Config, "EMBED_MODEL_ID" | "EMBED_MODEL_DTYPE">) => vectorModelId(config.EMBED_MODEL_ID, config.EMBED_MODEL_DTYPE);

/**
 * Which weights of the configured model are installed: the commit \`models pull --embed\` recorded
 * (the hub resolves a branch such as \`main\` to one), a synthetic model's name and seed, else the
 * recorded or configured revision (files copied in by hand). A stored vector records it
 * (ArtworkEmbedding.modelRevision): weights pulled again at another commit make the vectors stale,
 * and they are made again in the background. Read from the folder, so a process that loaded the
 * model before a pull keeps the revision it loaded (embedder info), and \`status\` says what is on disk.
 */
export function embedModelRevision(config: EmbedConfig): string {
  let record;
  try {
    record = readRevision(embedModelDir(config));
  } catch {
    // An unreadable record (a pull cut short while writing it): the files' revision is unknown.
    record = null;
  }
  return record?.commit ?? record?.revision ?? config.EMBED_MODEL_REVISION;
}

/**
 * What a background embedder makes vectors of, as its process's heartbeat records it: the model, its
 * file and its weights' revision ("Xenova/multilingual-e5-small:quantized@<commit>"). Two live
 * embedders that differ in any of them would re-embed each other's works: they hold off.
 */
export const embedderKey = (info: { modelId: string; dtype: EmbedDtype; revision: string }) => {
  const m = loadedVectorModel(info);
  return `${m.id}@${m.revision}`;
};

/** The model vectors are made and searched with (vectorModelId), and its weights' revision (embedModelRevision). */
export interface VectorModel {
  id: string;
  revision: string;
}

/** The configured model as installed now (its revision read from the folder). */
export const installedVectorModel = (config: EmbedConfig): VectorModel => ({ id: configuredVectorModel(config), revision: embedModelRevision(config) });

/** The model a loaded embedder makes vectors with. */
export const loadedVectorModel = (info: { modelId: string; dtype: EmbedDtype; revision: string }): VectorModel => ({ id: vectorModelId(info.modelId, info.dtype), revision: info.revision });

export function embedModelDir(config: EmbedConfig): string {
  return join(config.MODEL_DIR, config.EMBED_MODEL_ID);
}

/** The command that installs the configured embedding model. */
export function embedPullCommand(config: EmbedConfig): string {
  return `artdesc models pull --embed${config.EMBED_MODEL_ID === "Xenova/multilingual-e5-small" ? "" : ` --model ${config.EMBED_MODEL_ID}`}`;
}

export interface EmbedModelPresence {
  dir: string;
  /** Required files that are not there (none: the model can load). */
  missing: string[];
  /** What the model is, as recorded by pull or synth, else the configured id. */
  modelId: string;
  command: string;
}

/** Which files of the configured embedding model are missing; reads no graph. */
export function embedModelPresence(config: EmbedConfig): EmbedModelPresence {
  const dir = embedModelDir(config);
  const missing = [...EMBED_REQUIRED_FILES, embedOnnxFile(config.EMBED_MODEL_DTYPE)].filter((f) => !existsSync(join(dir, f)));
  // A pull that did not finish may have left files of two revisions side by side.
  if (readRevision(dir)?.pending) missing.push(`${REVISION_FILE} (a models pull that did not finish)`);
  return { dir, missing, modelId: config.EMBED_MODEL_ID, command: embedPullCommand(config) };
}

/**
 * The text conventions of a model family, from its model card. e5 ("query: " / "passage: "
 * prefixes, mean pooling, unit length: https://huggingface.co/intfloat/multilingual-e5-small);
 * the synthetic models copy e5's. Other sentence-transformers models: mean pooling, no prefix.
 */
export interface EmbedConventions {
  queryPrefix: string;
  passagePrefix: string;
  pooling: "mean" | "cls";
  normalize: true;
}

export function embedConventions(modelId: string): EmbedConventions {
  if (/(^|[/-])e5([-_]|$)|artdesc\/synth-embed/i.test(modelId)) return { queryPrefix: "query: ", passagePrefix: "passage: ", pooling: "mean", normalize: true };
  if (/bge-/i.test(modelId)) return { queryPrefix: "", passagePrefix: "", pooling: "cls", normalize: true };
  return { queryPrefix: "", passagePrefix: "", pooling: "mean", normalize: true };
}

/** `artdesc models pull --embed`: the same resumable, size-checked download as the VLM's. */
export function pullEmbedModel(
  options: Omit<PullOptions, "dtypes" | "modelId" | "revision" | "modelDir">,
  config: EmbedConfig,
  overrides: { modelId?: string; revision?: string } = {},
): Promise<PullResult> {
  return pullFiles(
    { ...options, modelId: overrides.modelId ?? config.EMBED_MODEL_ID, revision: overrides.revision ?? config.EMBED_MODEL_REVISION, modelDir: config.MODEL_DIR },
    { required: EMBED_REQUIRED_FILES, optional: EMBED_OPTIONAL_FILES, graphs: [embedOnnxFile(config.EMBED_MODEL_DTYPE)], dtypes: [config.EMBED_MODEL_DTYPE] },
  );
}
