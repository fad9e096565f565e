import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Config, loadConfig } from "../../src/config.js";
import { closeDb, createDb, type Db, Prisma } from "../../src/db.js";
import { encodeVector } from "../../src/embed/store.js";
import { writeExport } from "../../src/export/export.js";
import { createExperiment } from "../../src/experiments/store.js";
import { enqueueDescribe } from "../../src/jobs/queue.js";
import { createLogger } from "../../src/log.js";
import { qualityRecomputeCommand } from "../../src/quality/command.js";
import { reviewDescription } from "../../src/review/review.js";
import { migrate } from "../../src/store/migrate.js";
import { runSync } from "../../src/sync/sync.js";
import { commandIo, TextSink } from "../support/cli.js";
import { addDescription, makeArtwork } from "../support/factories.js";
import { startWikidataWorld } from "../support/wikidata-world/index.js";

/** Accented, emoji and other non-ASCII text that both stores must keep byte for byte. */
export const UNICODE_TEXT = "La reina María Luisa 👑 con mantilla — «Goya», 1799; Ærø ŝ 日本語 \u{1F3A8}\u200d tab\there\nnew line 'quote' \"double\" \\ backslash";

export interface Mirror {
  url: string;
  file: string;
  imageDir: string;
  config: Config;
  close(): Promise<void>;
}

/**
 * A SQLite mirror filled by the real code paths: a sync of the local Goya world (creators, labels,
 * works, links, downloaded images, a PARTIAL run with failures), model and human descriptions with
 * history, quality signals (`quality recompute`), reviews (an approval and a rejection that queues a
 * fallback job), queued jobs, an experiment with its jobs, an embedding vector, a null-heavy work,
 * a deleted work (its id must never come back), a lease and a heartbeat (not copied).
 */
export async function buildMirror(): Promise<Mirror> {
  const dir = mkdtempSync(join(tmpdir(), "artdesc-copy-"));
  const file = join(dir, "source.db");
  const imageDir = join(dir, "images");
  const url = `file:${file}`;
  migrate(file);
  const db = await createDb(url);
  const world = await startWikidataWorld();
  const config = loadConfig({ ...world.env, DATABASE_URL: url, IMAGE_DIR: imageDir, LOG_LEVEL: "silent" });
  try {
    await runSync({ db, config, log: createLogger("silent") });
  } finally {
    await world.stop();
  }
  const works = await db.artwork.findMany({ where: { state: "ACTIVE", images: { some: { isMain: true, localPath: { not: null } } } }, orderBy: { id: "asc" }, take: 6 });
  const [a, b, c, d, e] = works;
  if (!a || !b || !c || !d || !e) throw new Error("the Goya world synced fewer works than expected");
  const first = await addDescription(db, a.id, "A woman in a dark dress stands before a curtain.");
  await addDescription(db, a.id, "A woman in a black dress holds a fan; a small dog sits at her feet.");
  const human = await addDescription(db, b.id, UNICODE_TEXT, "HUMAN");
  const rejected = await addDescription(db, c.id, "A blurry text that a reviewer rejects.");
  await qualityRecomputeCommand(db, config, {}, commandIo());
  await reviewDescription(db, config, { descriptionId: human.id, verdict: "APPROVED", note: "Très bien ✔", reviewer: "curator" });
  await reviewDescription(db, config, { descriptionId: rejected.id, verdict: "REJECTED", note: null, reviewer: "curator" });
  await reviewDescription(db, config, { descriptionId: first.id, verdict: "NEEDS_WORK", note: "older text", reviewer: "second reader" });
  const mainImage = (artworkId: number) => db.image.findFirstOrThrow({ where: { artworkId, isMain: true } });
  await enqueueDescribe(db, config, { artworkId: d.id, imageId: (await mainImage(d.id)).id, params: { numBeams: 2 }, reason: "a person asked", requestedBy: "ana" });
  await enqueueDescribe(db, config, { artworkId: e.id, imageId: (await mainImage(e.id)).id });
  await createExperiment(db, config, { name: "beams ⚖", sampleSize: 3, seed: 7, arms: [{ name: "a", params: { numBeams: 1 } }, { name: "b", params: { numBeams: 3 } }] });
  const vector = new Float32Array([0.5, -0.25, 1 / 3, Math.PI / 10, -0, 1e-30, 0.1, 0.7]);
  await db.artworkEmbedding.create({
    data: { artworkId: a.id, modelId: "test/embed", descriptionId: (await db.artwork.findUniqueOrThrow({ where: { id: a.id } })).currentDescriptionId!, textHash: "ab".repeat(32), dims: 8, vector: encodeVector(vector) },
  });
  // A null-heavy work: no date, no image, no description, no creators.
  const bare = await makeArtwork(db, { qid: "Q99000001", title: "Sin título", titles: {}, inception: null, image: false });
  await db.artwork.update({ where: { id: bare.id }, data: { title: null, lastSyncedAt: null } });
  // A deleted work: the next id on any copy must be past it.
  const gone = await makeArtwork(db, { qid: "Q99000002", image: false });
  await db.artwork.delete({ where: { id: gone.id } });
  await db.heartbeat.create({ data: { id: "worker-copy-test", role: "worker", pid: 1, hostname: "source-host" } });
  await db.lease.create({ data: { name: "sync", holder: "source-process", expiresAt: new Date(Date.now() + 60_000), startTicks: 123456789012345n } });
  await closeDb(db);
  return { url, file, imageDir, config, close: async () => rmSync(dir, { recursive: true, force: true }) };
}

/** `artdesc export` as JSON lines, every work included. */
export async function exportJsonl(db: Db): Promise<string> {
  const sink = new TextSink();
  await writeExport(db, sink, { format: "jsonl", includeInactive: true, altTextMaxChars: 125 });
  return sink.text;
}

/** Rows of every model of the client (copied or not), by model name. */
export async function countAll(db: Db): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const model of Object.values(Prisma.ModelName)) {
    out[model] = await (db as unknown as Record<string, { count(): Promise<number> }>)[model[0]!.toLowerCase() + model.slice(1)]!.count();
  }
  return out;
}
