import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Config, loadConfig } from "../../src/config.js";
import { readImage } from "../../src/describe/engine.js";
import type { Describer } from "../../src/describe/types.js";
import type { Job } from "../../src/generated/prisma/client.js";
import { enqueueDescribe, requeueStale } from "../../src/jobs/queue.js";
import { type DescribeWorker, startWorker } from "../../src/jobs/worker.js";
import { createLogger } from "../../src/log.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { makeArtwork } from "../support/factories.js";
import { waitUntil } from "../support/processes.js";
import { scriptedDescriber } from "../support/scripted-describer.js";
import { type FaultServer, imageApiWithFaults, storeByHash } from "./remote-worker-faults.js";

/**
 * A worker that shares only the database with the API (IMAGE_SOURCE_URL, its own empty
 * IMAGE_DIR), in process, against the real /images/ route behind a fault server. The describer
 * reads each image with the engine's own readImage, then generates with the scripted double. A job
 * whose image cannot be had fails with a reason that names the image and no local path; it is
 * retried by the job rules (JOB_MAX_ATTEMPTS, backoff) and then FAILED, while the other jobs go on.
 */
let t: TestDb;
let apiDir: string;
let server: FaultServer;
const log = createLogger("silent");

function imageReadingDescriber(): Describer {
  const scripted = scriptedDescriber();
  return {
    ...scripted,
    async describe(inputs, params, options) {
      for (const input of inputs) await readImage(input.imagePath, 512);
      return scripted.describe(inputs, params, options);
    },
  };
}

/** An artwork whose main image is a real JPEG in the API's folder, recorded as the sync records it. */
async function artworkWithImage(i: number): Promise<{ artworkId: number; imageId: number; localPath: string }> {
  const data = await sharp({ create: { width: 100 + i, height: 80, channels: 3, background: { r: (37 * i) % 255, g: 90, b: 160 } } }).jpeg().toBuffer();
  const { localPath, localHash, localBytes } = storeByHash(apiDir, data);
  const a = await makeArtwork(t.db, { image: { localPath } });
  const image = await t.db.image.findFirstOrThrow({ where: { artworkId: a.id } });
  await t.db.image.update({ where: { id: image.id }, data: { localHash, localBytes } });
  return { artworkId: a.id, imageId: image.id, localPath };
}

function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

beforeAll(async () => {
  t = await createTestDb();
  apiDir = join(t.dir, "api-images");
  mkdirSync(apiDir);
  server = await imageApiWithFaults(apiDir);
});
afterAll(async () => {
  await server?.close();
  await t?.close();
});

function workerConfig(dir: string, extra: Record<string, string> = {}): Config {
  return loadConfig({
    IMAGE_DIR: join(t.dir, dir),
    IMAGE_SOURCE_URL: `${server.base}/images/`,
    HTTP_TIMEOUT_MS: "400",
    HTTP_MAX_RETRIES: "1",
    RETRY_AFTER_MAX_S: "0.05",
    HTTP_RETRY_BASE_MS: "10",
    JOB_MAX_ATTEMPTS: "2",
    HEARTBEAT_INTERVAL_S: "0.2",
    HEARTBEAT_STALE_S: "5",
    SHUTDOWN_GRACE_S: "0.3",
    ...extra,
  });
}

async function start(config: Config): Promise<DescribeWorker> {
  return startWorker({ db: t.db, config, log, openDescriber: async () => imageReadingDescriber(), pollMs: 20, progressEveryMs: 20 });
}

const settled = (id: number) => t.db.job.findFirst({ where: { id, OR: [{ status: { in: ["SUCCEEDED", "FAILED"] } }, { status: "QUEUED", attempts: { gt: 0 } }] } });

