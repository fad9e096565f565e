import { createHash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
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

export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    createReadStream(file)
      .on("data", (chunk) => hash.update(chunk))
      .on("error", reject)
      .on("end", () => resolve(hash.digest("hex")));
  });
}
