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
