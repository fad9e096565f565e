import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import {
  AutoModelForVision2Seq,
  AutoProcessor,
  env,
  type PreTrainedModel,
  type Processor,
  RawImage,
} from "@huggingface/transformers";
import * as ort from "onnxruntime-node";
import { decodeForModel, ImageRejectedError } from "../sync/images.js";
import { type DtypeConfig, MODEL_MODULES, type ModelModule } from "../config.js";
import { assertModelFolder, modelFiles, onnxFile, type ModuleDtypes, moduleDtypes, pullCommand, readRevision, resolveModelFolder, REVISION_FILE } from "./models/contract.js";
import { decodeTokens, type Hypothesis, targetLengthStop } from "./beam-search.js";
import { cacheFeeds, cacheFromOutputs, emptyCache, freeBuffer, type KvCache, releaseCache } from "./kv-cache.js";
import { type CacheReorder, checkReorderPath, defaultReorderPath, DeviceReorder, hostReorder, type ReorderPath } from "./cache-reorder.js";
import { checkDeviceInstalled, deviceError } from "./device.js";
import { fromFloat16Array, toFloat16Array } from "./float16.js";
import { noSpinningThreads } from "./ort-threads.js";
import { finishText } from "./postprocess.js";
import { hashModelFiles } from "./model-files.js";
import {
  type DescribeInput,
  type DescribeOutput,
  decodingOf,
  type GenerationParams,
  EngineOutOfMemoryError,
  ImageInputError,
  type ModelInfo,
  ModelMissingError,
} from "./types.js";

export { ImageInputError } from "./types.js";

/**
 * The description engine: transformers.js supplies the processor, the tokenizer and the three
 * onnxruntime sessions (it picks files by dtype and sessions by device); this module runs them
 * itself — the vision encoder tile by tile, the embedded prompt with the image features merged at
 * the `<image>` positions, one prefill per image at batch 1, then beam search over all images x
 * beams with the key/value cache reordered by parent beam, on the host or on the device
 * (cache-reorder.ts).
 */

export type Device = ModelInfo["device"];

export interface EngineOptions {
  /** The model folder (config, processor, tokenizer, onnx/). */
  modelDir: string;
  /** The model id recorded with each description; read from the folder's revision file when absent. */
  modelId?: string;
  revision?: string;
  dtype?: DtypeConfig;
  device?: Device;
  /** onnxruntime intra-op threads; 0 lets onnxruntime choose. */
  threads?: number;
  /** Vision encoder tiles per run (bounds the encoder's activation memory). */
  visionGroup?: number;
  /** Let idle onnxruntime threads spin-wait (its default); off unless asked, see load(). */
  spinning?: boolean;
  /** Where the key/value cache is reordered between steps; by default per device (defaultReorderPath). */
  reorder?: ReorderPath;
  /** onnxruntime session options for all three sessions (benchmarks try them; unset: onnxruntime's defaults). */
  session?: SessionTuning;
  /**
   * Profile the decoder's runs (onnxruntime's `enableProfiling`) into `<prefix>_<time>.json`; only
   * the decoder, as sessions started in the same second would share one file; CPU only (the
   * profiled session is opened here, without transformers.js's execution providers). See endProfiling().
   */
  profileDecoderPrefix?: string;
}

/** The onnxruntime session options a caller may tune. */
export type SessionTuning = Pick<
  ort.InferenceSession.SessionOptions,
  "graphOptimizationLevel" | "enableMemPattern" | "enableCpuMemArena" | "executionMode" | "interOpNumThreads"
>;

/**
 * onnxruntime's CPU memory arena for these dtypes: off when a module has 4-bit weights (q4, q4f16:
 * MatMulNBits), else onnxruntime's default (undefined). The arena keeps every buffer it grew to; with
 * 4-bit weights that cost about 150 MB of peak RSS and made 4-beam decoding slower (bench:describe,
 * smolvlm-500m q4 on the 2-core build machine: 1,600-1,700 MB and 21-25 s per image with it,
 * 1,450-1,535 MB and 16-17 s without). fp32 gained nothing from turning it off. Tokens and scores are
 * the same either way (test/describe/engine.test.ts). A caller's session.enableCpuMemArena wins.
 */
export function cpuMemArenaDefault(dtypes: ModuleDtypes, device: string): boolean | undefined {
  if (device !== "cpu") return undefined;
  return MODEL_MODULES.some((m) => dtypes[m] === "q4" || dtypes[m] === "q4f16") ? false : undefined;
}

