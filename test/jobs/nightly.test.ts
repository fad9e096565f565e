import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Config, loadConfig } from "../../src/config.js";
import { setHumanDescription } from "../../src/jobs/descriptions.js";
import { describeAfterSync } from "../../src/jobs/queue.js";
import { startWorker } from "../../src/jobs/worker.js";
import { createLogger } from "../../src/log.js";
import { runSync } from "../../src/sync/sync.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { scriptedDescriber } from "../support/scripted-describer.js";
import { CASES, changeWorld, startWikidataWorld, type WikidataWorld } from "../support/wikidata-world/index.js";

let world: WikidataWorld;
let t: TestDb;
let config: Config;
let imageDir: string;
const log = createLogger("silent");

beforeAll(async () => {
  world = await startWikidataWorld();
  t = await createTestDb();
  imageDir = mkdtempSync(join(tmpdir(), "artdesc-images-"));
  config = loadConfig({ ...world.env, DATABASE_URL: t.url, IMAGE_DIR: imageDir, HEARTBEAT_INTERVAL_S: "0.2", WORKER_BATCH: "4" });
});
afterAll(async () => {
  await world?.stop();
  await t?.close();
  rmSync(imageDir, { recursive: true, force: true });
});

/** Runs the worker until the queue is empty. */
async function drainQueue() {
  const w = await startWorker({ db: t.db, config, log, openDescriber: async () => scriptedDescriber({ steps: 2, stepMs: 1 }), pollMs: 20, progressEveryMs: 20 });
  const until = Date.now() + 30_000;
  while ((await t.db.job.count({ where: { status: { in: ["QUEUED", "RUNNING"] } } })) > 0) {
    if (Date.now() > until) throw new Error("queue did not drain");
    await new Promise((r) => setTimeout(r, 50));
  }
  await w.stop();
}

describe("nightly flow on the local Wikidata world", () => {
  it("after the first sync every work with an image is described; works without are counted", async () => {
    const run = await runSync({ db: t.db, config, log }, { trigger: "schedule" });
    expect(run.status).toBe("PARTIAL");
    const queued = await describeAfterSync({ db: t.db, config, log })(run.runId);
    const withImage = await t.db.artwork.count({ where: { state: "ACTIVE", images: { some: { isMain: true, missing: false, localPath: { not: null } } } } });
    expect(queued).toBe(withImage);
    expect(withImage).toBeGreaterThan(20);
    await drainQueue();
    const active = await t.db.artwork.findMany({ where: { state: "ACTIVE" }, include: { currentDescription: true, images: { where: { isMain: true } } } });
    for (const a of active) {
      const img = a.images[0];
      if (img && !img.missing && img.localPath) {
        expect(a.currentDescription).toMatchObject({ source: "MODEL", imageId: img.id, numBeams: config.DESCRIBE_NUM_BEAMS });
      } else expect(a.currentDescriptionId).toBeNull();
    }
    expect(active.find((a) => a.qid === CASES.noImage)?.currentDescriptionId).toBeNull();
  });

  it("the next night describes only the re-uploaded image and keeps a person's text", async () => {
    const human = await t.db.artwork.findUniqueOrThrow({ where: { qid: "Q910001" } });
    await setHumanDescription(t.db, human.id, "A curator's words.");
    // The curator's work gets a new file too: still not replaced.
    await changeWorld(world.model);
    // Colour figures measured on the old copies (the quality checks store them once per image).
    await t.db.image.updateMany({ data: { chroma: 0.2, tintHue: 40, tintChroma: 3 } });
    // A full sync looks at every image record (an incremental one only at edited items).
    const run = await runSync({ db: t.db, config, log }, { trigger: "schedule", full: true });
    expect(run.status).toBe("PARTIAL");
    const before = await t.db.description.count();
    const queued = await describeAfterSync({ db: t.db, config, log })(run.runId);
    const jobs = await t.db.job.findMany({ where: { status: "QUEUED" }, include: { artwork: true } });
    expect(jobs.map((j) => j.artwork!.qid)).toEqual([CASES.changing]);
    expect(queued).toBe(1);
    // The re-downloaded file is measured afresh; the others keep theirs.
    const redone = await t.db.image.findFirstOrThrow({ where: { artworkId: jobs[0]!.artworkId!, isMain: true } });
    expect(redone).toMatchObject({ chroma: null, tintHue: null, tintChroma: null });
    expect(await t.db.image.count({ where: { chroma: 0.2 } })).toBeGreaterThan(10);
    await drainQueue();
    expect(await t.db.description.count()).toBe(before + 1);
    const changing = await t.db.artwork.findUniqueOrThrow({ where: { qid: CASES.changing }, include: { currentDescription: true } });
    expect(changing.currentDescription?.jobId).toBe(jobs[0]!.id);
    const kept = await t.db.artwork.findUniqueOrThrow({ where: { id: human.id }, include: { currentDescription: true } });
    expect(kept.currentDescription).toMatchObject({ source: "HUMAN", text: "A curator's words." });
    // A third night with nothing new queues nothing.
    const quiet = await runSync({ db: t.db, config, log }, { trigger: "schedule", full: true });
    expect(await describeAfterSync({ db: t.db, config, log })(quiet.runId)).toBe(0);
  });
});
