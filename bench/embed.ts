/**
 * npm run bench:embed — how long embedding takes: one search query at a time, and N descriptions.
 *
 * Writes the 384-dimension synthetic embedding model (`models synth --preset embed-e5-small`:
 * multilingual-e5-small's width, 12 layers and 12 heads, so its compute per token is the real
 * model's, and a subword vocabulary that cuts texts into about as many tokens as the real one's)
 * and seeds N active works with 150-word descriptions. Then:
 *  - prints how many tokens a bench:search query and a description are;
 *  - embeds BENCH_EMBED_QUERIES two-word queries one after another in an embedding thread, as the
 *    API's query embedder does, once per intra-op thread count in BENCH_QUERY_THREADS: latency
 *    percentiles and the process's CPU time per query; with the first thread count, also 2, 4 and 8
 *    queries per run (as queries that waited for the thread go);
 *  - runs what `artdesc embed --missing` runs: EMBED_BATCH descriptions per call to the embedding
 *    thread (ORT_THREADS intra-op threads), vectors stored in ArtworkEmbedding, and extrapolates to
 *    20,000 descriptions.
 * Prints the load average with each figure (the machine may be shared).
 *
 * Options (environment): BENCH_EMBED_N (200; 0 skips the descriptions), EMBED_BATCH (32),
 * ORT_THREADS (0: onnxruntime's choice), BENCH_EMBED_QUERIES (200; 0 skips the queries),
 * BENCH_QUERY_THREADS ("1,2"), EMBED_MODEL_DTYPE (the model file used, written by synth: fp32, quantized, int8, uint8 or q4).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { AutoTokenizer, env } from "@huggingface/transformers";
import { DEFAULT_EMBED_MODEL_DTYPE, loadConfig } from "../src/config.js";
import { closeDb, createDb } from "../src/db.js";
import { type EmbedSynthDtype, synthEmbedModel } from "../src/describe/models/embed-synth.js";
import { openEmbedder } from "../src/embed/embedder.js";
import { embedMissing } from "../src/embed/jobs.js";
import { embedConventions } from "../src/embed/model-files.js";
import { migrate } from "../src/store/migrate.js";
import { ART_WORDS, bulkText, insertBulkArtworks } from "../test/support/bulk.js";

const N = Number(process.env.BENCH_EMBED_N ?? 200);
const QUERIES = Number(process.env.BENCH_EMBED_QUERIES ?? 200);
const QUERY_THREADS = (process.env.BENCH_QUERY_THREADS ?? "1,2").split(",").map(Number);
const MODEL_ID = "artdesc/synth-embed-e5-small";
/** The embedding model's file the API loads (EMBED_MODEL_DTYPE, as the service reads it): synth writes it. */
const EMBED_DTYPE = (process.env.EMBED_MODEL_DTYPE ?? DEFAULT_EMBED_MODEL_DTYPE) as EmbedSynthDtype;
const SEARCH_BENCH_ARTWORKS = 20_000;

const load = () => `load ${loadavg().map((x) => x.toFixed(1)).join(", ")} on ${cpus().length} cores`;
const ms = (x: number) => x.toFixed(1);
const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

/** bench:search's queries: pairs of descriptive words, in a fixed shuffled order. */
function queries(n: number): string[] {
  const pairs = ART_WORDS.flatMap((a) => ART_WORDS.filter((b) => b !== a).map((b) => `${a} ${b}`));
  return Array.from({ length: n }, (_, i) => pairs[(i * 7919) % pairs.length]!);
}