/** One description request as the engine sees it (GenerationParams plus what the engine needs). */
export interface EngineParams extends GenerationParams {
  numReturnSequences?: number;
}

export interface EngineHooks {
  onProgress?: (index: number, tokens: number) => void;
  signal?: AbortSignal;
  /**
   * Called between images and between steps, before the signal is checked: lets a worker thread
   * whose event loop is blocked by inference turn a shared abort flag into `signal`'s abort.
   */
  poll?: () => void;
  /** Whether input `index` was dropped from the batch (checked between images and steps). */
  dropped?: (index: number) => boolean;
}

/** The configured model (MODEL_ID, MODEL_REVISION): a missing file then names the pull command. */
export interface ConfiguredModel {
  modelId: string;
  revision: string;
}

/**
 * Throws ModelMissingError (folder, missing files, the command that fetches them) when files are
 * absent. For the configured model the command is `models pull`; for an explicit folder it follows
 * the folder's record (`models synth ...` for a synthetic one).
 */
export function checkModelFilesPresent(modelDir: string, dtypes: ModuleDtypes, configured?: ConfiguredModel): void {
  const dir = resolve(modelDir);
  if (!configured) {
    resolveModelFolder(dir, dtypes);
    return;
  }
  const missing = modelFiles(dtypes).filter((f) => !existsSync(join(dir, f)));
  // A pull that did not finish may have left files of two revisions side by side.
  if (readRevision(dir)?.pending) missing.push(`${REVISION_FILE} (a models pull that did not finish)`);
  if (missing.length) throw new ModelMissingError(dir, missing, pullCommand(configured.modelId, configured.revision, dtypes));
}

/** As checkModelFilesPresent, then the ONNX contract checks (ModelContractError). */
export function checkModelFiles(modelDir: string, dtypes: ModuleDtypes, configured?: ConfiguredModel): void {
  checkModelFilesPresent(modelDir, dtypes, configured);
  assertModelFolder(resolve(modelDir), dtypes, "");
}

/**
 * Reads an image with sharp (EXIF rotation applied, RGB), as transformers.js's RawImage. An
 * unusable file is an ImageInputError that says what is wrong with it (see decodeForModel).
 */
export async function readImage(path: string, maxEdge: number): Promise<RawImage> {
  return (await readImageFile(path, maxEdge)).image;
}

/** As readImage, with the sha256 (hex) of the file's bytes as they were read. */
async function readImageFile(path: string, maxEdge: number): Promise<{ image: RawImage; hash: string }> {
  let input: Buffer;
  try {
    input = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ImageInputError(path, code === "ENOENT" ? "no such file" : `cannot read the file (${code ?? "error"})`, err);
  }
  let out: Awaited<ReturnType<typeof decodeForModel>>;
  try {
    out = await decodeForModel(input, maxEdge);
  } catch (err) {
    if (err instanceof ImageRejectedError) throw new ImageInputError(path, err.message, err);
    throw err;
  }
  if (out.channels !== 3) throw new ImageInputError(path, `expected 3 colour channels after conversion, got ${out.channels}`);
  const image = new RawImage(new Uint8ClampedArray(out.data.buffer, out.data.byteOffset, out.data.length), out.width, out.height, 3);
  return { image, hash: createHash("sha256").update(input).digest("hex") };
}

/**
 * A float tensor's values on the host as float32 (downloaded first when it is on a GPU), then
 * disposed; with `start` and `end`, a copy of just those values, the only ones converted from
 * float16 (the prefill needs the last position's logits, not the whole prompt's).
 */
async function readFloat32(t: ort.Tensor, start?: number, end?: number): Promise<Float32Array> {
  if (t.type !== "float32" && t.type !== "float16") throw new Error(`unexpected logits type ${t.type}`);
  const data = await t.getData();
  t.dispose();
  if (t.type === "float16") return fromFloat16Array(data as Uint16Array, start, end);
  return start === undefined && end === undefined ? (data as Float32Array) : (data as Float32Array).slice(start, end);
}

function floatTensor(type: "float32" | "float16", data: Float32Array, dims: number[]): ort.Tensor {
  return type === "float32" ? new ort.Tensor("float32", data, dims) : new ort.Tensor("float16", toFloat16Array(data), dims);
}

