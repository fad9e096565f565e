/**
 * npm run bench:workers: 1, 2 and 4 `artdesc worker` processes draining N describe jobs with the
 * `tiny` synthetic model, each worker sharing nothing with the API but the database: its own empty
 * IMAGE_DIR, images fetched from `artdesc serve` over HTTP (IMAGE_SOURCE_URL) and checked against
 * their sha256. Per worker count: throughput (jobs/s, and per worker), claim latency (p50/p99 of
 * the time each successful claim took, as the workers log it) and queue wait (claim time minus the
 * moment the jobs became ready, from the Job rows), and the integrity check: every job SUCCEEDED
 * in one attempt with exactly one Description, nothing doubled, nothing lost.
 *
 * Options (environment): DATABASE_URL (default: a new SQLite file in a temporary folder; or an empty
 * PostgreSQL database, `postgresql://…`, where the workers claim with SKIP LOCKED: the bench writes
 * its own works into it, so give a new one each run), BENCH_JOBS (N, default 40),
 * BENCH_WORKER_COUNTS (default "1,2,4"), BENCH_MAX_NEW_TOKENS (default 16), BENCH_IMAGE_EDGE
 * (default 160). The tiny model measures the queue and the image path, not the model: a real model
 * spends seconds per job, where the claim's milliseconds vanish.
 */
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import sharp from "sharp";
import { loadConfig } from "../src/config.js";
import { closeDb, openDatabase } from "../src/db.js";
import { enqueueDescribe } from "../src/jobs/queue.js";
import { localPathFor } from "../src/sync/images.js";
import { type ArtdescProcess, listeningBase, spawnArtdesc, tinyModelEnv, waitUntil } from "../test/support/processes.js";

const N = Number(process.env.BENCH_JOBS ?? 40);
const COUNTS = (process.env.BENCH_WORKER_COUNTS ?? "1,2,4").split(",").map((c) => Number(c.trim()));
const TOKENS = process.env.BENCH_MAX_NEW_TOKENS ?? "16";
const EDGE = Number(process.env.BENCH_IMAGE_EDGE ?? 160);
if (!Number.isInteger(N) || N < 1 || COUNTS.some((c) => !Number.isInteger(c) || c < 1 || c > 32)) {
  throw new Error("BENCH_JOBS must be a positive integer and BENCH_WORKER_COUNTS integers from 1 to 32");
}

const work = mkdtempSync(join(tmpdir(), "artdesc-bench-workers-"));
const databaseUrl = process.env.DATABASE_URL || `file:${join(work, "bench.db")}`;
const model = tinyModelEnv();
const running: ArtdescProcess[] = [];

const env: Record<string, string> = {
  ...model.env,
  DATABASE_URL: databaseUrl,
  IMAGE_DIR: join(work, "api-images"),
  PORT: "0",
  HOST: "127.0.0.1",
  DESCRIBE_NUM_BEAMS: "1",
  DESCRIBE_MAX_NEW_TOKENS: TOKENS,
  DESCRIBE_MIN_NEW_TOKENS: TOKENS,
  DESCRIBE_TARGET_WORDS: "0",
  HEARTBEAT_INTERVAL_S: "1",
  SHUTDOWN_GRACE_S: "5",
};

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** The "describing" lines the workers logged: their claim times (ms), per job. */
function claimTimes(procs: ArtdescProcess[]): number[] {
  const out: number[] = [];
  for (const p of procs) {
    for (const line of p.output().split("\n")) {
      if (!line.includes('"msg":"describing"')) continue;
      const claimMs = (JSON.parse(line) as { claimMs?: number }).claimMs;
      if (typeof claimMs === "number") out.push(claimMs);
    }
  }
  return out.sort((a, b) => a - b);
}

