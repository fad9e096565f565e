import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/log.js";
import { runSync } from "../../src/sync/sync.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { startWikidataWorld, type WikidataWorld } from "../support/wikidata-world/index.js";

let world: WikidataWorld;
let t: TestDb;
let imageDir: string;

beforeAll(async () => {
  world = await startWikidataWorld({ generated: 1, hardCases: false });
  t = await createTestDb();
  imageDir = mkdtempSync(join(tmpdir(), "artdesc-nul-text-"));
});
afterAll(async () => {
  await world.stop();
  await t.close();
  rmSync(imageDir, { recursive: true, force: true });
});

it("a label, title or file name with U+0000 from Wikidata is stored without it, on SQLite and PostgreSQL alike, and the run succeeds", async () => {
  world.model.addWork({ qid: "Q990077", labels: { en: "Bad\u0000label", es: "\u0000Otra" }, creators: [{ value: "Q5432" }], images: [] });
  const config = loadConfig({ ...world.env, SYNC_CREATORS: "Q5432", DATABASE_URL: t.url, IMAGE_DIR: imageDir });
  const r = await runSync({ db: t.db, config, log: createLogger("silent") }, { creators: ["Q5432"] });
  expect(r).toMatchObject({ status: "SUCCEEDED", created: 2, failed: 0 });
  const work = await t.db.artwork.findUniqueOrThrow({ where: { qid: "Q990077" } });
  expect(work.title).toBe("Badlabel");
  expect(JSON.parse(work.titles)).toEqual({ en: "Badlabel", es: "Otra" });
  const labels = await t.db.artwork.findMany({ select: { title: true, titles: true } });
  for (const l of labels) expect(JSON.stringify(l)).not.toContain("\\u0000");
});