/**
 * Images are decoded at their own resolution up to this longest edge, so that the processor's
 * resize is the only one: an image shrunk first by sharp (another kernel, its own rounding of the
 * size) differed from the processor's pixels by up to 0.16 on the [-1, 1] scale. Larger images are
 * shrunk to it by sharp first (their pixels are close to, not identical with, the processor's):
 * this bounds the decoded copy at 8192² RGB bytes (201 MB). Stored images are at most IMAGE_EDGE
 * (≤ 4096) and never reach it.
 */
export const DECODE_MAX_EDGE = 8192;

/** What the processor made of one image and prompt. */
export interface PreparedInput {
  /** The templated prompt with one `<image>` placeholder (as stored). */
  promptText: string;
  /** sha256 (hex) of the image file's bytes. */
  imageHash: string;
  inputIds: number[];
  imageTokens: number;
  /** [1, tiles, 3, S, S] and [1, tiles, S, S] as the processor returned them (transformers.js tensors). */
  processorInputs: Record<string, unknown>;
  pixelValues: Float32Array;
  tiles: number;
  tileSize: number;
  preprocessMs: number;
}

/** The prefill of one image: its cache, its last-position logits and its prompt length. */
export interface Prefill {
  cache: KvCache;
  logits: Float32Array;
  length: number;
  visionMs: number;
  prefillMs: number;
}

export interface RunStats {
  /** Milliseconds spent inside onnxruntime `run()`. */
  ortMs: number;
  runs: number;
  /**
   * Key/value rows written by beam reordering (the first step's copy of each prefill to its beams
   * included): the host path copies only rows whose parent changed, the device path's Gather
   * writes every row of the new batch; nothing when the parents are the identity.
   */
  copiedRows: number;
  /** Milliseconds spent reordering the cache (either path; the device path's runs are not in ortMs). */
  reorderMs: number;
  /** Milliseconds inside the decode step (reorder, mask, embed and decoder runs, logits read back); the rest of a search is beam bookkeeping. */
  stepMs: number;
}

export class Engine {
  readonly stats: RunStats = { ortMs: 0, runs: 0, copiedRows: 0, reorderMs: 0, stepMs: 0 };

  private constructor(
    readonly model: ModelInfo,
    readonly processor: Processor,
    readonly hfModel: PreTrainedModel,
    private readonly sessions: Record<ModelModule, ort.InferenceSession>,
    private readonly dims: {
      layers: number;
      kvHeads: number;
      headDim: number;
      vocab: number;
      floatType: "float32" | "float16";
      visionFloat: "float32" | "float16";
    },
    readonly special: { imageTokenId: number; eosTokenIds: number[]; badWordsIds: number[][] },
    private readonly options: { visionGroup: number; maxEdge: number; tileSize: number },
    private readonly reorder: CacheReorder,
  ) {}

  /** Which reorder path this engine runs (see cache-reorder.ts). */
  get reorderPath(): ReorderPath {
    return this.reorder.path;
  }

