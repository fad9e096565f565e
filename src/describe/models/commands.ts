import { resolve } from "node:path";
import { type Config, ConfigError, parseDtypeConfig } from "../../config.js";
import { checkModelFolder, formatDtypes, moduleDtypes } from "./contract.js";
import { PRESET_NAMES, type PresetName } from "./presets.js";
import { formatBytes, progressPrinter } from "./progress.js";
import { pullModel } from "./pull.js";
import { DEFAULT_EMBED_SYNTH_DTYPES, EMBED_PRESET_NAMES, EMBED_SYNTH_DTYPES, type EmbedPresetName, type EmbedSynthDtype, isEmbedPreset, synthEmbedModel } from "./embed-synth.js";
import { embedModelPresence, pullEmbedModel } from "../../embed/model-files.js";
import { SYNTH_DTYPES, type SynthDtype, synthModel } from "./synth.js";

/** The `artdesc models ...` commands; cli.ts only parses flags and calls these. */

type Out = { write(s: string): unknown; isTTY?: boolean; columns?: number };

export interface SynthCommandOptions {
  preset: string;
  out: string;
  /** Default: fp32 for the VLM presets; fp32 and EMBED_MODEL_DTYPE's default for the embedding ones. */
  dtype?: string;
  seed: string;
}

export function synthCommand(o: SynthCommandOptions, out: Out): void {
  if (isEmbedPreset(o.preset)) return synthEmbedCommand(o, out);
  if (!(PRESET_NAMES as readonly string[]).includes(o.preset)) {
    throw new ConfigError([`--preset=${JSON.stringify(o.preset)}: use one of ${[...PRESET_NAMES, ...EMBED_PRESET_NAMES].join(", ")}`]);
  }
  const dtypes = (o.dtype ?? "fp32").split(",").map((s) => s.trim());
  const bad = dtypes.filter((d) => !(SYNTH_DTYPES as readonly string[]).includes(d));
  if (bad.length || dtypes.length === 0) throw new ConfigError([`--dtype=${JSON.stringify(o.dtype)}: synth writes ${SYNTH_DTYPES.join(", ")} (comma-separated for several)`]);
  if (!/^\d+$/.test(o.seed) || Number(o.seed) > 0xffffffff) throw new ConfigError([`--seed=${JSON.stringify(o.seed)}: must be an integer 0..4294967295`]);
  const result = synthModel({
    preset: o.preset as PresetName,
    outDir: resolve(o.out),
    dtype: dtypes as SynthDtype[],
    seed: Number(o.seed),
    onFile: (file, bytes, ms) => out.write(`${file}: ${formatBytes(bytes)} in ${(ms / 1000).toFixed(1)} s\n`),
  });
  const total = result.files.reduce((a, f) => a + f.bytes, 0);
  out.write(`${result.dir}: ${o.preset} model, ${formatBytes(total)}, ${(result.ms / 1000).toFixed(1)} s\n`);
}

/** `synth --preset embed-*`: an embedding model (onnx/model.onnx, model_quantized.onnx ... per --dtype). */
function synthEmbedCommand(o: SynthCommandOptions, out: Out): void {
  const dtypes = o.dtype === undefined ? DEFAULT_EMBED_SYNTH_DTYPES : o.dtype.split(",").map((s) => s.trim());
  const bad = dtypes.filter((d) => !(EMBED_SYNTH_DTYPES as readonly string[]).includes(d));
  if (bad.length || dtypes.length === 0) {
    throw new ConfigError([`--dtype=${JSON.stringify(o.dtype)}: the embedding presets are written in ${EMBED_SYNTH_DTYPES.join(", ")} (comma-separated for several)`]);
  }
  if (!/^\d+$/.test(o.seed) || Number(o.seed) > 0xffffffff) throw new ConfigError([`--seed=${JSON.stringify(o.seed)}: must be an integer 0..4294967295`]);
  const result = synthEmbedModel({
    preset: o.preset as EmbedPresetName,
    outDir: resolve(o.out),
    dtype: dtypes as EmbedSynthDtype[],
    seed: Number(o.seed),
    onFile: (file, bytes, ms) => out.write(`${file}: ${formatBytes(bytes)} in ${(ms / 1000).toFixed(1)} s\n`),
  });
  const total = result.files.reduce((a, f) => a + f.bytes, 0);
  out.write(`${result.dir}: ${o.preset} embedding model, ${formatBytes(total)}, ${(result.ms / 1000).toFixed(1)} s\n`);
}

