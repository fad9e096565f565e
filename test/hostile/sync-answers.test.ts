import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/log.js";
import { runSync } from "../../src/sync/sync.js";
import { createTestDb } from "../support/db.js";
import { type Fault, GOYA, startWikidataWorld, type WikidataWorld, WorldModel } from "../support/wikidata-world/index.js";

/**
 * Answers from the query service, wbgetentities and Commons that lack what was asked for, have
 * values of the wrong type, or are not JSON at all. Once: retried, and the run is whole. Every
 * time: a failure per work (or file), nothing stored half-empty, and a run that says it failed.
 */

let world: WikidataWorld;
const cleanups: (() => Promise<void> | void)[] = [];
const log = createLogger("silent");
const DETAILS = { props: "info|claims|labels" };
const ATTEMPTS = 4; // HTTP_MAX_RETRIES=3 in the world's env

beforeAll(async () => {
  world = await startWikidataWorld({ generated: 5, hardCases: false, imageinfoPageLimit: 2 });
});
afterAll(() => world?.stop());
afterEach(async () => {
  world.clearFaults();
  for (const c of cleanups.splice(0)) await c();
});

async function syncOnce(w: WikidataWorld = world) {
  const t = await createTestDb();
  const imageDir = mkdtempSync(join(tmpdir(), "artdesc-images-"));
  cleanups.push(() => t.close(), () => rmSync(imageDir, { recursive: true, force: true }));
  const config = loadConfig({ ...w.env, DATABASE_URL: t.url, IMAGE_DIR: imageDir });
  const before = w.requests.length;
  const summary = await runSync({ db: t.db, config, log });
  const failures = await t.db.syncFailure.findMany({ where: { syncRunId: summary.runId }, orderBy: { id: "asc" } });
  const run = await t.db.syncRun.findUniqueOrThrow({ where: { id: summary.runId } });
  return { t, config, summary, failures, run, requests: w.requests.slice(before) };
}

const wikidataKinds: Fault["kind"][] = ["no-claims", "no-labels", "no-info", "missing-entity", "wrong-types", "html", "truncated"];