  static async load(options: EngineOptions): Promise<Engine> {
    const device = options.device ?? "cpu";
    const reorderPath = options.reorder ?? defaultReorderPath(device);
    checkReorderPath(reorderPath, device);
    const dtypes = moduleDtypes(options.dtype, device);
    const dir = resolve(options.modelDir);
    const revisionRecord = readRevision(dir);
    const modelId = options.modelId ?? revisionRecord?.model ?? basename(dir);
    checkModelFiles(dir, dtypes, options.modelId ? { modelId: options.modelId, revision: options.revision ?? "main" } : undefined);

    // transformers.js resolves `localModelPath + id`; the folder's parent and name give exactly it.
    env.localModelPath = `${dirname(dir)}/`;
    env.allowLocalModels = true;
    env.allowRemoteModels = false;
    const id = basename(dir);
    const sessionOptions: ort.InferenceSession.SessionOptions = { ...options.session };
    if (options.threads && options.threads > 0) sessionOptions.intraOpNumThreads = options.threads;
    // Three sessions take turns every step: idle threads must not spin (noSpinningThreads).
    if (!options.spinning) sessionOptions.extra = noSpinningThreads();
    if (options.session?.enableCpuMemArena === undefined) {
      const arena = cpuMemArenaDefault(dtypes, device);
      if (arena !== undefined) sessionOptions.enableCpuMemArena = arena;
    }

    checkDeviceInstalled(device);
    const processor = await AutoProcessor.from_pretrained(id, { local_files_only: true });
    const hfModel = await AutoModelForVision2Seq.from_pretrained(id, {
      local_files_only: true,
      device,
      // transformers.js calls the "_quantized" files q8.
      dtype: Object.fromEntries(MODEL_MODULES.map((m) => [m, dtypes[m] === "quantized" ? "q8" : dtypes[m]])) as Record<string, "q8">,
      session_options: sessionOptions,
    }).catch((err: unknown) => {
      throw deviceError(device, err) ?? err;
    });
    const sessions = (hfModel as unknown as { sessions: Record<string, ort.InferenceSession> }).sessions;
    for (const m of MODEL_MODULES) if (!sessions[m]) throw new Error(`transformers.js opened no ${m} session for ${dir}`);
    if (options.profileDecoderPrefix) {
      if (device !== "cpu") throw new RangeError(`profileDecoderPrefix profiles the CPU decoder only, not ${device}`);
      // The same file and options, profiled; transformers.js runs only through `sessions`, which this replaces.
      mkdirSync(dirname(resolve(options.profileDecoderPrefix)), { recursive: true });
      await sessions.decoder_model_merged!.release();
      sessions.decoder_model_merged = await ort.InferenceSession.create(join(dir, onnxFile("decoder_model_merged", dtypes.decoder_model_merged)), {
        ...sessionOptions,
        enableProfiling: true,
        profileFilePrefix: options.profileDecoderPrefix,
      });
    }

    const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, any>;
    const text = (config.text_config ?? config) as Record<string, any>;
    const decoder = sessions.decoder_model_merged as ort.InferenceSession;
    const pastMeta = decoder.inputMetadata.find((m) => m.name === "past_key_values.0.key");
    if (!pastMeta || !pastMeta.isTensor) throw new Error("decoder_model_merged has no past_key_values.0.key input");
    const [, kvHeads, , headDim] = pastMeta.shape;
    if (typeof kvHeads !== "number" || typeof headDim !== "number") {
      throw new Error("decoder past_key_values must have fixed key/value head count and head size");
    }
    const layers = decoder.inputNames.filter((n) => /^past_key_values\.\d+\.key$/.test(n)).length;
    const floatType = pastMeta.type === "float16" ? "float16" : "float32";
    const visionMeta = (sessions.vision_encoder as ort.InferenceSession).inputMetadata.find((m) => m.name === "pixel_values");
    const visionFloat = visionMeta?.isTensor && visionMeta.type === "float16" ? "float16" : "float32";

    const generation = readJson(join(dir, "generation_config.json")) ?? {};
    const eosRaw = generation.eos_token_id ?? config.eos_token_id ?? text.eos_token_id;
    const eosTokenIds = (Array.isArray(eosRaw) ? eosRaw : [eosRaw]).filter((x): x is number => typeof x === "number");
    if (eosTokenIds.length === 0) throw new Error(`no eos_token_id in ${dir}/generation_config.json or config.json`);
    const imageTokenId = config.image_token_id ?? config.image_token_index;
    if (typeof imageTokenId !== "number") throw new Error(`no image_token_id in ${dir}/config.json`);

    // The image tokens can never be generated (bad words).
    const tokenizerJson = readJson(join(dir, "tokenizer.json")) ?? {};
    const imageSpecials = ((tokenizerJson.added_tokens ?? []) as { id: number; content: string }[])
      .filter((t) => /^<(image|fake_token_around_image|global-img|row_\d+_col_\d+)>$/.test(t.content))
      .map((t) => [t.id]);
    if (!imageSpecials.some(([i]) => i === imageTokenId)) imageSpecials.push([imageTokenId]);

    const pre = readJson(join(dir, "preprocessor_config.json")) ?? {};
    const tileSize = pre.max_image_size?.longest_edge ?? 512;
    const maxEdge = pre.size?.longest_edge ?? 2048;

    const model: ModelInfo = {
      modelId,
      // What is on disk wins: the revision file written by `models pull` / `models synth`.
      revision: revisionRecord?.commit ?? revisionRecord?.revision ?? options.revision ?? "unknown",
      dtypes,
      device,
      // Once per load: every description records them, `describe --like` compares them.
      files: await hashModelFiles(dir, dtypes),
    };
    return new Engine(
      model,
      processor,
      hfModel,
      sessions as Record<ModelModule, ort.InferenceSession>,
      { layers, kvHeads, headDim, vocab: text.vocab_size ?? config.vocab_size, floatType, visionFloat },
      { imageTokenId, eosTokenIds, badWordsIds: imageSpecials },
      { visionGroup: Math.max(1, options.visionGroup ?? 1), maxEdge, tileSize },
      reorderPath === "device" ? new DeviceReorder(device, sessionOptions) : hostReorder,
    );
  }

