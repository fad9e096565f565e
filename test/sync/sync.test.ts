import { existsSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Config, loadConfig } from "../../src/config.js";
import { createGraphqlApp } from "../../src/graphql/yoga.js";
import { createLogger } from "../../src/log.js";
import type { SyncSummary } from "../../src/sync/summary.js";
import { runSync } from "../../src/sync/sync.js";
import type { TestDb } from "../support/db.js";
import { openSyncTestWorld, type SyncTestWorld } from "../support/sync-world.js";
import { gql } from "../support/graphql.js";
import { CASES, changeWorld, LARGE_FILE_SIZE, type WikidataWorld } from "../support/wikidata-world/index.js";

let world: WikidataWorld;
let t: TestDb;
let config: Config;
let imageDir: string;
const log = createLogger("silent");
let first: SyncSummary;

const sync = (o: Parameters<typeof runSync>[1] = {}) => runSync({ db: t.db, config, log }, o);
const artwork = (qid: string) =>
  t.db.artwork.findUniqueOrThrow({
    where: { qid },
    include: { images: { orderBy: { position: "asc" } }, creators: { include: { creator: true } }, links: { include: { item: true } } },
  });

let opened: SyncTestWorld;

beforeAll(async () => {
  opened = await openSyncTestWorld();
  ({ world, t, imageDir } = opened);
  config = loadConfig({ ...world.env, DATABASE_URL: t.url, IMAGE_DIR: imageDir });
  first = await sync();
});
afterAll(() => opened?.close());

