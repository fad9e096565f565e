/**
 * npx tsx bench/embed.ts — how long embedding N descriptions takes.
 *
 * Writes the 384-dimension synthetic embedding model (`models synth --preset embed-e5-small`:
 * multilingual-e5-small's width, 12 layers and 12 heads, so its compute per token is the real
 * model's), seeds N active works with 150-word descriptions, and runs what `artdesc embed --missing`
 * runs: EMBED_BATCH descriptions per call to the embedding thread, vectors stored in ArtworkEmbedding.
 * Prints the total, per description and per batch, and the load average (the machine may be shared).
 *
 * Options (environment): BENCH_EMBED_N (200), EMBED_BATCH (32), ORT_THREADS (0: onnxruntime's choice).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../src/config.js";
import { closeDb, createDb } from "../src/db.js";
import { synthEmbedModel } from "../src/describe/models/embed-synth.js";
import { openEmbedder } from "../src/embed/embedder.js";
import { embedMissing } from "../src/embed/jobs.js";
import { migrate } from "../src/store/migrate.js";
import { insertBulkArtworks } from "../test/support/bulk.js";

const N = Number(process.env.BENCH_EMBED_N ?? 200);
const MODEL_ID = "artdesc/synth-embed-e5-small";
const dir = mkdtempSync(join(tmpdir(), "artdesc-bench-embed-"));
try {
  const file = join(dir, "bench.db");
  migrate(file);
  insertBulkArtworks(file, N, { words: 150, searchIndex: false });
  synthEmbedModel({ preset: "embed-e5-small", outDir: join(dir, "models", MODEL_ID) });
  const config = loadConfig({ ...process.env, DATABASE_URL: `file:${file}`, MODEL_DIR: join(dir, "models"), EMBED_MODEL_ID: MODEL_ID });
  const db = await createDb(config.DATABASE_URL);
  const loadStart = performance.now();
  const embedder = await openEmbedder(config);
  console.log(`model loaded in its thread in ${((performance.now() - loadStart) / 1000).toFixed(1)} s: ${embedder.info.dims} dimensions`);
  const batches: number[] = [];
  let last = performance.now();
  const started = last;
  const total = await embedMissing(db, embedder, config.EMBED_BATCH, () => {
    const now = performance.now();
    batches.push(now - last);
    last = now;
  });
  const ms = performance.now() - started;
  batches.sort((a, b) => a - b);
  console.log(
    `embedded ${total.embedded} 150-word descriptions in ${(ms / 1000).toFixed(1)} s: ${(ms / total.embedded).toFixed(1)} ms each, ` +
      `batches of ${config.EMBED_BATCH} take ${batches[Math.floor(batches.length / 2)]!.toFixed(0)} ms (median), ${batches.at(-1)!.toFixed(0)} ms (slowest)`,
  );
  console.log(`load average: ${loadavg().map((x) => x.toFixed(1)).join(", ")} on ${cpus().length} cores`);
  await embedder.close();
  await closeDb(db);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