  /** Ends the decoder's profiling (EngineOptions.profileDecoderPrefix): onnxruntime writes the file. */
  endProfiling(): void {
    this.sessions.decoder_model_merged.endProfiling();
  }

  get vocabSize(): number {
    return this.dims.vocab;
  }

  async dispose(): Promise<void> {
    await this.reorder.dispose();
    await this.hfModel.dispose();
  }

  private async run(module: ModelModule, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
    const t = performance.now();
    let out: ort.InferenceSession.ReturnType;
    try {
      out = await this.sessions[module].run(feeds);
    } catch (err) {
      // onnxruntime has no error classes: its allocation failures are recognised here, once, at its boundary.
      if (err instanceof Error && ORT_OUT_OF_MEMORY.test(err.message)) throw new EngineOutOfMemoryError(module, rowsOf(feeds), err);
      throw err;
    }
    this.stats.ortMs += performance.now() - t;
    this.stats.runs++;
    return out as Record<string, ort.Tensor>;
  }

  /** The chat-templated prompt with one image placeholder. */
  templatePrompt(instruction: string): string {
    const messages = [{ role: "user", content: [{ type: "image" }, { type: "text", text: instruction }] }];
    return this.processor.apply_chat_template(messages as never, { add_generation_prompt: true }) as unknown as string;
  }

  /**
   * Reads and preprocesses an image with transformers.js's Idefics3ImageProcessor. Without
   * splitting: one tile, the image resized straight to the tile size (Lanczos to a longest edge of
   * one tile, then bilinear to the square), as Python's processor ends it, where transformers.js's
   * default first goes through `size.longest_edge` (2048). With splitting: tiles from the image's
   * own resolution, never upscaled past it, at most the processor's longest edge; from there the
   * pixels are exactly the processor's (its Lanczos resize, its bilinear resize to the tile grid,
   * its crops), because the image reaches it undecimated (see DECODE_MAX_EDGE).
   * `templated`, when given, is the chat-templated prompt sent as it is (instead of templating
   * `instruction`).
   */
  async prepare(imagePath: string, instruction: string, imageSplitting: boolean, templated?: string): Promise<PreparedInput> {
    const t0 = performance.now();
    // Decoded at full resolution (up to DECODE_MAX_EDGE): the processor does every resize itself.
    const { image, hash } = await readImageFile(imagePath, Math.max(DECODE_MAX_EDGE, this.options.maxEdge));
    const promptText = templated ?? this.templatePrompt(instruction);
    const imageProcessor = (this.processor as unknown as { image_processor: { size: { longest_edge: number } } }).image_processor;
    const ownEdge = Math.max(image.width, image.height);
    // Splitting: resize to the image's own longest edge (capped); without: straight to one tile.
    imageProcessor.size = { longest_edge: imageSplitting ? Math.min(this.options.maxEdge, ownEdge) : this.options.tileSize };
    const inputs = (await (this.processor as unknown as (t: string, i: RawImage[], o: object) => Promise<Record<string, any>>)(
      promptText,
      [image],
      { do_image_splitting: imageSplitting },
    )) as Record<string, any>;
    const ids = Array.from(inputs.input_ids.data as BigInt64Array, Number);
    const pixel = inputs.pixel_values;
    const [, tiles, , size] = pixel.dims as number[];
    return {
      promptText,
      imageHash: hash,
      inputIds: ids,
      imageTokens: ids.filter((i) => i === this.special.imageTokenId).length,
      processorInputs: inputs,
      pixelValues: pixel.data as Float32Array,
      tiles: tiles!,
      tileSize: size!,
      preprocessMs: performance.now() - t0,
    };
  }

