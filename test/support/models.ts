import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { synthModel, type SynthDtype } from "../../src/describe/models/synth.js";

export interface TinyModel {
  /** The model folder (config, tokenizer, onnx/...). */
  dir: string;
  /** Its parent and name, for transformers.js: env.localModelPath = root, from_pretrained(name). */
  root: string;
  name: string;
  remove(): void;
}

/**
 * Writes the `tiny` synthetic model (about 0.1 s) into a fresh temporary folder. Same seed,
 * same bytes: tests may rely on the weights being identical between runs.
 */
export function createTinyModel(options: { dtype?: SynthDtype | SynthDtype[]; seed?: number } = {}): TinyModel {
  const root = mkdtempSync(join(tmpdir(), "artdesc-model-"));
  const name = "tiny";
  const dir = join(root, name);
  synthModel({ preset: "tiny", outDir: dir, dtype: options.dtype ?? ["fp32", "fp16"], seed: options.seed ?? 1 });
  return { dir, root, name, remove: () => rmSync(root, { recursive: true, force: true }) };
}
