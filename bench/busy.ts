/**
 * Is the API responsive while the worker describes? `npm run bench:busy` starts `artdesc start`
 * (API + worker in one process) on a temporary database with the `smolvlm-500m` synthetic model
 * (SmolVLM-500M's shapes, random weights: the same compute as the real model), queues long
 * descriptions, and measures a simple `artworks` query with autocannon at 8 connections while a
 * description runs. It passes when p99 < 100 ms.
 *
 * It first measures the same query with the worker idle (model loaded, nothing queued), so the
 * busy figures can be read against what the machine gives without a description.
 *
 * The model is synthesized once into models/synth/smolvlm-500m (git-ignored, about 2 GB, a minute
 * or two) and reused. Options (environment): BENCH_SECONDS (default 15), BENCH_CONNECTIONS (8),
 * ORT_THREADS (default cores - 1, at least 1).
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import autocannon from "autocannon";
import sharp from "sharp";
import { closeDb, createDb } from "../src/db.js";
import { synthModel } from "../src/describe/models/synth.js";
import { migrate } from "../src/store/migrate.js";
import { freePort, httpGql, waitUntil } from "../test/support/processes.js";
import { BUSY_BENCH_QUERY, BUSY_JOB_NUMBERS, BUSY_JOB_PROGRESS, BUSY_MODEL_STATUS, BUSY_REGENERATE, BUSY_SUCCEEDED_JOBS } from "./queries.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8);
const CORES = availableParallelism();
const ORT_THREADS = Number(process.env.ORT_THREADS ?? Math.max(1, CORES - 1));
const TOKEN = "bench-token-0123456789abcdef";
const MODEL_ROOT = resolve("models");
const MODEL_ID = "synth/smolvlm-500m";
const QUERY = BUSY_BENCH_QUERY;

const work = mkdtempSync(join(tmpdir(), "artdesc-bench-"));
let child: ReturnType<typeof spawn> | null = null;

/** The bench's GraphQL calls, with the token the mutations need. */
const gql = (url: string, query: string, variables: Record<string, unknown> = {}) =>
  httpGql(url, query, variables, { authorization: `Bearer ${TOKEN}` }) as Promise<{ data: any }>;

const LOAD_BEFORE = loadavg().map((x) => x.toFixed(1)).join(" ");

function measure(url: string): Promise<autocannon.Result> {
  return autocannon({
    url,
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query: QUERY }),
    connections: CONNECTIONS,
    duration: SECONDS,
  });
}