  /** Image features for all tiles, encoded `visionGroup` tiles per run: [tiles * seq, hidden] flat. */
  async encodeImage(p: PreparedInput): Promise<{ features: Float32Array | Uint16Array; ms: number }> {
    const t0 = performance.now();
    const tileLen = 3 * p.tileSize * p.tileSize;
    const parts: (Float32Array | Uint16Array)[] = [];
    for (let start = 0; start < p.tiles; start += this.options.visionGroup) {
      const n = Math.min(this.options.visionGroup, p.tiles - start);
      const pixels = p.pixelValues.subarray(start * tileLen, (start + n) * tileLen);
      const out = await this.run("vision_encoder", {
        pixel_values: floatTensor(this.dims.visionFloat, pixels, [1, n, 3, p.tileSize, p.tileSize]),
        pixel_attention_mask: new ort.Tensor("bool", new Uint8Array(n * p.tileSize * p.tileSize).fill(1), [1, n, p.tileSize, p.tileSize]),
      });
      parts.push(out.image_features!.data as Float32Array | Uint16Array);
    }
    const total = parts.reduce((s, x) => s + x.length, 0);
    const features = parts[0] instanceof Uint16Array ? new Uint16Array(total) : new Float32Array(total);
    let off = 0;
    for (const x of parts) {
      features.set(x, off);
      off += x.length;
    }
    return { features, ms: performance.now() - t0 };
  }

  /** Token embeddings [1, n, hidden] for the given ids. */
  async embed(ids: readonly number[], rows = 1): Promise<ort.Tensor> {
    const out = await this.run("embed_tokens", {
      input_ids: new ort.Tensor("int64", BigInt64Array.from(ids, BigInt), [rows, ids.length / rows]),
    });
    return out.inputs_embeds!;
  }

  /** The embedded prompt with the image features written over the `<image>` positions. */
  async promptEmbeddings(p: PreparedInput, features: Float32Array | Uint16Array): Promise<ort.Tensor> {
    const embeds = await this.embed(p.inputIds);
    const hidden = embeds.dims[2]!;
    const data = embeds.data as Float32Array | Uint16Array;
    if (features.length !== p.imageTokens * hidden) {
      throw new Error(`vision encoder gave ${features.length / hidden} feature rows for ${p.imageTokens} image tokens`);
    }
    let k = 0;
    p.inputIds.forEach((id, pos) => {
      if (id !== this.special.imageTokenId) return;
      data.set(features.subarray(k * hidden, (k + 1) * hidden), pos * hidden);
      k++;
    });
    return embeds;
  }

  /** One decoder call. `mask` is [rows, past + seq] of 0/1, `positions` [rows, seq]. */
  async decode(
    embeds: ort.Tensor,
    mask: BigInt64Array,
    positions: BigInt64Array,
    cache: KvCache,
  ): Promise<{ logits: ort.Tensor; cache: KvCache }> {
    const [rows, seq] = embeds.dims as [number, number];
    const out = await this.run("decoder_model_merged", {
      inputs_embeds: embeds,
      attention_mask: new ort.Tensor("int64", mask, [rows, mask.length / rows]),
      position_ids: new ort.Tensor("int64", positions, [rows, seq]),
      ...cacheFeeds(cache),
    });
    return { logits: out.logits!, cache: cacheFromOutputs(out, this.dims.layers) };
  }

  emptyCache(): KvCache {
    return emptyCache(this.dims.layers, this.dims.kvHeads, this.dims.headDim, this.dims.floatType);
  }

  /** Vision encoder, merge and the prompt's decoder pass at batch 1. */
  async prefill(p: PreparedInput): Promise<Prefill> {
    const { features, ms: visionMs } = await this.encodeImage(p);
    const t0 = performance.now();
    const embeds = await this.promptEmbeddings(p, features);
    const n = p.inputIds.length;
    const { logits, cache } = await this.decode(
      embeds,
      new BigInt64Array(n).fill(1n),
      BigInt64Array.from({ length: n }, (_, i) => BigInt(i)),
      this.emptyCache(),
    );
    const vocab = logits.dims[2]!;
    const last = await readFloat32(logits, (n - 1) * vocab, n * vocab);
    return { cache, logits: last, length: n, visionMs, prefillMs: performance.now() - t0 };
  }

  decodeText(ids: readonly number[]): string {
    // A byte-fallback token can decode to U+0000: never text, and PostgreSQL's text type refuses it.
    return this.processor.tokenizer!.decode([...ids], { skip_special_tokens: true }).replaceAll("\u0000", "");
  }