export interface PullCommandOptions {
  model?: string;
  revision?: string;
  dtype?: string;
  /** The embedding model (EMBED_MODEL_ID) instead of the description model. */
  embed?: boolean;
}

export async function pullCommand(o: PullCommandOptions, config: Config, out: Out): Promise<boolean> {
  if (o.embed) return pullEmbedCommand(o, config, out);
  const modelId = o.model ?? config.MODEL_ID;
  if (!/^[\w.-]+\/[\w.-]+$/.test(modelId)) throw new ConfigError([`--model=${JSON.stringify(modelId)}: must look like owner/name`]);
  const dtypes = moduleDtypes(o.dtype === undefined ? config.MODEL_DTYPE : parseDtypeConfig(o.dtype), config.MODEL_DEVICE);
  const revision = o.revision ?? config.MODEL_REVISION;
  out.write(`Pulling ${modelId}@${revision} (${formatDtypes(dtypes)}) from ${config.MODEL_HUB_URL} into ${config.MODEL_DIR}\n`);
  const result = await pullModel({
    hubUrl: config.MODEL_HUB_URL,
    modelId,
    revision,
    dtypes,
    modelDir: config.MODEL_DIR,
    onProgress: progressPrinter(out),
    idleTimeoutMs: config.HTTP_TIMEOUT_MS,
    retries: config.HTTP_MAX_RETRIES,
  });
  const problems = checkModelFolder(result.dir, dtypes);
  const fetched = result.files.filter((f) => !f.skipped).reduce((a, f) => a + f.bytes, 0);
  out.write(`${result.dir}: ${result.files.length} files (${formatBytes(fetched)} fetched), commit ${result.commit ?? "not reported by the hub"}\n`);
  for (const p of problems) out.write(`contract: ${p}\n`);
  return problems.length === 0;
}

async function pullEmbedCommand(o: PullCommandOptions, config: Config, out: Out): Promise<boolean> {
  const modelId = o.model ?? config.EMBED_MODEL_ID;
  if (!/^[\w.-]+\/[\w.-]+$/.test(modelId)) throw new ConfigError([`--model=${JSON.stringify(modelId)}: must look like owner/name`]);
  const dtypes = ["fp32", "fp16", "quantized", "int8", "uint8", "q4"] as const;
  if (o.dtype !== undefined && !(dtypes as readonly string[]).includes(o.dtype)) {
    throw new ConfigError([`--dtype=${JSON.stringify(o.dtype)}: the embedding model's file is one of ${dtypes.join(", ")}`]);
  }
  const embedConfig = { ...config, EMBED_MODEL_ID: modelId, EMBED_MODEL_DTYPE: (o.dtype ?? config.EMBED_MODEL_DTYPE) as Config["EMBED_MODEL_DTYPE"] };
  const revision = o.revision ?? config.EMBED_MODEL_REVISION;
  out.write(`Pulling embedding model ${modelId}@${revision} (${embedConfig.EMBED_MODEL_DTYPE}) from ${config.MODEL_HUB_URL} into ${config.MODEL_DIR}\n`);
  const result = await pullEmbedModel(
    { hubUrl: config.MODEL_HUB_URL, onProgress: progressPrinter(out), idleTimeoutMs: config.HTTP_TIMEOUT_MS, retries: config.HTTP_MAX_RETRIES },
    embedConfig,
    { modelId, revision },
  );
  const fetched = result.files.filter((f) => !f.skipped).reduce((a, f) => a + f.bytes, 0);
  out.write(`${result.dir}: ${result.files.length} files (${formatBytes(fetched)} fetched), commit ${result.commit ?? "not reported by the hub"}\n`);
  const missing = embedModelPresence(embedConfig).missing;
  for (const m of missing) out.write(`missing: ${m}\n`);
  if (modelId !== config.EMBED_MODEL_ID) out.write(`Set EMBED_MODEL_ID=${modelId} to use it.\n`);
  return missing.length === 0;
}
