import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/log.js";
import { runSync } from "../../src/sync/sync.js";
import type { TestDb } from "../support/db.js";
import { openSyncTestWorld, type SyncTestWorld } from "../support/sync-world.js";
import { generatedJpeg } from "../support/wikidata-world/goya.js";
import { type WikidataWorld, WorldModel } from "../support/wikidata-world/index.js";

// Commons makes no thumbnail of some files (a huge TIFF: imageinfo has thumberror, no thumburl):
// only the original can be had, and its record says whether it may be.
const PAINTER = "Q950100";
let world: WikidataWorld;
let t: TestDb;
let imageDir: string;
let opened: SyncTestWorld;

beforeAll(async () => {
  const model = new WorldModel();
  model.items.set(PAINTER, { en: "A Painter" });
  const small = await generatedJpeg(1, 200);
  model.setFile("File:Small original.jpg", { ...small, noThumbnail: true });
  model.setFile("File:Heavy original.tif", { ...(await generatedJpeg(2, 200)), noThumbnail: true, size: 1_500_000_000, mime: "image/tiff" });
  model.setFile("File:Huge original.tif", { ...(await generatedJpeg(3, 200)), noThumbnail: true, width: 40_000, height: 30_000, mime: "image/tiff" });
  model.addWork({ qid: "Q950201", labels: { en: "Small" }, creators: [{ value: PAINTER }], images: [{ file: "Small original.jpg" }] });
  model.addWork({ qid: "Q950202", labels: { en: "Heavy" }, creators: [{ value: PAINTER }], images: [{ file: "Heavy original.tif" }] });
  model.addWork({ qid: "Q950203", labels: { en: "Huge" }, creators: [{ value: PAINTER }], images: [{ file: "Huge original.tif" }] });
  opened = await openSyncTestWorld({ model });
  ({ world, t, imageDir } = opened);
});
afterAll(() => opened?.close());

describe("a file Commons has no thumbnail of", () => {
  it("is downloaded from its original when its record allows it, and refused from its record, without a download, when not", async () => {
    const config = loadConfig({ ...world.env, SYNC_CREATORS: PAINTER, DATABASE_URL: t.url, IMAGE_DIR: imageDir, HTTP_MAX_BODY_BYTES: String(100 * 1024 * 1024) });
    const summary = await runSync({ db: t.db, config, log: createLogger("silent") });
    const downloads = world.requests.filter((r) => r.target === "image").map((r) => decodeURIComponent(r.path));
    expect(downloads).toHaveLength(1);
    expect(downloads[0]).toMatch(/\/file\/[0-9a-f]+\/Small_original\.jpg$/);
    const images = await t.db.image.findMany({ orderBy: { fileTitle: "asc" }, select: { fileTitle: true, localPath: true } });
    expect(images.map((i) => [i.fileTitle, i.localPath !== null])).toEqual([
      ["File:Heavy original.tif", false],
      ["File:Huge original.tif", false],
      ["File:Small original.jpg", true],
    ]);
    const failures = await t.db.syncFailure.findMany({ where: { syncRunId: summary.runId }, orderBy: { fileTitle: "asc" }, select: { stage: true, fileTitle: true, reason: true } });
    expect(failures).toEqual([
      { stage: "download", fileTitle: "File:Heavy original.tif", reason: expect.stringMatching(/no thumbnail of this file, and its original \(1500000000 bytes\) is larger than HTTP_MAX_BODY_BYTES/) },
      { stage: "download", fileTitle: "File:Huge original.tif", reason: expect.stringMatching(/no thumbnail of this file, and its original is refused: image is 40000×30000 px: over the pixel limit/) },
    ]);
  });
});