  /**
   * Describes the images as one batch (images x beams). An input that `hooks.dropped` reports
   * leaves the batch (before its prefill, or at the next step) and gets null.
   */
  async describe(inputs: DescribeInput[], params: EngineParams, hooks: EngineHooks = {}): Promise<(DescribeOutput | null)[]> {
    if (inputs.length === 0) return [];
    const started = performance.now();
    const dropped = (i: number) => hooks.dropped?.(i) ?? false;
    // Inputs still in the batch, by position in `inputs`.
    const live: { index: number; prepared: PreparedInput; prefill: Prefill }[] = [];
    try {
      for (const [index, input] of inputs.entries()) {
        hooks.poll?.();
        hooks.signal?.throwIfAborted();
        if (dropped(index)) continue;
        const prepared = await this.prepare(input.imagePath, promptWithContext(params.prompt, input.context), params.imageSplitting, input.instruction);
        live.push({ index, prepared, prefill: await this.prefill(prepared) });
      }
    } catch (err) {
      // A bad image or an abort after some prefills: their caches (on a GPU) are freed here.
      for (const l of live) releaseCache(l.prefill.cache);
      throw err;
    }
    const t0 = performance.now();
    const { hypotheses, decodeShares } = await this.search(
      live.map((l) => l.prepared.inputIds),
      live.map((l) => l.prefill),
      params,
      {
        ...hooks,
        onProgress: hooks.onProgress && ((item, tokens) => hooks.onProgress!(live[item]!.index, tokens)),
        dropped: (item) => dropped(live[item]!.index),
      },
    );
    const decodeMs = performance.now() - t0;
    const batchMs = performance.now() - started;
    const out: (DescribeOutput | null)[] = inputs.map(() => null);
    live.forEach(({ index, prepared: p, prefill: f }, item) => {
      if (dropped(index)) return;
      const best = hypotheses[item]![0];
      if (!best) throw new Error(`beam search returned no hypothesis for image ${index}`);
      const ids = best.tokens;
      const rawText = this.decodeText(ids);
      const { text, trimmed } = finishText(rawText, { cleanMarkdown: params.cleanMarkdown });
      const decodeShare = decodeMs * decodeShares[item]!;
      out[index] = {
        text,
        rawText,
        finishReason: best.finishReason,
        trimmed,
        prompt: p.promptText,
        imageHash: p.imageHash,
        batchSize: inputs.length,
        decoding: decodingOf(params.numBeams),
        promptTokens: p.inputIds.length,
        imageTokens: p.imageTokens,
        generatedTokens: ids.length,
        generatedTokenIds: ids,
        sequenceScore: best.score,
        timings: {
          preprocessMs: p.preprocessMs,
          visionMs: f.visionMs,
          prefillMs: f.prefillMs,
          decodeMs: decodeShare,
          totalMs: p.preprocessMs + f.visionMs + f.prefillMs + decodeShare,
          batchMs,
        },
        params: { ...params },
        model: this.model,
      } satisfies DescribeOutput;
    });
    return out;
  }