describe("wbgetentities answers", () => {
  it.each(wikidataKinds)("%s once: the answer is retried and every work is stored whole", async (kind) => {
    world.fault({ target: "wikidata", kind, match: DETAILS });
    const { summary, t, requests } = await syncOnce();
    expect(world.pendingFaults()).toEqual([]);
    expect(summary).toMatchObject({ status: "SUCCEEDED", created: 5, failed: 0, imagesDownloaded: 5 });
    expect(requests.filter((r) => r.target === "wikidata" && r.params.get("props") === DETAILS.props)).toHaveLength(2);
    const works = await t.db.artwork.findMany({ select: { title: true, images: { select: { localPath: true } } } });
    expect(works.every((w) => w.title && w.images.length === 1 && w.images[0]!.localPath)).toBe(true);
  });

  it.each<[Fault["kind"], RegExp]>([
    ["no-claims", /without claims, which was asked for/],
    ["no-labels", /without labels, which was asked for/],
    ["no-info", /without lastrevid\/modified, which was asked for/],
    ["missing-entity", /did not answer for Q/],
    ["wrong-types", /malformed|not a string/],
    ["html", /HTML page/],
  ])("%s every time: a failure per work, nothing stored, and the run FAILED", async (kind, reason) => {
    world.fault({ target: "wikidata", kind, match: DETAILS, times: ATTEMPTS });
    const { summary, failures, run, t } = await syncOnce();
    expect(summary).toMatchObject({ status: "FAILED", created: 0, failed: 5 });
    expect(run.status).toBe("FAILED");
    expect(run.error).toMatch(/no work's details could be read \(5 works\)/);
    expect(failures.map((f) => f.stage)).toEqual(Array(5).fill("details"));
    expect(new Set(failures.map((f) => f.itemQid)).size).toBe(5);
    for (const f of failures) expect(f.reason).toMatch(reason), expect(f.reason).toMatch(/after 4 attempt/);
    // Nothing half-empty: no work without its title or image.
    expect(await t.db.artwork.count()).toBe(0);
  });

  it("the one changed work of a quiet night unreadable every time: that work's failure, and the run goes on (PARTIAL, removal check and describe queue done)", async () => {
    const { t, config } = await syncOnce();
    // The store's copy of one work is older than Wikidata's: the next run asks for its details.
    await t.db.artwork.update({ where: { qid: "Q910002" }, data: { wikidataRevision: 1n } });
    world.fault({ target: "wikidata", kind: "html", match: DETAILS, times: ATTEMPTS });
    const before = world.requests.length;
    const summary = await runSync({ db: t.db, config, log });
    expect(summary).toMatchObject({ status: "PARTIAL", unchanged: 4, failed: 1 });
    expect(await t.db.syncFailure.findMany({ where: { syncRunId: summary.runId }, select: { stage: true, itemQid: true } })).toEqual([
      { stage: "details", itemQid: "Q910002" },
    ]);
    // The removal check ran: it asks wbgetentities about nothing here, but the run reached it and the
    // work kept its old copy.
    expect(world.requests.slice(before).filter((r) => r.target === "wikidata").length).toBe(ATTEMPTS);
    expect((await t.db.artwork.findUniqueOrThrow({ where: { qid: "Q910002" } })).state).toBe("ACTIVE");
  });

  it("creator labels that never come right: a failure for the creator, the works are still synced", async () => {
    world.fault({ target: "wikidata", kind: "no-labels", match: { props: "labels", ids: GOYA }, times: ATTEMPTS });
    const { summary, failures } = await syncOnce();
    expect(summary).toMatchObject({ status: "PARTIAL", created: 5, failed: 1 });
    expect(failures).toMatchObject([{ stage: "details", itemQid: GOYA, reason: expect.stringMatching(/^creator labels: .*without labels/) }]);
  });
});

describe("SPARQL answers", () => {
  it.each<Fault["kind"]>(["html", "wrong-types", "missing-entity", "truncated"])("%s once: retried, the run is whole", async (kind) => {
    world.fault({ target: "sparql", kind });
    const { summary } = await syncOnce();
    expect(world.pendingFaults()).toEqual([]);
    expect(summary).toMatchObject({ status: "SUCCEEDED", seen: 5, created: 5, failed: 0 });
  });

  it.each<[Fault["kind"], RegExp]>([
    ["html", /HTML page/],
    ["wrong-types", /wrong type/],
    ["missing-entity", /row 0 lacks item/],
  ])("%s every time: the inventory fails, and so does the run", async (kind, reason) => {
    world.fault({ target: "sparql", kind, times: ATTEMPTS });
    const { summary, failures } = await syncOnce();
    expect(summary.status).toBe("FAILED");
    expect(summary.error).toMatch(/no inventory could be read/);
    expect(failures).toMatchObject([{ stage: "inventory", itemQid: GOYA }]);
    expect(failures[0]!.reason).toMatch(reason);
  });
});

describe("Commons imageinfo answers", () => {
  it.each<Fault["kind"]>(["html", "drop-page", "wrong-types", "no-info"])("%s once: retried, every image stored", async (kind) => {
    world.fault({ target: "commons", kind });
    const { summary, t } = await syncOnce();
    expect(world.pendingFaults()).toEqual([]);
    expect(summary).toMatchObject({ status: "SUCCEEDED", failed: 0, imagesDownloaded: 5 });
    expect(await t.db.image.count({ where: { localPath: { not: null }, sha1: { not: null } } })).toBe(5);
  });

  it.each<[Fault["kind"], RegExp]>([
    ["drop-page", /did not answer for File:/],
    ["no-info", /lacks sha1, which was asked for/],
  ])("%s every time: that one file fails (asked again first), the others of its batch are stored, none marked missing", async (kind, reason) => {
    // Every answer of the run leaves out (or strips) the record of its first page.
    world.fault({ target: "commons", kind, times: 100 });
    const { summary, failures, t } = await syncOnce();
    expect(summary).toMatchObject({ status: "PARTIAL", created: 5, failed: 1, imagesDownloaded: 4 });
    expect(failures.map((f) => f.stage)).toEqual(["imageinfo"]);
    expect(failures[0]!.reason).toMatch(reason);
    expect(await t.db.image.count({ where: { missing: true } })).toBe(0);
  });

  it("files whose own records keep failing are their failures, not the run's, even when they are all a quiet night asks for", async () => {
    const { t, config, summary } = await syncOnce();
    expect(summary.status).toBe("SUCCEEDED");
    // Two files whose records were never read (sha1 unknown), and whose pages now lack their sha1.
    const rows = await t.db.image.findMany({ orderBy: { id: "asc" }, take: 2 });
    await t.db.image.updateMany({ where: { id: { in: rows.map((r) => r.id) } }, data: { sha1: null } });
    const saved = rows.map((r) => [r.fileTitle, world.model.files.get(r.fileTitle)!] as const);
    for (const [title, f] of saved) world.model.files.set(title, { ...f, sha1: undefined as unknown as string });
    try {
      const quiet = await runSync({ db: t.db, config, log });
      expect(quiet).toMatchObject({ status: "PARTIAL", failed: 2 });
      const failures = await t.db.syncFailure.findMany({ where: { syncRunId: quiet.runId } });
      expect(failures.map((f) => [f.stage, f.fileTitle]).sort()).toEqual(saved.map(([title]) => ["imageinfo", title]).sort());
    } finally {
      for (const [title, f] of saved) world.model.files.set(title, f);
    }
  });

  it.each<[Fault["kind"], RegExp]>([["wrong-types", /malformed/]])("%s every time: a failure per file, no image marked missing, and the run FAILED", async (kind, reason) => {
    // Every answer of the run (the continued ones too) is broken.
    world.fault({ target: "commons", kind, times: 100 });
    const { summary, failures, t } = await syncOnce();
    expect(summary).toMatchObject({ status: "FAILED", created: 5, imagesDownloaded: 0 });
    expect(summary.error).toMatch(/no image record could be read from Commons \(5 files\)/);
    expect(failures.map((f) => f.stage)).toEqual(Array(5).fill("imageinfo"));
    for (const f of failures) expect(f.reason).toMatch(reason);
    // A broken answer is not "Commons has no such file".
    expect(await t.db.image.count({ where: { missing: true } })).toBe(0);
  });
});

describe("what is genuinely absent is not malformed", () => {
  it("a work with no label in the synced languages and no P18 is stored, without a failure", async () => {
    const model = new WorldModel();
    model.items.set(GOYA, { en: "Francisco Goya" });
    model.addWork({ qid: "Q990001", labels: { fr: "Sans titre" }, creators: [{ value: GOYA }] });
    model.addWork({ qid: "Q990002", labels: {}, creators: [{ value: GOYA }] });
    const bare = await startWikidataWorld({ model });
    cleanups.push(() => bare.stop());
    const { summary, t, failures } = await syncOnce(bare);
    expect(failures).toEqual([]);
    expect(summary).toMatchObject({ status: "SUCCEEDED", created: 2, skippedNoImage: 2, failed: 0 });
    const works = await t.db.artwork.findMany({ orderBy: { qid: "asc" }, select: { qid: true, title: true } });
    expect(works).toEqual([
      { qid: "Q990001", title: null },
      { qid: "Q990002", title: null },
    ]);
  });
});
