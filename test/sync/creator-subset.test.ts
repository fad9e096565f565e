import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/log.js";
import { runSync } from "../../src/sync/sync.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { makeArtwork, makeCreator } from "../support/factories.js";
import { startWikidataWorld, type WikidataWorld } from "../support/wikidata-world/index.js";

let world: WikidataWorld;
let t: TestDb;
let imageDir: string;

beforeAll(async () => {
  world = await startWikidataWorld({ generated: 3, hardCases: false });
  t = await createTestDb();
  imageDir = mkdtempSync(join(tmpdir(), "artdesc-subset-"));
});
afterAll(async () => {
  await world.stop();
  await t.close();
  rmSync(imageDir, { recursive: true, force: true });
});

it("a run over some creators leaves alone the works it shares with creators it did not read", async () => {
  const config = loadConfig({ ...world.env, SYNC_CREATORS: "Q5432,Q296", DATABASE_URL: t.url, IMAGE_DIR: imageDir });
  const log = createLogger("silent");
  await runSync({ db: t.db, config, log }, { creators: ["Q5432"] });
  const goya = await t.db.creator.findUniqueOrThrow({ where: { qid: "Q5432" } });
  const monet = await makeCreator(t.db, { qid: "Q296", labels: { en: "Claude Monet" } });
  // Not in Goya's inventory: one work shared with a creator this run does not read, one Goya's alone.
  const shared = await makeArtwork(t.db, { qid: "Q90000001", creators: [{ id: goya.id }, { id: monet.id }] });
  const alone = await makeArtwork(t.db, { qid: "Q90000002", creators: [{ id: goya.id }] });
  await runSync({ db: t.db, config, log }, { creators: ["Q5432"] });
  expect((await t.db.artwork.findUniqueOrThrow({ where: { id: shared.id } })).state).toBe("ACTIVE");
  expect((await t.db.artwork.findUniqueOrThrow({ where: { id: alone.id } })).state).not.toBe("ACTIVE");
});

it("a work that moved to a creator read once by `sync --creator` loses the old credit on the next nightly, and stays its new creator's", async () => {
  const db = await createTestDb();
  try {
    const config = loadConfig({ ...world.env, SYNC_CREATORS: "Q5432", DATABASE_URL: db.url, IMAGE_DIR: imageDir });
    const log = createLogger("silent");
    await runSync({ db: db.db, config, log });
    const moved = "Q910002";
    world.model.edit(moved, (w) => (w.creators = [{ value: "Q296" }]));
    const credits = async () =>
      (await db.db.artwork.findUniqueOrThrow({ where: { qid: moved }, include: { creators: { include: { creator: true } } } })).creators.map((c) => c.creator.qid).sort();
    // A one-off run for Monet reads the work as his; Goya's credit is not this run's to judge.
    await runSync({ db: db.db, config, log }, { creators: ["Q296"] });
    expect(await credits()).toEqual(["Q296", "Q5432"]);
    const before = await db.db.artwork.findUniqueOrThrow({ where: { qid: moved } });
    // The nightly (Goya alone): the work is not in his inventory, and Wikidata credits Monet alone.
    const r = await runSync({ db: db.db, config, log });
    expect(r).toMatchObject({ updated: 1, removed: 0 });
    expect(await credits()).toEqual(["Q296"]);
    const after = await db.db.artwork.findUniqueOrThrow({ where: { qid: moved } });
    expect(after.state).toBe("ACTIVE");
    expect(after.updatedAt.getTime()).toBeGreaterThan(before.updatedAt.getTime());
    const goya = await db.db.creator.findUniqueOrThrow({ where: { qid: "Q5432" } });
    expect(await db.db.artworkCreator.count({ where: { creatorId: goya.id, artwork: { qid: moved } } })).toBe(0);
  } finally {
    world.model.edit("Q910002", (w) => (w.creators = [{ value: "Q5432" }]));
    await db.close();
  }
});
