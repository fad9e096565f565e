import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { DEFAULT_EMBED_MODEL_DTYPE, loadConfig } from "../../src/config.js";
import { synthEmbedModel } from "../../src/describe/models/embed-synth.js";
import { Worker } from "node:worker_threads";
import { refuseNativeCalls, startModuleThread, threadsInNativeCalls } from "../../src/describe/module-thread.js";
import { type Embedder, EmbedderFailedError, EmbedderHungError, EmbedderStoppedError, openEmbedder, QueryEmbedder } from "../../src/embed/embedder.js";
import { claimEmbedJob, embedMissing, queueEmbedJob, runEmbedJob, startEmbedWorker } from "../../src/embed/jobs.js";
import { semanticSearchStatus } from "../../src/embed/status.js";
import { REVISION_FILE } from "../../src/describe/models/contract.js";
import { LostClaimError } from "../../src/jobs/descriptions.js";
import { embedderKey, embedModelRevision, installedVectorModel, vectorModelId } from "../../src/embed/model-files.js";
import { countStale, decodeVector, embedStale, encodeVector, passageText, textHash } from "../../src/embed/store.js";
import { VectorIndex } from "../../src/embed/vector-index.js";
import { cancelJob, EMBED, requeueStale } from "../../src/jobs/queue.js";
import { createLogger } from "../../src/log.js";
import { createTestDb, onPostgres, type TestDb } from "../support/db.js";
import { readConnection } from "../../src/db.js";
import { addDescription, makeArtwork } from "../support/factories.js";
import { capturingLogger } from "../support/log.js";

const MODEL_ID = "artdesc/synth-embed-tiny";
let t: TestDb;
let modelDir: string;

beforeAll(async () => {
  t = await createTestDb();
  modelDir = mkdtempSync(join(tmpdir(), "artdesc-embed-jobs-"));
  synthEmbedModel({ preset: "embed-tiny", outDir: join(modelDir, MODEL_ID), dtype: ["fp32", "quantized"] });
});
afterAll(async () => {
  await t?.close();
  rmSync(modelDir, { recursive: true, force: true });
});