async function main() {
  const config = loadConfig(env);
  const { db } = await openDatabase(databaseUrl);
  try {
    // N works, each with a distinct small JPEG in the API's folder, recorded as the sync records it.
    const creator = await db.creator.upsert({ where: { qid: "Q5432" }, create: { qid: "Q5432", label: "Francisco de Goya" }, update: {} });
    const works: { artworkId: number; imageId: number }[] = [];
    for (let i = 0; i < N; i++) {
      const data = await sharp({ create: { width: EDGE, height: Math.round(EDGE * 0.75), channels: 3, background: { r: (i * 53) % 256, g: (i * 97) % 256, b: (i * 31) % 256 } } })
        .jpeg({ quality: 88 })
        .toBuffer();
      const hash = createHash("sha256").update(data).digest("hex");
      const localPath = localPathFor(hash);
      mkdirSync(dirname(join(env.IMAGE_DIR!, localPath)), { recursive: true });
      writeFileSync(join(env.IMAGE_DIR!, localPath), data);
      const qid = `Q${9_800_000 + i}`;
      const art = await db.artwork.create({
        data: {
          qid,
          qidNumber: 9_800_000 + i,
          title: `Bench work ${i}`,
          titles: JSON.stringify({ en: `Bench work ${i}` }),
          creators: { create: [{ creatorId: creator.id }] },
          images: { create: [{ fileTitle: `File:Bench ${i}.jpg`, isMain: true, localPath, localHash: hash, localBytes: data.length, localWidth: EDGE, downloadedAt: new Date() }] },
        },
        include: { images: true },
      });
      works.push({ artworkId: art.id, imageId: art.images[0]!.id });
    }

    const serve = spawnArtdesc(["serve"], env);
    running.push(serve);
    const base = await listeningBase(serve);
    const rows: string[] = [];
    let allGood = true;

    for (const [round, count] of COUNTS.entries()) {
      const workers = Array.from({ length: count }, (_, i) =>
        spawnArtdesc(["worker"], { ...env, IMAGE_DIR: join(work, `round${round}-worker${i}`), IMAGE_SOURCE_URL: `${base}/images/` }),
      );
      running.push(...workers);
      // Every worker has its model before the jobs become ready, so the clock measures draining only.
      await waitUntil(`${count} worker(s) with the model loaded`, async () => (await db.heartbeat.count({ where: { role: "worker", modelStatus: "loaded" } })) >= count, 180_000, 100);
      const ids: number[] = [];
      for (const w of works) ids.push((await enqueueDescribe(db, config, { ...w, force: true, reason: `bench ${count}`, priority: 0 })).job.id);
      const readyAt = new Date(Date.now() + 500);
      await db.job.updateMany({ where: { id: { in: ids } }, data: { runAfter: readyAt } });
      await waitUntil("the queue drained", async () => (await db.job.count({ where: { id: { in: ids }, status: { in: ["QUEUED", "RUNNING"] } } })) === 0, 600_000, 50);

      const jobs = await db.job.findMany({ where: { id: { in: ids } }, include: { result: { select: { id: true } } } });
      const descriptions = await db.description.count({ where: { jobId: { in: ids } } });
      const lost = jobs.filter((j) => j.status !== "SUCCEEDED" || !j.result).length;
      const doubled = jobs.filter((j) => j.attempts !== 1).length + Math.max(0, descriptions - ids.length);
      const end = Math.max(...jobs.map((j) => j.finishedAt?.getTime() ?? 0));
      const seconds = (end - readyAt.getTime()) / 1000;
      const waits = jobs.map((j) => (j.startedAt?.getTime() ?? end) - readyAt.getTime()).sort((a, b) => a - b);
      const claims = claimTimes(workers);
      for (const w of workers) await w.stop("SIGTERM");
      if (lost || doubled || descriptions !== ids.length) allGood = false;
      rows.push(
        `| ${count} | ${ids.length} | ${seconds.toFixed(2)} | ${(ids.length / seconds).toFixed(1)} | ${(ids.length / seconds / count).toFixed(1)} | ` +
          `${percentile(claims, 50).toFixed(1)} / ${percentile(claims, 99).toFixed(1)} | ${percentile(waits, 50)} / ${percentile(waits, 99)} | ${descriptions} | ${lost} | ${doubled} |`,
      );
      console.error(rows.at(-1));
    }

    console.log(`\nbench:workers: ${N} jobs, tiny model, ${TOKENS} tokens, ${EDGE}px images over IMAGE_SOURCE_URL, database ${databaseUrl.replace(/\/\/[^@]*@/, "//…@")}\n`);
    console.log("| workers | jobs | seconds | jobs/s | jobs/s per worker | claim ms p50 / p99 | queue wait ms p50 / p99 | descriptions | lost | doubled |");
    console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (const r of rows) console.log(r);
    console.log(allGood ? "\nEvery job SUCCEEDED in one attempt with exactly one description." : "\nFAILED: jobs were lost or doubled (see the table).");
    process.exitCode = allGood ? 0 : 1;
  } finally {
    for (const p of running) await p.stop("SIGKILL");
    await closeDb(db);
    model.remove();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
