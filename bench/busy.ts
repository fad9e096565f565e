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
 * Two more cases measure the API while a large sync runs (bench/world.ts: BENCH_WORKS works with
 * as many 1280 x 960 images, default 2,000) and pass when p99 < 200 ms:
 * - sync-in-start: the startup sync of `artdesc start`, which runs each sync in a child process of
 *   its own at nice 19 (the API's process only waits for its result);
 * - sync-process: `artdesc sync --full` started by hand next to `artdesc start` (whose worker
 *   writes heartbeats), on a store already synced once (so `start` does not sync itself).
 *
 * The model is synthesized once into models/synth/smolvlm-500m (git-ignored, about 2 GB, a minute
 * or two) and reused. Options (environment): BENCH_CASES (default
 * "describe,sync-in-start,sync-process"), BENCH_SECONDS (default 15), BENCH_CONNECTIONS (8),
 * BENCH_WORKS (2000), ORT_THREADS (default cores - 1, at least 1).
 */
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import autocannon from "autocannon";
import Database from "better-sqlite3";
import sharp from "sharp";
import { closeDb, createDb } from "../src/db.js";
import { synthModel } from "../src/describe/models/synth.js";
import { migrate } from "../src/store/migrate.js";
import { freePort, httpGql, spawnArtdesc, waitForHealth, waitUntil, type ArtdescProcess } from "../test/support/processes.js";
import { startBenchWorld } from "./world.js";
import { BUSY_BENCH_QUERY, BUSY_JOB_NUMBERS, BUSY_JOB_PROGRESS, BUSY_MODEL_STATUS, BUSY_REGENERATE, BUSY_SUCCEEDED_JOBS } from "./queries.js";
import { serverAllocatorEnv } from "./allocator.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8);
const CORES = availableParallelism();
const ORT_THREADS = Number(process.env.ORT_THREADS ?? Math.max(1, CORES - 1));
const WORKS = Number(process.env.BENCH_WORKS ?? 2000);
const CASES = (process.env.BENCH_CASES ?? "describe,sync-in-start,sync-process").split(",").map((c) => c.trim());
const KNOWN_CASES = ["describe", "sync-in-start", "sync-process"];
const DESCRIBE_P99_MS = 100;
const SYNC_P99_MS = 200;
const TOKEN = "bench-token-0123456789abcdef";
const MODEL_ROOT = resolve("models");
const MODEL_ID = "synth/smolvlm-500m";
const QUERY = BUSY_BENCH_QUERY;

const work = mkdtempSync(join(tmpdir(), "artdesc-bench-"));
let child: ReturnType<typeof spawn> | null = null;
/** Processes of the sync cases, stopped at the end whatever happens. */
const children: ArtdescProcess[] = [];

/** The bench's GraphQL calls, with the token the mutations need. */
const gql = (url: string, query: string, variables: Record<string, unknown> = {}) =>
  httpGql(url, query, variables, { authorization: `Bearer ${TOKEN}` }) as Promise<{ data: any }>;

const LOAD_BEFORE = loadavg().map((x) => x.toFixed(1)).join(" ");

/** What every case's `artdesc start` runs with: its own database and port, the token, quiet logs. */
function serviceEnv(file: string, port: number): Record<string, string> {
  return {
    DATABASE_URL: `file:${file}`,
    API_TOKEN: TOKEN,
    PORT: String(port),
    HOST: "127.0.0.1",
    LOG_LEVEL: "warn",
    SHUTDOWN_GRACE_S: "0",
    HEARTBEAT_INTERVAL_S: "1",
  };
}

function measure(url: string): Promise<autocannon.Result> {
  return autocannon({
    url,
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query: QUERY }),
    connections: CONNECTIONS,
    duration: SECONDS,
    // Its own thread: the sync cases' Wikidata world serves from this process's event loop.
    workers: 1,
  });
}

const line = (name: string, r: autocannon.Result) =>
  `  ${name}: requests ${r.requests.total} (${r.requests.average.toFixed(0)}/s), non-2xx ${r.non2xx}, errors ${r.errors}; ` +
  `latency ms p50 ${r.latency.p50}, p90 ${r.latency.p90}, p99 ${r.latency.p99}, max ${r.latency.max}`;