describe("a worker that reads images over HTTP", () => {
  it("corrupted, 404, oversized and stalled images fail their jobs with a clear reason, are retried by the job rules, then FAILED; the good ones are described", async () => {
    const config = workerConfig("worker-a");
    const works: Awaited<ReturnType<typeof artworkWithImage>>[] = [];
    for (let i = 0; i < 6; i++) works.push(await artworkWithImage(i));
    const [good1, corrupt, missing, huge, slow, good2] = works as [typeof works[0], typeof works[0], typeof works[0], typeof works[0], typeof works[0], typeof works[0]];
    server.fault(corrupt.localPath, { kind: "corrupt" });
    server.fault(missing.localPath, { kind: "status", status: 404 });
    server.fault(huge.localPath, { kind: "endless" });
    server.fault(slow.localPath, { kind: "stall" });
    const jobs: Job[] = [];
    for (const w of works) jobs.push((await enqueueDescribe(t.db, config, { artworkId: w.artworkId, imageId: w.imageId })).job);
    const apiBefore = files(apiDir);
    const worker = await start(config);
    try {
      const first = await Promise.all(jobs.map((j) => waitUntil(`job ${j.id} settled`, () => settled(j.id), 30_000, 20)));
      const [g1, c, m, h, s, g2] = first as [Job, Job, Job, Job, Job, Job];
      expect(g1.status).toBe("SUCCEEDED");
      expect(g2.status).toBe("SUCCEEDED");
      const expected: [Job, RegExp][] = [
        [c, /from the image source has sha256 [0-9a-f]{12}… \(\d+ bytes\), not the stored [0-9a-f]{12}…/],
        [m, /has no .* \(HTTP 404\)/],
        [h, /from the image source is larger than \d+ bytes/],
        [s, /timed out \(HTTP_TIMEOUT_MS\) 0 bytes into the answer after 2 attempt\(s\)/],
      ];
      for (const [job, reason] of expected) {
        // First attempt failed: back in the queue after the job backoff (30 s), not at once and not forever.
        expect(job).toMatchObject({ status: "QUEUED", attempts: 1, holder: null });
        expect(job.error).toMatch(reason);
        expect(job.error).toContain(works[jobs.findIndex((j) => j.id === job.id)]!.localPath);
        expect(job.error).not.toContain(t.dir);
        expect(job.error).not.toContain(server.base);
        expect(job.runAfter.getTime()).toBeGreaterThan(Date.now() + 20_000);
      }
      // The second (last) attempt, now: FAILED for good with the same reason.
      const failing = [c, m, h, s];
      await t.db.job.updateMany({ where: { id: { in: failing.map((j) => j.id) } }, data: { runAfter: new Date() } });
      for (const [job, reason] of expected) {
        const done = await waitUntil(`job ${job.id} failed`, () => t.db.job.findFirst({ where: { id: job.id, status: "FAILED" } }), 30_000, 20);
        expect(done).toMatchObject({ attempts: 2 });
        expect(done.error).toMatch(reason);
      }
      // One description per good job, none for the others.
      expect(await t.db.description.count({ where: { jobId: { in: [good1, good2].map((w) => jobs[works.indexOf(w)]!.id) } } })).toBe(2);
      expect(await t.db.description.count({ where: { jobId: { in: failing.map((j) => j.id) } } })).toBe(0);
      // Only the verified images are in the worker's IMAGE_DIR; the API's folder is untouched.
      expect(files(config.IMAGE_DIR).filter((f) => !f.startsWith(".write-check"))).toEqual([good1.localPath, good2.localPath].sort());
      expect(files(apiDir)).toEqual(apiBefore);
    } finally {
      await worker.stop();
      server.clear();
    }
  });

  it("the API down, then up again: the job's fetch retries and it is described in its first attempt", async () => {
    const config = workerConfig("worker-b", { HTTP_MAX_RETRIES: "8", HTTP_TIMEOUT_MS: "1000", RETRY_AFTER_MAX_S: "0.5" });
    const w = await artworkWithImage(20);
    await server.down();
    const { job } = await enqueueDescribe(t.db, config, { artworkId: w.artworkId, imageId: w.imageId });
    const worker = await start(config);
    try {
      await waitUntil("the job running", () => t.db.job.findFirst({ where: { id: job.id, status: "RUNNING" } }), 10_000, 20);
      await new Promise((r) => setTimeout(r, 1_000));
      await server.up();
      const done = await waitUntil("the job done", () => settled(job.id), 30_000, 20);
      expect(done).toMatchObject({ status: "SUCCEEDED", attempts: 1 });
    } finally {
      await worker.stop();
    }
  });

  it("a fetch that outlasts HEARTBEAT_STALE_S keeps its claim: the heartbeat covers jobs whose images are being fetched", async () => {
    const config = workerConfig("worker-c", { HEARTBEAT_STALE_S: "1", HTTP_TIMEOUT_MS: "800", HTTP_MAX_RETRIES: "3" });
    const w = await artworkWithImage(30);
    server.fault(w.localPath, { kind: "hang" }, 2);
    const { job } = await enqueueDescribe(t.db, config, { artworkId: w.artworkId, imageId: w.imageId });
    const worker = await start(config);
    try {
      await waitUntil("the job running", () => t.db.job.findFirst({ where: { id: job.id, status: "RUNNING" } }), 10_000, 20);
      await new Promise((r) => setTimeout(r, 1_500));
      // What any other worker's heartbeat does: a claim beaten within the last second stays.
      expect(await requeueStale(t.db, 1_000)).toBe(0);
      const done = await waitUntil("the job done", () => settled(job.id), 30_000, 20);
      expect(done).toMatchObject({ status: "SUCCEEDED", attempts: 1 });
    } finally {
      await worker.stop();
      server.clear();
    }
  });

  it("a shutdown while an image is being fetched hands the job back untouched", async () => {
    const config = workerConfig("worker-d", { HTTP_TIMEOUT_MS: "20000" });
    const w = await artworkWithImage(40);
    server.fault(w.localPath, { kind: "hang" });
    const { job } = await enqueueDescribe(t.db, config, { artworkId: w.artworkId, imageId: w.imageId });
    const worker = await start(config);
    await waitUntil("the job running", () => t.db.job.findFirst({ where: { id: job.id, status: "RUNNING" } }), 10_000, 20);
    const started = Date.now();
    await worker.stop();
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await t.db.job.findUniqueOrThrow({ where: { id: job.id } })).toMatchObject({ status: "QUEUED", attempts: 0, holder: null, error: "interrupted by shutdown" });
    server.clear();
    await t.db.job.update({ where: { id: job.id }, data: { status: "CANCELLED" } });
  });

  it("a worker whose IMAGE_DIR cannot be written refuses to start, saying so", async () => {
    const file = join(t.dir, "not-a-dir");
    writeFileSync(file, "x");
    await expect(start(workerConfig("x", { IMAGE_DIR: join(file, "images") }))).rejects.toThrow(/IMAGE_DIR is not writable/);
  });
});
