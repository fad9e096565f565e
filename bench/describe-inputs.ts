import { mkdirSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { loadConfig } from "../src/config.js";
import type { EngineParams } from "../src/describe/engine.js";
import { defaultGenerationParams } from "../src/describe/types.js";

/** What bench:describe and bench:devices describe: the same seeded images and parameters. */

const imgDir = join(os.tmpdir(), "artdesc-bench");

/** A w x h JPEG of a seeded pattern in the benchmarks' temp folder (written again each time). */
export async function benchImage(name: string, w: number, h: number, seed: number): Promise<string> {
  mkdirSync(imgDir, { recursive: true });
  const data = Buffer.alloc(w * h * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * (31 + seed) + seed * 97) % 251;
  const file = join(imgDir, name);
  await sharp(data, { raw: { width: w, height: h, channels: 3 } }).jpeg().toFile(file);
  return file;
}

/** The configured defaults (DESCRIBE_* unset), greedy, with exactly `tokens` generated per image. */
export function baseParams(tokens: number): EngineParams {
  return { ...defaultGenerationParams(loadConfig({})), numBeams: 1, maxNewTokens: tokens, minNewTokens: tokens, targetWords: 0, imageSplitting: false };
}