const verdict = (r: autocannon.Result, limitMs: number) =>
  `  verdict: p99 ${r.latency.p99} ms ${r.latency.p99 < limitMs ? "<" : ">="} ${limitMs} ms: ${r.latency.p99 < limitMs && r.non2xx === 0 && r.errors === 0 ? "PASS" : "FAIL"}`;

const passed = (r: autocannon.Result, limitMs: number) => r.latency.p99 < limitMs && r.non2xx === 0 && r.errors === 0;

/** A store with 200 works (by a creator the sync cases do not sync), each with a 1024-pixel image. */
async function seed(dir: string): Promise<{ file: string; imageDir: string }> {
  const file = join(dir, "bench.db");
  const imageDir = join(dir, "images");
  mkdirSync(join(imageDir, "bench"), { recursive: true });
  migrate(file);
  const db = await createDb(`file:${file}`);
  await sharp({ create: { width: 1024, height: 768, channels: 3, background: { r: 120, g: 90, b: 60 } } })
    .composite([{ input: { create: { width: 400, height: 300, channels: 3, background: { r: 20, g: 40, b: 160 } } }, left: 200, top: 150 }])
    .jpeg()
    .toFile(join(imageDir, "bench/painting.jpg"));
  const creator = await db.creator.create({ data: { qid: "Q999999001", label: "Bench painter" } });
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
  return { file, imageDir };
}

async function main(): Promise<number> {
  const unknown = CASES.filter((c) => !KNOWN_CASES.includes(c));
  if (unknown.length) throw new Error(`BENCH_CASES: unknown case(s) ${unknown.join(", ")} (known: ${KNOWN_CASES.join(", ")})`);
  const seeded = await seed(work);
  let code = 0;
  if (CASES.includes("describe")) code = Math.max(code, await describeCase(seeded.file, seeded.imageDir));
  if (CASES.includes("sync-in-start") || CASES.includes("sync-process")) code = Math.max(code, await syncCases(seeded.file));
  return code;
}

