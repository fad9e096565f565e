import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestDb, type TestDb } from "./db.js";
import { startWikidataWorld, type WikidataWorld, type WikidataWorldOptions } from "./wikidata-world/index.js";

/** What a sync test runs against: a started Wikidata world, a test database and an image folder; `close` ends all three. */
export interface SyncTestWorld {
  world: WikidataWorld;
  t: TestDb;
  imageDir: string;
  close(): Promise<void>;
}

export async function openSyncTestWorld(options: WikidataWorldOptions = {}): Promise<SyncTestWorld> {
  const world = await startWikidataWorld(options);
  let t: TestDb;
  try {
    t = await createTestDb();
  } catch (err) {
    await world.stop();
    throw err;
  }
  const imageDir = mkdtempSync(join(tmpdir(), "artdesc-images-"));
  return {
    world,
    t,
    imageDir,
    close: async () => {
      await world.stop();
      await t.close();
      rmSync(imageDir, { recursive: true, force: true });
    },
  };
}
