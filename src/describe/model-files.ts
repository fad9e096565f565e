import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { externalDataFiles, type ModuleDtypes, modelFiles, OPTIONAL_FILES } from "./models/contract.js";
import type { ModelFileHash } from "../generation/reproduction.js";

/**
 * The files a model is loaded from, with their sha256: configs, tokenizer, processor, the three
 * ONNX graphs of the dtypes in use and their external weight data. Hashed once per model load
 * (about 1 s per GB), recorded with every description, and compared by `describe --like`.
 */
export async function hashModelFiles(dir: string, dtypes: ModuleDtypes): Promise<ModelFileHash[]> {
  const present = OPTIONAL_FILES.filter((f) => existsSync(join(dir, f)));
  const paths = [...new Set([...modelFiles(dtypes), ...present, ...externalDataFiles(dir, dtypes)])].sort();
  const out: ModelFileHash[] = [];
  for (const path of paths) out.push({ path, sha256: await sha256File(join(dir, path)) });
  return out;
}

/** Bytes read per call by sha256File. */
const HASH_CHUNK = 1024 * 1024;

/**
 * The file's sha256 (hex), read through one reused buffer; `signal` stops it between reads. A read stream hands out a fresh buffer
 * per chunk, and V8 frees those only when it collects, by a measure of external memory that the
 * model's own buffers, read just before, had raised: hashing 1.9 GB of fp32 weights that way after
 * a load raised the load's peak resident set by about 500 MB (docs/describe.md, "Memory").
 */
export async function sha256File(file: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash("sha256");
  const handle = await open(file, "r");
  try {
    const buffer = Buffer.allocUnsafe(HASH_CHUNK);
    for (;;) {
      signal?.throwIfAborted();
      const { bytesRead } = await handle.read(buffer, 0, HASH_CHUNK, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
    }
  } finally {
    await handle.close();
  }
  return hash.digest("hex");
}