const dir = mkdtempSync(join(tmpdir(), "artdesc-bench-embed-"));
try {
  const modelDir = join(dir, "models");
  synthEmbedModel({ preset: "embed-e5-small", outDir: join(modelDir, MODEL_ID), dtype: EMBED_DTYPE });
  const file = join(dir, "bench.db");
  migrate(file);
  const config = loadConfig({ ...process.env, DATABASE_URL: `file:${file}`, MODEL_DIR: modelDir, EMBED_MODEL_ID: MODEL_ID });

  // Tokens, counted by the model's own tokenizer with the e5 prefixes (and [CLS], [SEP]).
  env.localModelPath = `${modelDir}/`;
  env.allowLocalModels = true;
  env.allowRemoteModels = false;
  const tokenizer = await AutoTokenizer.from_pretrained(MODEL_ID, { local_files_only: true });
  const { queryPrefix, passagePrefix } = embedConventions(MODEL_ID);
  const count = (text: string) => tokenizer.encode(text).length;
  const queryTokens = queries(1_000).map((q) => count(queryPrefix + q));
  const descriptionTokens = Array.from({ length: 200 }, (_, i) => count(passagePrefix + bulkText(i + 1, 150)));
  console.log(
    `tokens: a two-word query ${ms(mean(queryTokens))} (at most ${Math.max(...queryTokens)}), ` +
      `a 150-word description ${ms(mean(descriptionTokens))} (at most ${Math.max(...descriptionTokens)})`,
  );

  for (const threads of QUERIES > 0 ? QUERY_THREADS : []) {
    const embedder = await openEmbedder(config, threads);
    const texts = queries(QUERIES + 20);
    for (const q of texts.slice(0, 20)) await embedder.embed([q], "query");
    const latencies: number[] = [];
    const cpu = process.cpuUsage();
    const started = performance.now();
    for (const q of texts.slice(20)) {
      const t = performance.now();
      await embedder.embed([q], "query");
      latencies.push(performance.now() - t);
    }
    const wall = performance.now() - started;
    const used = process.cpuUsage(cpu);
    latencies.sort((a, b) => a - b);
    console.log(
      `one query at a time, ${threads} intra-op thread${threads === 1 ? "" : "s"}: p50 ${ms(quantile(latencies, 0.5))} ms, ` +
        `p90 ${ms(quantile(latencies, 0.9))} ms, p99 ${ms(quantile(latencies, 0.99))} ms; ` +
        `CPU ${ms((used.user + used.system) / 1000 / QUERIES)} ms per query (${ms(wall / QUERIES)} ms wall); ${load()}`,
    );
    // Queries that wait for the thread go together (QueryEmbedder): the cost per query of a run of b.
    for (const b of threads === QUERY_THREADS[0] ? [2, 4, 8] : []) {
      const cpuB = process.cpuUsage();
      const startedB = performance.now();
      const runs = Math.max(1, Math.floor(QUERIES / b));
      for (let i = 0; i < runs; i++) await embedder.embed(texts.slice(20 + i * b, 20 + (i + 1) * b), "query");
      const usedB = process.cpuUsage(cpuB);
      console.log(
        `  ${b} queries per run: ${ms((performance.now() - startedB) / (runs * b))} ms wall and ${ms((usedB.user + usedB.system) / 1000 / (runs * b))} ms CPU per query; ${load()}`,
      );
    }
    await embedder.close();
  }

  if (N > 0) {
    insertBulkArtworks(file, N, { words: 150, searchIndex: false });
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
    const took = performance.now() - started;
    batches.sort((a, b) => a - b);
    const each = took / total.embedded;
    console.log(
      `embedded ${total.embedded} 150-word descriptions in ${(took / 1000).toFixed(1)} s (ORT_THREADS ${config.ORT_THREADS}): ${ms(each)} ms each, ` +
        `batches of ${config.EMBED_BATCH} take ${batches[Math.floor(batches.length / 2)]!.toFixed(0)} ms (median), ${batches.at(-1)!.toFixed(0)} ms (slowest); ` +
        `${SEARCH_BENCH_ARTWORKS.toLocaleString("en")} would take about ${((each * SEARCH_BENCH_ARTWORKS) / 60_000).toFixed(0)} min; ${load()}`,
    );
    await embedder.close();
    await closeDb(db);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