  /**
   * Beam search over prefilled images: the first step copies each image's cache to its beams;
   * later steps reorder rows by parent (nothing copied when the parents are the identity), on the
   * host or on the device (cache-reorder.ts). The prefills' caches are consumed: released when the
   * search ends, as is every cache a step leaves behind (on a GPU nothing else frees them).
   */
  async search(promptIds: number[][], prefills: Prefill[], params: EngineParams, hooks: EngineHooks = {}) {
    const vocab = this.dims.vocab;
    const prefillLogits = new Float32Array(prefills.length * vocab);
    prefills.forEach((f, i) => prefillLogits.set(f.logits, i * vocab));

    // Per row: which image, its prompt length, tokens fed so far; the batch's common cache length.
    let rowItem: number[] = prefills.map((_, i) => i);
    let rowFed: number[] = prefills.map(() => 0);
    let cache: KvCache | null = null;
    const lengths = prefills.map((f) => f.length);
    // Rows x steps per image: its share of the shared decode time.
    const rowSteps = prefills.map(() => 0);

    // The last step's logits, onnxruntime's own buffer: the search has read them when it asks for
    // the next step, and they are freed then (788 KB a step for 4 beams, else left to the collector).
    let lastLogits: Float32Array | null = null;
    const step = async (parents: Int32Array, tokens: Int32Array): Promise<Float32Array> => {
      const stepStart = performance.now();
      if (lastLogits) freeBuffer(lastLogits);
      const nextItem = Array.from(parents, (p) => rowItem[p]!);
      const nextFed = Array.from(parents, (p) => rowFed[p]! + 1);
      const t0 = performance.now();
      // Before the first step row i is prefill i (rowItem is the identity), each prefill one row.
      const r =
        cache === null
          ? await this.reorder.stack(prefills.map((f) => f.cache), parents, Math.max(...nextItem.map((i) => lengths[i]!)))
          : await this.reorder.reorder(cache, parents);
      // The prefills' caches are needed only by the first stack: free them (on a GPU) at once.
      for (const old of cache === null ? prefills.map((f) => f.cache) : [cache]) releaseCache(old, r.cache);
      cache = r.cache;
      this.stats.copiedRows += r.copiedRows;
      this.stats.reorderMs += performance.now() - t0;
      rowItem = nextItem;
      rowFed = nextFed;
      for (const item of rowItem) rowSteps[item]!++;
      const rows = parents.length;
      const past = cache.length;
      const mask = new BigInt64Array(rows * (past + 1));
      const positions = new BigInt64Array(rows);
      for (let r = 0; r < rows; r++) {
        // Left padding: the row's prompt and the tokens already cached fill the last `real` cache
        // positions; the new token's column (the last) is always attended.
        const promptLen = lengths[rowItem[r]!]!;
        const real = promptLen + rowFed[r]! - 1;
        mask.fill(1n, r * (past + 1) + (past - real), (r + 1) * (past + 1));
        positions[r] = BigInt(promptLen + rowFed[r]! - 1);
      }
      const embeds = await this.embed(Array.from(tokens), rows);
      const out = await this.decode(embeds, mask, positions, cache);
      releaseCache(cache, out.cache);
      cache = out.cache;
      const logits = await readFloat32(out.logits);
      lastLogits = logits;
      this.stats.stepMs += performance.now() - stepStart;
      return logits;
    };

    const stop =
      params.targetWords > 0 ? targetLengthStop((ids) => this.decodeText(ids), params.targetWords) : undefined;
    // Greedy search for one beam, beam search for more (as Hugging Face's generate()).
    let hypotheses: Hypothesis[][];
    try {
      ({ hypotheses } = await decodeTokens({
        items: promptIds.map((ids) => ({ promptIds: ids })),
        prefillLogits,
        vocabSize: vocab,
        params: {
          numBeams: params.numBeams,
          maxNewTokens: params.maxNewTokens,
          minNewTokens: params.minNewTokens,
          lengthPenalty: params.lengthPenalty,
          earlyStopping: params.earlyStopping,
          noRepeatNgramSize: params.noRepeatNgramSize,
          repetitionPenalty: params.repetitionPenalty,
          numReturnSequences: params.numReturnSequences ?? 1,
          eosTokenIds: this.special.eosTokenIds,
          badWordsIds: this.special.badWordsIds,
          ...(stop ? { stop } : {}),
        },
        step,
        onStep: (item, tokens) => {
          hooks.onProgress?.(item, tokens);
          hooks.poll?.();
        },
        ...(hooks.dropped ? { dropped: hooks.dropped } : {}),
        ...(hooks.signal ? { signal: hooks.signal } : {}),
      }));
    } finally {
      for (const f of prefills) releaseCache(f.cache);
      if (cache !== null) releaseCache(cache);
    }
    const allSteps = rowSteps.reduce((a, b) => a + b, 0);
    const decodeShares = rowSteps.map((n) => (allSteps > 0 ? n / allSteps : 1 / prefills.length));
    return { hypotheses, decodeShares };
  }
}

/** How onnxruntime (CPU arena, CUDA, WebGPU) words an allocation that failed. */
const ORT_OUT_OF_MEMORY = /Failed to allocate memory|bad_alloc|out of memory|cudaErrorMemoryAllocation|CUBLAS_STATUS_ALLOC_FAILED/i;

function rowsOf(feeds: Record<string, ort.Tensor>): number {
  return Object.values(feeds)[0]?.dims[0] ?? 1;
}

/** The instruction with the artwork's facts, when given (DESCRIBE_PROMPT_CONTEXT). */
export function promptWithContext(prompt: string, context: DescribeInput["context"]): string {
  if (!context) return prompt;
  const facts = [
    context.title && `Title: ${context.title}.`,
    context.creator && `Creator: ${context.creator}.`,
    context.date && `Date: ${context.date}.`,
    context.medium && `Medium: ${context.medium}.`,
  ].filter(Boolean);
  return facts.length ? `${facts.join(" ")}\n${prompt}` : prompt;
}

function readJson(path: string): Record<string, any> | null {
  if (!existsSync(path)) return null;
  return JSON.parse(readFileSync(path, "utf8")) as Record<string, any>;
}