async function until<T>(what: () => Promise<T | null | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await what();
    if (v) return v;
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("the background embedder", () => {
  it("embeds a new description, then the next one that replaces it, through embed jobs", async () => {
    const config = loadConfig({ MODEL_DIR: modelDir, EMBED_MODEL_ID: MODEL_ID, EMBED_POLL_S: "1" });
    const worker = await startEmbedWorker({ db: t.db, config, log: createLogger("silent"), role: "test", pollMs: 100 });
    try {
      const art = await makeArtwork(t.db, { qid: "Q900", title: "Perro", description: "A hound in the sand." });
      const first = await until(() => t.db.artworkEmbedding.findUnique({ where: { artworkId: art.id } }));
      expect(first).toMatchObject({ modelId: vectorModelId(MODEL_ID, DEFAULT_EMBED_MODEL_DTYPE), dims: 128, textHash: textHash(passageText("Perro", "A hound in the sand.")) });
      await addDescription(t.db, art.id, "A ship on the sea.", "HUMAN");
      const second = await until(async () => {
        const e = await t.db.artworkEmbedding.findUnique({ where: { artworkId: art.id } });
        return e && e.textHash !== first.textHash ? e : null;
      });
      expect(second.textHash).toBe(textHash(passageText("Perro", "A ship on the sea.")));
      // The vector is stored before its job is marked done: wait for that too.
      const jobs = await until(async () => {
        const all = await t.db.job.findMany({ where: { kind: EMBED } });
        return all.every((j) => j.status !== "QUEUED" && j.status !== "RUNNING") && all;
      });
      expect(jobs.length).toBeGreaterThanOrEqual(2);
      expect(jobs.every((j) => j.priority === -10)).toBe(true);
      expect(jobs.filter((j) => j.status === "SUCCEEDED").length).toBeGreaterThanOrEqual(2);
    } finally {
      await worker.stop();
    }
  }, 60_000);

  it("a changed EMBED_MODEL_DTYPE makes the stored vectors stale; they are made again, recorded under the file's dtype", async () => {
    await makeArtwork(t.db, { qid: "Q901", title: "Caballo", description: "A horse by the river." });
    const embedAll = async (dtype: "fp32" | "quantized") => {
      const embedder = await openEmbedder(loadConfig({ MODEL_DIR: modelDir, EMBED_MODEL_ID: MODEL_ID, EMBED_MODEL_DTYPE: dtype }), 1);
      try {
        for (;;) {
          const s = await embedStale(t.db, embedder, 100);
          if (s.embedded + s.unchanged === 0) break;
        }
      } finally {
        await embedder.close();
      }
    };
    const quantized = vectorModelId(MODEL_ID, "quantized");
    expect([vectorModelId(MODEL_ID, "fp32"), quantized]).toEqual([MODEL_ID, `${MODEL_ID}:quantized`]);
    await embedAll("fp32");
    const described = await t.db.artwork.count({ where: { currentDescriptionId: { not: null }, state: "ACTIVE" } });
    expect(await t.db.artworkEmbedding.count({ where: { modelId: MODEL_ID } })).toBe(described);
    const stale = (dtype: "fp32" | "quantized") => countStale(t.db, installedVectorModel(loadConfig({ MODEL_DIR: modelDir, EMBED_MODEL_ID: MODEL_ID, EMBED_MODEL_DTYPE: dtype })));
    expect([await stale("fp32"), await stale("quantized")]).toEqual([0, described]);
    await embedAll("quantized");
    expect(await t.db.artworkEmbedding.count({ where: { modelId: quantized } })).toBe(described);
    expect([await stale("fp32"), await stale("quantized")]).toEqual([described, 0]);
  });

  it("model files pulled again at another revision make the stored vectors stale; they are searched until made again, and record the new revision", async () => {
    // Its own folder: the shared one stays at seed 1 for the other tests.
    const dir = mkdtempSync(join(tmpdir(), "artdesc-embed-revision-"));
    try {
      const config = loadConfig({ MODEL_DIR: dir, EMBED_MODEL_ID: MODEL_ID, EMBED_MODEL_DTYPE: "fp32", JOB_MAX_ATTEMPTS: "3" });
      synthEmbedModel({ preset: "embed-tiny", outDir: join(dir, MODEL_ID), dtype: ["fp32"] });
      const art = await makeArtwork(t.db, { qid: "Q902", title: "Toro", description: "A bull in the ring." });
      const embedAll = async () => {
        const embedder = await openEmbedder(config, 1);
        try {
          return await embedMissing(t.db, embedder, 100);
        } finally {
          await embedder.close();
        }
      };
      await embedAll();
      const first = installedVectorModel(config);
      expect(first).toEqual({ id: MODEL_ID, revision: "synth-embed-tiny-seed1" });
      const described = await t.db.artwork.count({ where: { currentDescriptionId: { not: null }, state: "ACTIVE" } });
      expect(await countStale(t.db, first)).toBe(0);
      expect(await t.db.artworkEmbedding.count({ where: { modelId: MODEL_ID, modelRevision: first.revision } })).toBe(described);
      const before = decodeVector((await t.db.artworkEmbedding.findUniqueOrThrow({ where: { artworkId: art.id } })).vector);

      // Other weights under the same model id and file (a pull where `main` moved; here another seed).
      synthEmbedModel({ preset: "embed-tiny", outDir: join(dir, MODEL_ID), dtype: ["fp32"], seed: 2 });
      const second = installedVectorModel(config);
      expect(second).toEqual({ id: MODEL_ID, revision: "synth-embed-tiny-seed2" });
      expect(await countStale(t.db, second)).toBe(described);
      // The worker's job for them (none left queued by an earlier test).
      await t.db.job.deleteMany({ where: { kind: EMBED, status: "QUEUED" } });
      expect(await queueEmbedJob(t.db, config)).not.toBeNull();
      // Stale, not gone: searched (same model id and file) and counted as embedded until replaced.
      expect(await semanticSearchStatus(t.db, config)).toMatchObject({ enabled: true, embedded: described, stale: described });
      if (!onPostgres) {
        const index = new VectorIndex(readConnection(t.db), MODEL_ID);
        index.refresh();
        expect(index.similarity(before, art.id)).toBeCloseTo(1, 5);
      }

      const made = await embedAll();
      expect(made.embedded).toBe(described);
      expect(await countStale(t.db, second)).toBe(0);
      const after = await t.db.artworkEmbedding.findUniqueOrThrow({ where: { artworkId: art.id } });
      expect(after.modelRevision).toBe(second.revision);
      expect(decodeVector(after.vector)).not.toEqual(before);

      // A vector made before revisions were recorded is made again once.
      await t.db.artworkEmbedding.update({ where: { artworkId: art.id }, data: { modelRevision: null } });
      expect(await countStale(t.db, second)).toBe(1);
      expect(await embedAll()).toMatchObject({ embedded: 1 });
      expect(await countStale(t.db, second)).toBe(0);
    } finally {
      await t.db.job.deleteMany({ where: { kind: EMBED, status: "QUEUED" } });
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it("a batch that outlasts HEARTBEAT_STALE_S keeps its job: it beats, so a describe worker's requeueStale leaves it alone", async () => {
    const config = loadConfig({ MODEL_DIR: modelDir, EMBED_MODEL_ID: MODEL_ID, HEARTBEAT_INTERVAL_S: "0.1", HEARTBEAT_STALE_S: "1" });
    const inner = await openEmbedder(config, 1);
    try {
      // An embedding model slowed down (a large EMBED_BATCH, a CPU the describe model keeps busy): 2.5 s a run.
      const slow: Embedder = { info: inner.info, close: () => inner.close(), embed: async (texts, kind) => (await new Promise((r) => setTimeout(r, 2_500)), inner.embed(texts, kind)) };
      await makeArtwork(t.db, { qid: "Q910", title: "Slow", description: "A long batch." });
      const job = (await queueEmbedJob(t.db, config)) ?? (await t.db.job.findFirstOrThrow({ where: { kind: EMBED, status: "QUEUED" } }));
      const claimed = await claimEmbedJob(t.db, "slow-embedder", 1_000);
      expect(claimed?.id).toBe(job.id);
      const run = runEmbedJob(t.db, config, slow, claimed!, "slow-embedder");
      // What every describe worker's heartbeat does, several times past the stale limit.
      let taken = 0;
      for (let i = 0; i < 8; i++) {
        await new Promise((r) => setTimeout(r, 250));
        taken += await requeueStale(t.db, 1_000);
      }
      const summary = await run;
      expect(taken).toBe(0);
      expect(summary.embedded).toBeGreaterThan(0);
      expect(await t.db.job.findUniqueOrThrow({ where: { id: job.id } })).toMatchObject({ status: "SUCCEEDED", attempts: 1 });
    } finally {
      await inner.close();
    }
  }, 30_000);

  it("an embed job cancelled while it runs ends as cancelled, not failed, and keeps the vectors it made", async () => {
    const config = loadConfig({ MODEL_DIR: modelDir, EMBED_MODEL_ID: MODEL_ID, HEARTBEAT_INTERVAL_S: "0.1" });
    const inner = await openEmbedder(config, 1);
    try {
      let cancelled: Promise<unknown> | null = null;
      const cancelling: Embedder = {
        info: inner.info,
        close: () => inner.close(),
        embed: async (texts, kind) => {
          cancelled ??= cancelJob(t.db, claimed!.id);
          await cancelled;
          return inner.embed(texts, kind);
        },
      };
      const art = await makeArtwork(t.db, { qid: "Q911", title: "Cancelled", description: "A job someone cancels." });
      await queueEmbedJob(t.db, config);
      const claimed = await claimEmbedJob(t.db, "cancelled-embedder", 60_000);
      expect(claimed).not.toBeNull();
      await expect(runEmbedJob(t.db, config, cancelling, claimed!, "cancelled-embedder")).rejects.toBeInstanceOf(LostClaimError);
      expect(await t.db.job.findUniqueOrThrow({ where: { id: claimed!.id } })).toMatchObject({ status: "CANCELLED" });
      expect(await t.db.artworkEmbedding.findUnique({ where: { artworkId: art.id } })).not.toBeNull();
      expect(await t.db.lease.count({ where: { holder: "cancelled-embedder" } })).toBe(0);
    } finally {
      await inner.close();
    }
  }, 30_000);

  it("does nothing and says how to turn it on when no model is installed", async () => {
    const lines: string[] = [];
    const log = createLogger("info");
    const config = loadConfig({ MODEL_DIR: join(modelDir, "none"), EMBED_POLL_S: "1" });
    const spy = { ...log, child: () => ({ info: (o: object, m: string) => lines.push(`${JSON.stringify(o)} ${m}`), error: () => undefined }) } as unknown as typeof log;
    const worker = await startEmbedWorker({ db: t.db, config, log: spy, role: "test", pollMs: 50 });
    await new Promise((r) => setTimeout(r, 300));
    await worker.stop();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("artdesc models pull --embed");
  });
});

describe("stopping after an uncaught error", () => {
  it("hurried, the background embedder's stop does not wait for the batch in progress", async () => {
    const config = loadConfig({ MODEL_DIR: modelDir, EMBED_MODEL_ID: MODEL_ID, EMBED_POLL_S: "1" });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const open: typeof openEmbedder = async (c) => {
      const e = await openEmbedder(c);
      return { info: e.info, close: () => e.close(), embed: async (texts, kind) => (await gate, e.embed(texts, kind)) };
    };
    const worker = await startEmbedWorker({ db: t.db, config, log: createLogger("silent"), role: "test", pollMs: 50, open });
    await makeArtwork(t.db, { title: "Lento", description: "A slow hound." });
    const runningJob = await until(() => t.db.job.findFirst({ where: { kind: EMBED, status: "RUNNING" } }));
    const started = Date.now();
    const stopped = worker.stop();
    worker.hurry?.();
    await stopped;
    expect(Date.now() - started).toBeLessThan(2_000);
    // Its job is handed back at once, not after HEARTBEAT_STALE_S, and the attempt does not count.
    const handedBack = await t.db.job.findUniqueOrThrow({ where: { id: runningJob.id } });
    expect(handedBack).toMatchObject({ status: "QUEUED", holder: null, attempts: 0 });
    expect(handedBack.error).toContain("the process stopped");
    expect(await t.db.lease.count({ where: { name: `job:${handedBack.id}` } })).toBe(0);
    // (Here the batch then ends in its own time: its vectors are kept, the job, no longer its own, is left alone.)
    release();
    const art = await t.db.artwork.findFirstOrThrow({ where: { title: "Lento" } });
    await until(() => t.db.artworkEmbedding.findUnique({ where: { artworkId: art.id } }));
    await new Promise((r) => setTimeout(r, 200));
    expect(await t.db.job.findUniqueOrThrow({ where: { id: handedBack.id } })).toMatchObject({ status: "QUEUED", holder: null });
    await t.db.job.deleteMany({ where: { kind: EMBED } });
  });
});

describe("another process embedding with another model", () => {
  it("makes the background embedder hold off and say why while that process lives, so neither re-embeds the other's works; it goes on once the other stops", async () => {
    const { lines, log } = capturingLogger();
    const config = loadConfig({ MODEL_DIR: modelDir, EMBED_MODEL_ID: MODEL_ID, EMBED_POLL_S: "1", HEARTBEAT_STALE_S: "60" });
    const ours = `${vectorModelId(MODEL_ID, DEFAULT_EMBED_MODEL_DTYPE)}@${installedVectorModel(config).revision}`;
    expect(installedVectorModel(config).revision).toBe("synth-embed-tiny-seed1");
    // This process's describe worker's heartbeat, and another live process embedding the same model
    // and file, pulled at another commit: each would take the other's vectors for stale.
    const theirs = `${vectorModelId(MODEL_ID, DEFAULT_EMBED_MODEL_DTYPE)}@0123456789abcdef0123456789abcdef01234567`;
    await t.db.heartbeat.create({ data: { id: "ours@box:1", role: "worker", pid: 1, hostname: "box" } });
    await t.db.heartbeat.create({ data: { id: "theirs@box:2", role: "worker", pid: 2, hostname: "box", embedModelId: theirs } });
    const worker = await startEmbedWorker({ db: t.db, config, log, role: "test", pollMs: 100, heartbeatId: "ours@box:1" });
    try {
      const art = await makeArtwork(t.db, { title: "Perro", description: "A hound asleep." });
      await until(async () => lines.some((l) => String(l.msg).startsWith("another process embeds with another model")));
      expect(lines.find((l) => String(l.msg).startsWith("another process"))).toMatchObject({ theirs, ours, process: "theirs@box:2" });
      // This process says which vectors it makes, for the other to see.
      expect((await t.db.heartbeat.findUniqueOrThrow({ where: { id: "ours@box:1" } })).embedModelId).toBe(ours);
      await new Promise((r) => setTimeout(r, 300));
      expect(await t.db.artworkEmbedding.findUnique({ where: { artworkId: art.id } })).toBeNull();
      // The other process stops beating (it stopped, or was restarted with these settings): this one embeds.
      await t.db.heartbeat.update({ where: { id: "theirs@box:2" }, data: { beatAt: new Date(Date.now() - 120_000) } });
      await until(() => t.db.artworkEmbedding.findUnique({ where: { artworkId: art.id } }));
      // One warning line a minute, however many polls held off.
      expect(lines.filter((l) => String(l.msg).startsWith("another process")).length).toBe(1);
    } finally {
      await worker.stop();
      await t.db.heartbeat.deleteMany({ where: { id: { in: ["ours@box:1", "theirs@box:2"] } } });
    }
  }, 60_000);
});

/** openEmbedder, keeping hold of each embedding thread it starts (to kill it as a crash would). */
function openKeepingThreads(threads: Worker[]): typeof openEmbedder {
  return (config, n) =>
    openEmbedder(config, n, (entry, data) => {
      const w = startModuleThread(entry, data);
      threads.push(w);
      return w;
    });
}

describe("an embedding thread that stops", () => {
  it("fails its requests with EmbedderStoppedError, in flight or later", async () => {
    const threads: Worker[] = [];
    const embedder = await openKeepingThreads(threads)(loadConfig({ MODEL_DIR: modelDir, EMBED_MODEL_ID: MODEL_ID }), 1);
    expect(await embedder.embed(["a dog"], "query")).toHaveLength(1);
    // A run long enough to be under way when the thread goes.
    const inFlight = embedder.embed(Array.from({ length: 500 }, (_, i) => `a hound ${i} in the sand by the sea`), "passage");
    await threads[0]!.terminate();
    await expect(inFlight).rejects.toBeInstanceOf(EmbedderStoppedError);
    await expect(embedder.embed(["a cat"], "query")).rejects.toBeInstanceOf(EmbedderStoppedError);
    await embedder.close();
  });

  it("counts its runs through transformers.js as calls into onnxruntime, and starts none once the process is exiting (src/ops/exit.ts)", async () => {
    const embedder = await openEmbedder(loadConfig({ MODEL_DIR: modelDir, EMBED_MODEL_ID: MODEL_ID }), 1);
    try {
      expect(threadsInNativeCalls()).toBe(0);
      // Long enough that a main thread kept off the cores by a loaded machine (CI runs two test files
      // at once on two cores) still sees it under way: 500 passages once ran between two looks.
      const inFlight = embedder.embed(Array.from({ length: 3_000 }, (_, i) => `a hound ${i} in the sand by the sea`), "passage");
      let seen = 0;
      const deadline = Date.now() + 10_000;
      while (!seen && Date.now() < deadline) {
        seen = threadsInNativeCalls();
        await new Promise((r) => setImmediate(r));
      }
      expect(seen).toBe(1);
      expect(await inFlight).toHaveLength(3_000);
      expect(threadsInNativeCalls()).toBe(0);
      refuseNativeCalls();
      await expect(embedder.embed(["a cat"], "query")).rejects.toMatchObject({ name: "EmbedRequestError", message: expect.stringContaining("the process is exiting") });
    } finally {
      await embedder.close();
    }
  });

  it("a thread that does not answer within the request's deadline is left behind: the request fails as a stopped thread's, and so do later ones", async () => {
    const threads: Worker[] = [];
    const keep: typeof startModuleThread = (entry, data) => {
      const w = startModuleThread(entry, data);
      threads.push(w);
      return w;
    };
    // 1 ms for a run of 500 passages: what a hung session looks like from outside.
    const embedder = await openEmbedder(loadConfig({ MODEL_DIR: modelDir, EMBED_MODEL_ID: MODEL_ID }), 1, keep, (n) => (n > 1 ? 1 : 60_000));
    const answered = new Promise((r) => threads[0]!.once("message", r));
    const started = Date.now();
    const hung = embedder.embed(Array.from({ length: 500 }, (_, i) => `a hound ${i} in the sand by the sea`), "passage");
    await expect(hung).rejects.toThrow(/did not answer within 0 s: left behind/);
    await expect(hung).rejects.toBeInstanceOf(EmbedderStoppedError);
    expect(Date.now() - started).toBeLessThan(5_000);
    await expect(embedder.embed(["a cat"], "query")).rejects.toBeInstanceOf(EmbedderStoppedError);
    // Closing does not wait for it (a hung one never answers), nor terminates it mid-run.
    await embedder.close();
    // Here the run ends in its own time (its late answer is dropped); the test then stops the thread.
    await answered;
    await threads[0]!.terminate();
  });

  it("a model whose load never ends is given up after the load deadline, as a hung thread, instead of holding every search", async () => {
    let stuck: Worker | undefined;
    // A thread that never says "ready" or "failed": what a load from a hung mount looks like from outside.
    const never: typeof startModuleThread = () => (stuck = new Worker("setInterval(() => {}, 1_000)", { eval: true }));
    const started = Date.now();
    const err = await openEmbedder(loadConfig({ MODEL_DIR: modelDir, EMBED_MODEL_ID: MODEL_ID }), 1, never, undefined, 200).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmbedderHungError);
    expect((err as Error).message).toMatch(/did not load within 0 s: its thread is left behind/);
    expect(Date.now() - started).toBeLessThan(5_000);
    await stuck!.terminate();
  });

  it("the background embedder closes it, loads the model again after a backoff, and the next embed job succeeds", async () => {
    await t.db.job.deleteMany({ where: { kind: EMBED } });
    const threads: Worker[] = [];
    const config = loadConfig({ MODEL_DIR: modelDir, EMBED_MODEL_ID: MODEL_ID, JOB_MAX_ATTEMPTS: "1" });
    const worker = await startEmbedWorker({ db: t.db, config, log: createLogger("silent"), role: "test", pollMs: 50, reloadMs: 300, open: openKeepingThreads(threads) });
    try {
      const first = await makeArtwork(t.db, { title: "Antes", description: "A hound before the crash." });
      await until(() => t.db.artworkEmbedding.findUnique({ where: { artworkId: first.id } }));
      expect(threads).toHaveLength(1);
      // The thread dies (an out-of-memory abort, an uncaught error in onnxruntime's callback).
      await threads[0]!.terminate();
      const second = await makeArtwork(t.db, { title: "Después", description: "A hound after the crash." });
      // The job that met the dead thread failed; a later one, on the model loaded again, made the vector.
      const made = await until(() => t.db.artworkEmbedding.findUnique({ where: { artworkId: second.id } }));
      expect(made.textHash).toBe(textHash(passageText("Después", "A hound after the crash.")));
      expect(threads).toHaveLength(2);
      // The vectors are stored before their job is marked done: wait for that too.
      const jobs = await until(async () => {
        const all = await t.db.job.findMany({ where: { kind: EMBED }, orderBy: { id: "asc" } });
        return all.every((j) => j.status !== "QUEUED" && j.status !== "RUNNING") && all;
      });
      expect(jobs.filter((j) => j.status === "FAILED").map((j) => j.error)).toEqual(["EmbedderStoppedError: the embedder is closed"]);
      expect(jobs.at(-1)).toMatchObject({ status: "SUCCEEDED" });
    } finally {
      await worker.stop();
    }
  }, 60_000);

  it("a model that keeps failing to load is tried again after a doubling wait, not every poll", async () => {
    let opens = 0;
    const open: typeof openEmbedder = async () => {
      opens++;
      throw new EmbedderFailedError("the embedding model did not load: corrupt file");
    };
    const config = loadConfig({ MODEL_DIR: modelDir, EMBED_MODEL_ID: MODEL_ID });
    const worker = await startEmbedWorker({ db: t.db, config, log: createLogger("silent"), role: "test", pollMs: 20, reloadMs: 100, open });
    // 1.2 s at a 20 ms poll: about 60 tries without a backoff; 100 + 200 + 400 ms waits allow 4.
    await new Promise((r) => setTimeout(r, 1_200));
    await worker.stop();
    expect(opens).toBeGreaterThanOrEqual(2);
    expect(opens).toBeLessThanOrEqual(5);
  });

  it("the API's query embedder loads the model again on the next search after its thread stopped while idle, without failing it", async () => {
    const threads: Worker[] = [];
    const config = loadConfig({ MODEL_DIR: modelDir, EMBED_MODEL_ID: MODEL_ID, EMBED_QUERY_CACHE_ENTRIES: "0" });
    const queries = new QueryEmbedder(config, openKeepingThreads(threads));
    try {
      expect(await queries.embedQuery("a dog")).toBeInstanceOf(Float32Array);
      await threads[0]!.terminate();
      expect(await queries.embedQuery("a hound")).toBeInstanceOf(Float32Array);
      expect(threads).toHaveLength(2);
    } finally {
      await queries.close();
    }
  });

  it("an installed model that does not load (a file cut short) turns semantic search off in status, with the reason and the command, not 'not embedded yet'", async () => {
    const config = loadConfig({ MODEL_DIR: modelDir, EMBED_MODEL_ID: MODEL_ID });
    const damaged = new QueryEmbedder(config, () => Promise.reject(new EmbedderFailedError(`the embedding model did not load: Load model from ${modelDir}/x/onnx/model.onnx failed: Protobuf parsing failed.`)), 200);
    try {
      expect(damaged.loadError()).toBeNull();
      await damaged.warm().catch(() => undefined);
      // No path: anyone may read status.
      expect(damaged.loadError()).toBe("Load model from <model folder> failed: Protobuf parsing failed.");
      const status = await semanticSearchStatus(t.db, config, damaged.loadError());
      expect(status).toMatchObject({ enabled: false, installed: true, command: expect.stringMatching(/^artdesc models pull --embed/) });
      expect(status.message).toMatch(/^Semantic search is off: the embedding model \(.+\) is installed but did not load \(Load model from <model folder> failed: Protobuf parsing failed\.\)\. Fetch it again with artdesc models pull --embed/);
      // Once it is due to be tried again (a pull since may have mended it), status no longer says so.
      await new Promise((r) => setTimeout(r, 250));
      expect(damaged.loadError()).toBeNull();
    } finally {
      await damaged.close();
    }
  });

  it("the API's query embedder loads the new weights after a pull of another revision, and forgets the old query vectors", async () => {
    // Its own folder: the shared one stays at seed 1 for the other tests.
    const dir = mkdtempSync(join(tmpdir(), "artdesc-embed-query-revision-"));
    const threads: Worker[] = [];
    const config = loadConfig({ MODEL_DIR: dir, EMBED_MODEL_ID: MODEL_ID, EMBED_MODEL_DTYPE: "fp32" });
    const queries = new QueryEmbedder(config, openKeepingThreads(threads), 100);
    try {
      synthEmbedModel({ preset: "embed-tiny", outDir: join(dir, MODEL_ID), dtype: ["fp32"] });
      const before = await queries.embedQuery("a hound");
      synthEmbedModel({ preset: "embed-tiny", outDir: join(dir, MODEL_ID), dtype: ["fp32"], seed: 2 });
      // Within retryMs it has not looked yet: the kept vector.
      expect(await queries.embedQuery("a hound")).toBe(before);
      await new Promise((r) => setTimeout(r, 150));
      expect(queries.available()).toBe(true);
      const after = await queries.embedQuery("a hound");
      expect(threads).toHaveLength(2);
      const fresh = await openEmbedder(config, 1);
      try {
        expect(fresh.info.revision).toBe("synth-embed-tiny-seed2");
        const [expected] = await fresh.embed(["a hound"], "query");
        expect([...after]).toEqual([...expected!]);
        expect([...after]).not.toEqual([...before]);
      } finally {
        await fresh.close();
      }
    } finally {
      await queries.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("stamps", () => {
  it("a run whose clock is behind the newest stamp stamps its vectors after it, so the vector index loads them", async () => {
    const modelId = "artdesc/stamp-test";
    const embedder = (x: number) => ({
      info: { modelId, dims: 2, dtype: "fp32" as const, revision: "r1" },
      embed: async (texts: readonly string[]) => texts.map(() => Float32Array.of(x, Math.sqrt(1 - x * x))),
    });
    const art = await makeArtwork(t.db, { qid: "Q950", title: "Reloj", description: "A clock on a wall." });
    await embedStale(t.db, embedder(1), 1_000);
    const first = await t.db.artworkEmbedding.findUniqueOrThrow({ where: { artworkId: art.id } });
    const index = onPostgres ? null : new VectorIndex(readConnection(t.db), modelId);
    index?.refresh();
    expect(index?.similarity(Float32Array.of(1, 0), art.id) ?? 1).toBeCloseTo(1, 6);
    // A second run (another process, or one that read its clock before the first committed) whose
    // clock is behind the first's stamp re-embeds the work's new text.
    await addDescription(t.db, art.id, "A clock on a wall, stopped at noon.");
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime(first.embeddedAt.getTime() - 60_000);
      expect((await embedStale(t.db, embedder(0), 1_000)).embedded).toBeGreaterThan(0);
    } finally {
      vi.useRealTimers();
    }
    const second = await t.db.artworkEmbedding.findUniqueOrThrow({ where: { artworkId: art.id } });
    expect(second.embeddedAt.getTime()).toBeGreaterThan(first.embeddedAt.getTime());
    // The index sees the count unchanged and a newer stamp: it loads the new vector.
    index?.refresh();
    expect(index?.similarity(Float32Array.of(1, 0), art.id) ?? 0).toBeCloseTo(0, 6);
  });
});

describe("embed job housekeeping", () => {
  it("failed embed jobs are removed after a week, finished ones after a day, when the next job is queued", async () => {
    await t.db.job.deleteMany({ where: { kind: EMBED } });
    const config = loadConfig({ MODEL_DIR: modelDir, EMBED_MODEL_ID: MODEL_ID });
    const daysAgo = (d: number) => new Date(Date.now() - d * 86_400_000);
    const old = await t.db.job.create({ data: { kind: EMBED, status: "FAILED", error: "EmbedderStoppedError: the embedder is closed", finishedAt: daysAgo(8) } });
    const recent = await t.db.job.create({ data: { kind: EMBED, status: "FAILED", error: "EmbedderStoppedError: the embedder is closed", finishedAt: daysAgo(2) } });
    const done = await t.db.job.create({ data: { kind: EMBED, status: "SUCCEEDED", finishedAt: daysAgo(2) } });
    await makeArtwork(t.db, { title: "Nuevo", description: "A work with no vector yet." });
    expect(await queueEmbedJob(t.db, config)).not.toBeNull();
    const left = new Set((await t.db.job.findMany({ where: { kind: EMBED } })).map((j) => j.id));
    expect([left.has(old.id), left.has(recent.id), left.has(done.id)]).toEqual([false, true, false]);
  });
});

describe("the background embedder and other processes' clocks", () => {
  it("re-embeds a title changed by a process whose clock is behind, and does not queue jobs for a work written by one that is ahead", async () => {
    const config = loadConfig({ MODEL_DIR: modelDir, EMBED_MODEL_ID: MODEL_ID });
    const worker = await startEmbedWorker({ db: t.db, config, log: createLogger("silent"), role: "test", pollMs: 50 });
    try {
      const art = await makeArtwork(t.db, { title: "Reloj", description: "A clock on a wall." });
      await until(async () => (await countStale(t.db, installedVectorModel(config))) === 0 && (await t.db.artworkEmbedding.findUnique({ where: { artworkId: art.id } })));
      await until(async () => (await t.db.job.count({ where: { kind: EMBED, status: { in: ["QUEUED", "RUNNING"] } } })) === 0);
      // Written by a process an hour ahead: its updatedAt stays later than anything this embedder writes.
      await t.db.artwork.update({ where: { id: art.id }, data: { lastSyncedAt: new Date(), updatedAt: new Date(Date.now() + 3_600_000) } });
      const jobsBefore = await t.db.job.count({ where: { kind: EMBED } });
      await new Promise((r) => setTimeout(r, 600));
      expect(await t.db.job.count({ where: { kind: EMBED } })).toBe(jobsBefore);
      // A title changed by a process an hour behind: its updatedAt is earlier than the vector's embeddedAt.
      await t.db.artwork.update({ where: { id: art.id }, data: { title: "Reloj de pared", updatedAt: new Date(Date.now() - 3_600_000) } });
      const hash = textHash(passageText("Reloj de pared", "A clock on a wall."));
      await until(async () => (await t.db.artworkEmbedding.findUnique({ where: { artworkId: art.id } }))?.textHash === hash);
    } finally {
      await worker.stop();
    }
  }, 60_000);
});

describe("pure parts", () => {
  it("embeds title and description; hashes the text; round-trips float32 blobs", () => {
    expect(passageText(" Perro ", " A hound. ")).toBe("Perro. A hound.");
    expect(passageText(null, "A hound.")).toBe("A hound.");
    expect(textHash("a")).not.toBe(textHash("b"));
    const v = Float32Array.of(0.5, -0.25, 1e-7);
    expect(decodeVector(encodeVector(v))).toEqual(v);
    // An unaligned blob still decodes.
    const bytes = new Uint8Array(13);
    bytes.set(encodeVector(v), 1);
    expect(decodeVector(bytes.subarray(1))).toEqual(v);
  });

  it("a model folder's revision: the pulled commit, else the recorded revision, else EMBED_MODEL_REVISION", () => {
    const dir = mkdtempSync(join(tmpdir(), "artdesc-embed-rev-"));
    try {
      const config = loadConfig({ MODEL_DIR: dir, EMBED_MODEL_ID: "someone/e5-model", EMBED_MODEL_REVISION: "v2" });
      const folder = join(dir, "someone/e5-model");
      mkdirSync(folder, { recursive: true });
      expect(embedModelRevision(config)).toBe("v2");
      const record = { model: "someone/e5-model", revision: "main", commit: "0123456789abcdef0123456789abcdef01234567", source: "hub", dtypes: ["quantized"] };
      writeFileSync(join(folder, REVISION_FILE), JSON.stringify(record));
      expect(embedModelRevision(config)).toBe(record.commit);
      writeFileSync(join(folder, REVISION_FILE), JSON.stringify({ ...record, commit: null }));
      expect(embedModelRevision(config)).toBe("main");
      // Cut short while written: unknown, so the configured one.
      writeFileSync(join(folder, REVISION_FILE), "{\"model\": \"some");
      expect(embedModelRevision(config)).toBe("v2");
      expect(embedderKey({ modelId: "someone/e5-model", dtype: "quantized", revision: "abc" })).toBe("someone/e5-model:quantized@abc");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the vector index follows inserts, updates and deletions, and ranks best first, ties by id", () => {
    const db = new Database(":memory:");
    db.exec(`CREATE TABLE ArtworkEmbedding (artworkId INTEGER PRIMARY KEY, modelId TEXT, descriptionId INT, textHash TEXT, dims INT, vector BLOB, embeddedAt TEXT)`);
    const put = db.prepare(`INSERT OR REPLACE INTO ArtworkEmbedding VALUES (?, ?, 1, 'h', 2, ?, ?)`);
    const unit = (a: number) => encodeVector(Float32Array.of(Math.cos(a), Math.sin(a)));
    put.run(1, "m", unit(0), "1");
    put.run(2, "m", unit(0.5), "1");
    put.run(3, "other", unit(0), "1");
    const index = new VectorIndex(db, "m");
    index.refresh();
    expect(index.count).toBe(2);
    const q = Float32Array.of(1, 0);
    expect(index.nearest(q, 5, () => true).map((n) => n.artworkId)).toEqual([1, 2]);
    put.run(4, "m", unit(0), "2");
    put.run(2, "m", unit(0.01), "2");
    index.refresh();
    expect(index.count).toBe(3);
    const near = index.nearest(q, 2, () => true);
    expect(near.map((n) => n.artworkId)).toEqual([1, 4]);
    expect(near[0]!.similarity).toBeCloseTo(1, 6);
    expect(index.nearest(q, 5, (id) => id !== 1).map((n) => n.artworkId)).toEqual([4, 2]);
    db.prepare(`DELETE FROM ArtworkEmbedding WHERE artworkId = 1`).run();
    index.refresh();
    expect(index.count).toBe(2);
    expect(index.vectorOf(1)).toBeNull();
    expect(index.nearest(q, 5, () => true).map((n) => n.artworkId)).toEqual([4, 2]);
    // A delete and an insert between two refreshes (same count): the new row is found, the old one dropped.
    db.prepare(`DELETE FROM ArtworkEmbedding WHERE artworkId = 4`).run();
    put.run(5, "m", unit(0), "3");
    index.refresh();
    expect(index.nearest(q, 5, () => true).map((n) => n.artworkId)).toEqual([5, 2]);
    expect(index.nearest(Float32Array.of(1, 0, 0), 5, () => true)).toEqual([]);
  });
});