describe("first sync of the Goya world", () => {
  it("mirrors every work in the inventory and records the run", async () => {
    expect(first.status).toBe("PARTIAL");
    expect(first.full).toBe(true);
    expect(first.seen).toBe(35);
    expect(first.created).toBe(35);
    expect(await t.db.artwork.count()).toBe(35);
    const run = await t.db.syncRun.findUniqueOrThrow({ where: { id: first.runId }, include: { failures: true } });
    expect(run.status).toBe("PARTIAL");
    expect(run.finishedAt).not.toBeNull();
    // The lost file and the bomb fail; nothing else does.
    expect(run.failures.map((f) => [f.stage, f.fileTitle]).sort()).toEqual([
      ["imageinfo", "File:Goya lost.jpg"],
      ["normalise", "File:Goya bomb.png"],
    ]);
    expect(run.failures.find((f) => f.stage === "normalise")!.reason).toMatch(/pixel limit/i);
  });

  it("stores the creator with search-form labels", async () => {
    const goya = await t.db.creator.findUniqueOrThrow({ where: { qid: "Q5432" }, include: { labels: true } });
    expect(goya.label).toBe("Francisco Goya");
    expect(goya.labels.map((l) => l.normalized).sort()).toEqual([" francisco de goya ", " francisco goya "]);
  });

  it("serves the synced works through the GraphQL creator filter", async () => {
    const yoga = createGraphqlApp({ db: t.db, config });
    for (const creator of ["goya", "Francisco de Goya", "Q5432"]) {
      const r = await gql(yoga, `query($c: String) { artworks(creator: $c, limit: 500) { qid } }`, { c: creator });
      expect(r.data.artworks).toHaveLength(35);
    }
    const r = await gql(yoga, `{ artworks(creator: "goya", attribution: [WORKSHOP_OF]) { qid } }`);
    expect(r.data.artworks).toEqual([{ qid: CASES.workshop }]);
  });

  it("reads titles, dates, dimensions and linked items", async () => {
    const a = await artwork("Q910001");
    expect(a.qidNumber).toBe(910001);
    expect(JSON.parse(a.titles)).toEqual({ en: "Work 1", es: "Título 1" });
    expect(a.title).toBe("Work 1");
    expect(a).toMatchObject({ inception: "1770-01-10T00:00:00Z", inceptionPrecision: 9, inceptionYear: 1770, height: 100, heightUnit: "Q174728", width: 80.5 });
    expect(a.wikidataRevision).toBe(BigInt(world.model.works.get("Q910001")!.revision));
    expect(a.lastSyncedAt).not.toBeNull();
    const byProp = Object.fromEntries(a.links.map((l) => [l.property, l.item]));
    expect(byProp.P195).toMatchObject({ qid: "Q160236", label: "Museo del Prado" });
    expect(JSON.parse(byProp.P186!.labels)).toEqual({ en: "oil paint", es: "óleo" });
  });

  it("stores revision ids and file sizes past 2^31, and serves the revision as decimal digits", async () => {
    const revision = world.model.works.get(CASES.largePng)!.revision;
    expect(revision).toBeGreaterThan(2 ** 31);
    const a = await artwork(CASES.largePng);
    expect(a.wikidataRevision).toBe(BigInt(revision));
    expect(a.images[0]).toMatchObject({ bytes: BigInt(LARGE_FILE_SIZE), localPath: expect.any(String) });
    const yoga = createGraphqlApp({ db: t.db, config });
    const r = await gql(yoga, `query($id: ID!) { artwork(id: $id) { ... on Artwork { wikidataRevision } } }`, { id: CASES.largePng });
    expect(r).toEqual({ data: { artwork: { wikidataRevision: String(revision) } } });
  });

  it("handles the hard cases", async () => {
    expect((await artwork(CASES.attributed)).creators.map((c) => c.attribution)).toEqual(["ATTRIBUTED_TO"]);
    expect((await artwork(CASES.workshop)).creators.map((c) => c.attribution)).toEqual(["WORKSHOP_OF"]);
    expect(await t.db.artwork.findUnique({ where: { qid: CASES.deprecated } })).toBeNull();
    expect((await artwork(CASES.noImage)).images).toEqual([]);
    const two = await artwork(CASES.twoImages);
    expect(two.images.map((i) => [i.fileTitle, i.isMain])).toEqual([
      ["File:Goya two A.jpg", false],
      ["File:Goya two B.jpg", true],
    ]);
    expect(await artwork(CASES.unknownDate)).toMatchObject({ inception: null, inceptionYear: null });
    expect(await artwork(CASES.decade)).toMatchObject({ inception: "1790-01-01T00:00:00Z", inceptionPrecision: 8, inceptionYear: 1790 });
    expect((await artwork(CASES.missingFile)).images[0]).toMatchObject({ missing: true, localPath: null });
    const renamed = (await artwork(CASES.redirectedFile)).images[0]!;
    expect(renamed.fileTitle).toBe("File:Goya old name.jpg");
    expect(renamed.localPath).not.toBeNull();
    expect((await artwork(CASES.bomb)).images[0]!.localPath).toBeNull();
  });

  it("normalises images: sRGB JPEG, longest edge IMAGE_EDGE, rotated, no alpha, stored by hash", async () => {
    for (const [qid, w, h] of [
      [CASES.largePng, 256, 171],
      [CASES.grayscale, 192, 256],
      [CASES.cmyk, 256, 192],
      [CASES.rotated, 128, 256],
    ] as const) {
      const img = (await artwork(qid)).images[0]!;
      expect(img.localPath).toMatch(/^[0-9a-f]{2}\/[0-9a-f]{64}\.jpg$/);
      expect(img.localPath!.slice(0, 2)).toBe(img.localHash!.slice(0, 2));
      const meta = await sharp(join(imageDir, img.localPath!)).metadata();
      expect([qid, meta.format, meta.space, meta.channels, meta.width, meta.height, meta.hasAlpha, meta.exif, meta.icc]).toEqual([
        qid, "jpeg", "srgb", 3, w, h, false, undefined, undefined,
      ]);
      expect(img).toMatchObject({ localWidth: w, localHeight: h, licenseShortName: "Public domain", artist: "Francisco de Goya (1746–1828)", credit: "Museo del Prado" });
    }
    const { data } = await sharp(join(imageDir, (await artwork(CASES.largePng)).images[0]!.localPath!)).raw().toBuffer({ resolveWithObject: true });
    // 40% red over white, not over black.
    expect(data[0]).toBeGreaterThan(220);
    expect(data[1]).toBeGreaterThan(140);
  });

  it("sends a User-Agent with the contact on every request", () => {
    expect(new Set(world.requests.map((r) => r.userAgent))).toEqual(new Set([expect.stringMatching(/^artdesc\/\d+\.\d+\.\d+ \(https:\/\/example\.org\/artdesc-tests\) undici\/[\d.]+$/)]));
    expect(world.requests.filter((r) => r.target !== "sparql" && r.target !== "image").every((r) => r.params.get("maxlag") === "5")).toBe(true);
  });
});