async function main(): Promise<number> {
  // 1. The model (synthesized once, then reused).
  const modelDir = join(MODEL_ROOT, MODEL_ID);
  if (!existsSync(join(modelDir, "onnx", "decoder_model_merged.onnx"))) {
    const t = performance.now();
    synthModel({ preset: "smolvlm-500m", outDir: modelDir, dtype: "fp32" });
    console.log(`synthesized smolvlm-500m (fp32) into ${modelDir} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }

  // 2. A database with 200 works, each with a 1024-pixel image.
  const file = join(work, "bench.db");
  const imageDir = join(work, "images");
  mkdirSync(join(imageDir, "bench"), { recursive: true });
  migrate(file);
  const db = await createDb(`file:${file}`);
  await sharp({ create: { width: 1024, height: 768, channels: 3, background: { r: 120, g: 90, b: 60 } } })
    .composite([{ input: { create: { width: 400, height: 300, channels: 3, background: { r: 20, g: 40, b: 160 } } }, left: 200, top: 150 }])
    .jpeg()
    .toFile(join(imageDir, "bench/painting.jpg"));
  const creator = await db.creator.create({ data: { qid: "Q5432", label: "Francisco Goya" } });
  for (let i = 1; i <= 200; i++) {
    const a = await db.artwork.create({
      data: {
        qid: `Q${910000 + i}`,
        qidNumber: 910000 + i,
        title: `Work ${i}`,
        titles: JSON.stringify({ en: `Work ${i}` }),
        inception: `${1770 + (i % 50)}-01-01T00:00:00Z`,
        inceptionYear: 1770 + (i % 50),
        creators: { create: [{ creatorId: creator.id }] },
      },
    });
    await db.image.create({ data: { artworkId: a.id, fileTitle: `File:Work ${i}.jpg`, isMain: true, localPath: "bench/painting.jpg", downloadedAt: new Date() } });
  }
  await closeDb(db);

  // 3. artdesc start.
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/graphql`;
  child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", "start"], {
    env: {
      PATH: process.env.PATH,
      DATABASE_URL: `file:${file}`,
      IMAGE_DIR: imageDir,
      MODEL_DIR: MODEL_ROOT,
      MODEL_ID,
      ORT_THREADS: String(ORT_THREADS),
      API_TOKEN: TOKEN,
      PORT: String(port),
      HOST: "127.0.0.1",
      LOG_LEVEL: "warn",
      SHUTDOWN_GRACE_S: "0",
      HEARTBEAT_INTERVAL_S: "1",
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const loadStarted = performance.now();
  // Until the worker says the model loaded, or that it cannot (then there is no point waiting).
  const loaded = await waitUntil(
    "the model to load",
    async () => {
      const r = await gql(url, BUSY_MODEL_STATUS);
      const m = r.data?.generationDefaults?.model;
      return ["loaded", "missing", "error"].includes(m?.modelStatus) ? m : null;
    },
    600_000,
    200,
  );
  if (loaded.modelStatus !== "loaded") throw new Error(`the model did not load (${loaded.modelStatus}): ${loaded.modelError}`);
  console.log(`model ${loaded.modelStatus} in ${((performance.now() - loadStarted) / 1000).toFixed(1)} s`);

  // 4. The same load with the worker idle: what this machine gives without a description.
  const idle = await measure(url);
  const idleState = await gql(url, BUSY_JOB_NUMBERS);
  if (idleState.data.jobs.edges.length !== 0) throw new Error("jobs ran during the idle measurement");

  // 5. Long descriptions: min = max new tokens, 2 beams; queue several so the window is busy.
  const params = { numBeams: 2, maxNewTokens: 512, minNewTokens: 512 };
  const jobs: string[] = [];
  for (const qid of ["Q910001", "Q910002", "Q910003"]) {
    const r = await gql(url, BUSY_REGENERATE, { id: qid, p: params });
    if (!r.data?.regenerateDescription?.id) throw new Error(`could not queue: ${JSON.stringify(r)}`);
    jobs.push(r.data.regenerateDescription.id);
  }
  const jobState = async () =>
    (await gql(url, BUSY_JOB_PROGRESS, { id: jobs[0] })).data.job as { status: string; progress: number };
  await waitUntil("the first description to start", async () => (await jobState()).status === "RUNNING", 120_000, 200);
  // Measure while it decodes (the longest phase), after the vision encoder and the prefill.
  await waitUntil("the first generated token", async () => (await jobState()).progress > 0, 300_000, 200);
  const before = await jobState();

  // 6. Measure while describing.
  const result = await measure(url);
  const after = await jobState();
  const done = await gql(url, BUSY_SUCCEEDED_JOBS);
  const finished = done.data.jobs.edges.length;

  const l = result.latency;
  const line = (name: string, r: autocannon.Result) =>
    `  ${name}: requests ${r.requests.total} (${r.requests.average.toFixed(0)}/s), non-2xx ${r.non2xx}, errors ${r.errors}; ` +
    `latency ms p50 ${r.latency.p50}, p90 ${r.latency.p90}, p99 ${r.latency.p99}, max ${r.latency.max}`;
  console.log(
    [
      "",
      `artworks(limit: 20) at ${CONNECTIONS} connections for ${SECONDS} s (smolvlm-500m synthetic, fp32, cpu)`,
      `  cores ${CORES}, load average before ${LOAD_BEFORE}, onnxruntime intra-op threads ${ORT_THREADS} (ORT_THREADS), WORKER_CONCURRENCY 1, WORKER_BATCH 1`,
      line("idle worker      ", idle),
      line("while describing ", result),
      `  description: job ${jobs[0]} ${before.status} at ${before.progress} tokens -> ${after.status} at ${after.progress} tokens; ${finished} job(s) finished during the run`,
      `  verdict: p99 ${l.p99} ms ${l.p99 < 100 ? "<" : ">="} 100 ms: ${l.p99 < 100 ? "PASS" : "FAIL"}`,
    ].join("\n"),
  );
  const busyThroughout = after.status === "RUNNING" || finished < jobs.length;
  if (!busyThroughout) console.log("  warning: the worker ran out of work before the end of the window");
  return l.p99 < 100 && result.non2xx === 0 && result.errors === 0 ? 0 : 1;
}

main()
  .then((code) => (process.exitCode = code))
  .catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 2;
  })
  .finally(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once("exit", r));
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) child.kill("SIGKILL");
    }
    if (existsSync(work)) rmSync(work, { recursive: true, force: true });
  });
