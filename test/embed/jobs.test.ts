import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_EMBED_MODEL_DTYPE, loadConfig } from "../../src/config.js";
import { synthEmbedModel } from "../../src/describe/models/embed-synth.js";
import { type Embedder, openEmbedder } from "../../src/embed/embedder.js";
import { claimEmbedJob, queueEmbedJob, runEmbedJob, startEmbedWorker } from "../../src/embed/jobs.js";
import { LostClaimError } from "../../src/jobs/descriptions.js";
import { vectorModelId } from "../../src/embed/model-files.js";
import { countStale, decodeVector, embedStale, encodeVector, passageText, textHash } from "../../src/embed/store.js";
import { VectorIndex } from "../../src/embed/vector-index.js";
import { cancelJob, EMBED, requeueStale } from "../../src/jobs/queue.js";
import { createLogger } from "../../src/log.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { addDescription, makeArtwork } from "../support/factories.js";

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
      const jobs = await t.db.job.findMany({ where: { kind: EMBED } });
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
    expect([await countStale(t.db, MODEL_ID), await countStale(t.db, quantized)]).toEqual([0, described]);
    await embedAll("quantized");
    expect(await t.db.artworkEmbedding.count({ where: { modelId: quantized } })).toBe(described);
    expect([await countStale(t.db, MODEL_ID), await countStale(t.db, quantized)]).toEqual([described, 0]);
  });

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