describe("second sync", () => {
  it("with nothing changed: one inventory query, no download, nothing written but the run", async () => {
    const before = world.requests.length;
    const counts = async () => ({
      artworks: await t.db.artwork.findMany({ orderBy: { id: "asc" } }),
      images: await t.db.image.findMany({ orderBy: { id: "asc" } }),
      links: await t.db.linkedItem.findMany({ orderBy: { qid: "asc" } }),
      creators: await t.db.creatorLabel.findMany(),
    });
    const snapshot = await counts();
    // A temporary file of a process killed mid-write, two hours old, and one being written now.
    const stored = (await t.db.image.findFirstOrThrow({ where: { localPath: { not: null } } })).localPath!;
    const left = join(imageDir, `${stored}.4242.k1ll3d.tmp`);
    const writing = join(imageDir, `${stored}.4343.n0w.tmp`);
    writeFileSync(left, "half an image");
    utimesSync(left, new Date(Date.now() - 7_200_000), new Date(Date.now() - 7_200_000));
    writeFileSync(writing, "an image being written");
    const r = await sync();
    expect(r).toMatchObject({ status: "SUCCEEDED", full: false, seen: 35, created: 0, updated: 0, unchanged: 35, imagesDownloaded: 0, failed: 0 });
    expect(existsSync(left)).toBe(false);
    expect(existsSync(writing)).toBe(true);
    rmSync(writing);
    const sent = world.requests.slice(before);
    expect(sent.map((x) => x.target)).toEqual(["sparql"]);
    expect(await counts()).toEqual(snapshot);
  });

  it("a refreshing run writes only the Commons records that changed: Image.updatedAt is when a file's record last changed", async () => {
    const before = await t.db.image.findMany({ where: { localPath: { not: null } }, orderBy: { id: "asc" } });
    const works = await t.db.artwork.findMany({ orderBy: { id: "asc" } });
    const stale = before[0]!;
    await t.db.image.update({ where: { id: stale.id }, data: { licenseShortName: "CC BY-SA 4.0", artist: null } });
    const touched = (await t.db.image.findUniqueOrThrow({ where: { id: stale.id } })).updatedAt;
    await new Promise((r) => setTimeout(r, 10));
    const r = await sync({ full: true });
    // Every work is read again, none changed on Wikidata: all count as unchanged.
    expect(r).toMatchObject({ status: "PARTIAL", full: true, seen: 35, created: 0, updated: 0, unchanged: 35 });
    const after = new Map((await t.db.image.findMany()).map((i) => [i.id, i]));
    const mended = after.get(stale.id)!;
    expect(mended).toMatchObject({ licenseShortName: stale.licenseShortName, artist: stale.artist });
    expect(mended.updatedAt.getTime()).toBeGreaterThan(touched.getTime());
    for (const i of before.slice(1)) expect(after.get(i.id)!.updatedAt, i.fileTitle).toEqual(i.updatedAt);
    // Works read again and found as they were keep their updatedAt too (export --since reads it);
    // lastSyncedAt says the run looked.
    const reread = new Map((await t.db.artwork.findMany()).map((a) => [a.id, a]));
    for (const w of works) {
      expect(reread.get(w.id)!.updatedAt, w.qid).toEqual(w.updatedAt);
      if (w.state === "ACTIVE") expect(reread.get(w.id)!.lastSyncedAt!.getTime(), w.qid).toBeGreaterThan(w.lastSyncedAt!.getTime());
    }
  });

  it("a stored copy deleted or cut short is downloaded again by the next quiet run; one damaged at its size is replaced once the worker gives it up", async () => {
    const stored = await t.db.image.findMany({ where: { localPath: { not: null } }, orderBy: { id: "asc" } });
    const distinct = [...new Map(stored.map((i) => [i.localPath, i])).values()];
    const [gone, cut, garbled] = distinct as [(typeof stored)[0], (typeof stored)[0], (typeof stored)[0]];
    rmSync(join(imageDir, gone.localPath!));
    writeFileSync(join(imageDir, cut.localPath!), "short");
    const noise = Buffer.alloc(garbled.localBytes!, 7);
    writeFileSync(join(imageDir, garbled.localPath!), noise);
    const r = await sync();
    expect(r).toMatchObject({ full: false, created: 0, imagesDownloaded: 2 });
    for (const img of [gone, cut]) expect(readFileSync(join(imageDir, img.localPath!)).length).toBe(img.localBytes);
    // A stat cannot tell noise of the right size: the worker that fails on it lets go of the copy
    // (test/hostile/heavy-job-errors.test.ts), and the next run fetches it and writes it over the noise.
    await t.db.image.update({ where: { id: garbled.id }, data: { localPath: null, localSourceSha1: null } });
    expect(await sync()).toMatchObject({ imagesDownloaded: 1 });
    expect(await t.db.image.findUniqueOrThrow({ where: { id: garbled.id } })).toMatchObject({ localPath: garbled.localPath, localBytes: garbled.localBytes });
    expect(readFileSync(join(imageDir, garbled.localPath!)).equals(noise)).toBe(false);
    expect((await sharp(join(imageDir, garbled.localPath!)).metadata()).format).toBe("jpeg");
  });

  it("after merges, deletions, creator changes and a new upload: marks, never drops", async () => {
    const described = await artwork(CASES.mergeSource);
    await t.db.description.create({ data: { artworkId: described.id, text: "kept", source: "HUMAN" } });
    await changeWorld(world.model);
    // One work that stays edits its label: the only work a full run counts as updated.
    world.model.edit(CASES.grayscale, (w) => (w.labels = { ...w.labels, en: "A grey study, retitled" }));
    const oldChanging = (await artwork(CASES.changing)).images[0]!;
    const grey = await artwork(CASES.grayscale);
    // A job queued for a work that is about to be deleted; one of an experiment's; one for a work that stays.
    const doomed = await t.db.job.create({ data: { artworkId: (await artwork(CASES.toDelete)).id } });
    const sampled = await t.db.job.create({ data: { artworkId: (await artwork(CASES.toDelete)).id, experimentId: 9 } });
    const staying = await t.db.job.create({ data: { artworkId: grey.id } });
    const r = await sync({ full: true });
    expect(r).toMatchObject({ status: "PARTIAL", full: true, seen: 32, created: 0, updated: 1, unchanged: 31, removed: 3 });
    expect((await artwork(CASES.grayscale)).title).toBe("A grey study, retitled");
    // The changed record's updatedAt moves (export --since lists it).
    expect((await artwork(CASES.grayscale)).updatedAt.getTime()).toBeGreaterThan(grey.updatedAt.getTime());
    expect(await artwork(CASES.mergeSource)).toMatchObject({ state: "MERGED", mergedIntoQid: CASES.mergeTarget });
    expect(await t.db.description.count({ where: { artworkId: described.id } })).toBe(1);
    expect(await artwork(CASES.toDelete)).toMatchObject({ state: "DELETED" });
    // Its queued job is cancelled, saying why; the experiment's and the other work's are left.
    expect(await t.db.job.findUniqueOrThrow({ where: { id: doomed.id } })).toMatchObject({ status: "CANCELLED", error: "the work left the mirror (DELETED) before the job ran" });
    expect((await t.db.job.findUniqueOrThrow({ where: { id: sampled.id } })).status).toBe("QUEUED");
    expect((await t.db.job.findUniqueOrThrow({ where: { id: staying.id } })).status).toBe("QUEUED");
    await t.db.job.deleteMany({ where: { id: { in: [doomed.id, sampled.id, staying.id] } } });
    expect(await artwork(CASES.notByGoya)).toMatchObject({ state: "NOT_BY_CREATOR" });
    const changed = (await artwork(CASES.changing)).images[0]!;
    expect(changed.sha1).not.toBe(oldChanging.sha1);
    expect(changed.localPath).not.toBe(oldChanging.localPath);
    expect(existsSync(join(imageDir, changed.localPath!))).toBe(true);
    // Only the re-uploaded file was downloaded again.
    expect(r.imagesDownloaded).toBe(1);
  });
});