/** The API at CONNECTIONS connections while a description decodes in the same process. */
async function describeCase(file: string, imageDir: string): Promise<number> {
  // 1. The model (synthesized once, then reused).
  const modelDir = join(MODEL_ROOT, MODEL_ID);
  if (!existsSync(join(modelDir, "onnx", "decoder_model_merged.onnx"))) {
    const t = performance.now();
    synthModel({ preset: "smolvlm-500m", outDir: modelDir, dtype: "fp32" });
    console.log(`synthesized smolvlm-500m (fp32) into ${modelDir} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }

  // 3. artdesc start.
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/graphql`;
  child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", "start"], {
    env: {
      PATH: process.env.PATH,
      ...serviceEnv(file, port),
      IMAGE_DIR: imageDir,
      MODEL_DIR: MODEL_ROOT,
      MODEL_ID,
      ORT_THREADS: String(ORT_THREADS),
      ...serverAllocatorEnv(),
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

  console.log(
    [
      "",
      `artworks(limit: 20) at ${CONNECTIONS} connections for ${SECONDS} s (smolvlm-500m synthetic, fp32, cpu)`,
      `  cores ${CORES}, load average before ${LOAD_BEFORE}, onnxruntime intra-op threads ${ORT_THREADS} (ORT_THREADS), WORKER_CONCURRENCY 1, WORKER_BATCH 1`,
      line("idle worker      ", idle),
      line("while describing ", result),
      `  description: job ${jobs[0]} ${before.status} at ${before.progress} tokens -> ${after.status} at ${after.progress} tokens; ${finished} job(s) finished during the run`,
      verdict(result, DESCRIBE_P99_MS),
    ].join("\n"),
  );
  const busyThroughout = after.status === "RUNNING" || finished < jobs.length;
  if (!busyThroughout) console.log("  warning: the worker ran out of work before the end of the window");
  const exited = new Promise((r) => child!.once("exit", r));
  child.kill("SIGTERM");
  await exited;
  child = null;
  return passed(result, DESCRIBE_P99_MS) ? 0 : 1;
}

/** What the sync has done so far, read from the store (a read-only connection of the bench's own). */
function syncState(file: string): { status: string | null; works: number; images: number } {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const run = db.prepare("SELECT status FROM SyncRun ORDER BY id DESC LIMIT 1").get() as { status: string } | undefined;
    const { works } = db.prepare("SELECT count(*) AS works FROM Artwork").get() as { works: number };
    const { images } = db.prepare("SELECT count(*) AS images FROM Image WHERE localPath IS NOT NULL").get() as { images: number };
    return { status: run?.status ?? null, works, images };
  } finally {
    db.close();
  }
}

/** The API at CONNECTIONS connections while a large sync runs, in the same process and in another. */
async function syncCases(seededFile: string): Promise<number> {
  const t0 = performance.now();
  const { world, files } = await startBenchWorld(WORKS);
  console.log(`world: ${WORKS} works, ${WORKS} images (${(files.reduce((n, f) => n + f.length, 0) / 1e6).toFixed(0)} MB) ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const lines: string[] = [];
  let code = 0;
  try {
    for (const name of ["sync-in-start", "sync-process"].filter((c) => CASES.includes(c))) {
      const dir = join(work, name);
      mkdirSync(dir, { recursive: true });
      const file = join(dir, "bench.db");
      copyFileSync(seededFile, file);
      const port = await freePort();
      const base = `http://127.0.0.1:${port}`;
      const env = {
        ...world.env,
        IMAGE_EDGE: "1024",
        HTTP_TIMEOUT_MS: "30000",
        ...serviceEnv(file, port),
        IMAGE_DIR: join(dir, "images"),
        MODEL_DIR: join(dir, "models"),
        // e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to see where the service's time goes.
        ...(process.env.BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS } : {}),
      };
      if (name === "sync-process") {
        // A store synced once before: `start` does not sync at startup; the sync runs next to it.
        const db = await createDb(`file:${file}`);
        await db.syncRun.create({ data: { trigger: "manual", full: true, status: "SUCCEEDED", startedAt: new Date(Date.now() - 60_000), finishedAt: new Date() } });
        await closeDb(db);
      }
      const server = spawnArtdesc(["start"], env);
      children.push(server);
      await waitForHealth(base, 120_000).catch((err: unknown) => {
        throw new Error(`artdesc start did not answer (${String(err)}):\n${server.output().slice(-5000)}`);
      });
      let idle: autocannon.Result | null = null;
      if (name === "sync-process") {
        idle = await measure(`${base}/graphql`);
        children.push(spawnArtdesc(["sync", "--full"], env));
      }
      // Measure once works are being written and images downloaded side by side.
      await waitUntil("the sync to write works", async () => syncState(file).works >= 200 + 100, 300_000, 200);
      const before = syncState(file);
      const load = loadavg().map((x) => x.toFixed(1)).join(" ");
      const result = await measure(`${base}/graphql`);
      const after = syncState(file);
      const what = name === "sync-in-start" ? "the startup sync of artdesc start (in its sync process)" : "artdesc sync --full in its own process next to artdesc start";
      lines.push(
        "",
        `${name}: artworks(limit: 20) at ${CONNECTIONS} connections for ${SECONDS} s while ${what} (${WORKS} works)`,
        `  cores ${CORES}, load average at the start ${load}`,
        ...(idle ? [line("no sync          ", idle)] : []),
        line("while syncing    ", result),
        `  sync: ${before.works - 200} -> ${after.works - 200} works, ${before.images - 200} -> ${after.images - 200} images stored during the window; last run ${after.status}`,
        verdict(result, SYNC_P99_MS),
      );
      if (after.status !== "RUNNING") lines.push("  warning: the sync ended before the end of the window");
      if (!passed(result, SYNC_P99_MS)) code = 1;
      for (const c of children.splice(0)) await c.stop();
    }
  } finally {
    await world.stop();
  }
  console.log(lines.join("\n"));
  return code;
}

main()
  .then((code) => (process.exitCode = code))
  .catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 2;
  })
  .finally(async () => {
    for (const c of children) await c.stop();
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once("exit", r));
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) child.kill("SIGKILL");
    }
    if (existsSync(work)) rmSync(work, { recursive: true, force: true });
  });
