import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/log.js";
import { runSync } from "../../src/sync/sync.js";
import { createTestDb, onPostgres, type TestDb } from "../support/db.js";
import { type Fault, startWikidataWorld, type WikidataWorld } from "../support/wikidata-world/index.js";

let world: WikidataWorld;
const cleanups: (() => Promise<void> | void)[] = [];
const log = createLogger("silent");

beforeAll(async () => {
  world = await startWikidataWorld({ generated: 5, hardCases: false, imageinfoPageLimit: 2 });
});
afterAll(() => world?.stop());
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function freshSync(env: Record<string, string> = {}) {
  const t: TestDb = await createTestDb();
  const imageDir = mkdtempSync(join(tmpdir(), "artdesc-images-"));
  cleanups.push(() => t.close(), () => rmSync(imageDir, { recursive: true, force: true }));
  const config = loadConfig({ ...world.env, DATABASE_URL: t.url, IMAGE_DIR: imageDir, ...env });
  const sync = () => runSync({ db: t.db, config, log });
  return { t, sync, config, first: await sync() };
}

/** Makes every update of an Image row that `when` (SQL over NEW) selects fail, as a failing disk would; returns the mend. */
async function refuseImageUpdates(t: TestDb, name: string, when: string): Promise<() => Promise<void>> {
  if (onPostgres) {
    await t.db.$executeRawUnsafe(`CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk I/O error'; END $$`);
    await t.db.$executeRawUnsafe(`CREATE TRIGGER ${name} BEFORE UPDATE ON "Image" FOR EACH ROW WHEN (${when}) EXECUTE FUNCTION ${name}()`);
    return async () => void (await t.db.$executeRawUnsafe(`DROP TRIGGER ${name} ON "Image"`));
  }
  await t.db.$executeRawUnsafe(`CREATE TRIGGER ${name} BEFORE UPDATE ON "Image" WHEN ${when} BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END`);
  return async () => void (await t.db.$executeRawUnsafe(`DROP TRIGGER ${name}`));
}

describe("faults", () => {
  it.each<[string, Fault[]]>([
    ["429 with Retry-After on the query service", [{ target: "sparql", kind: "429", retryAfterS: 1 }]],
    ["truncated SPARQL JSON (a WDQS timeout)", [{ target: "sparql", kind: "truncated", times: 2 }]],
    ["500 from wbgetentities", [{ target: "wikidata", kind: "500", times: 2 }]],
    ["maxlag from Commons", [{ target: "commons", kind: "maxlag", retryAfterS: 1 }]],
    ["a slow answer past HTTP_TIMEOUT_MS", [{ target: "wikidata", kind: "slow", delayMs: 2500 }]],
    ["a connection reset in the middle of an image", [{ target: "image", kind: "reset", times: 2 }]],
    ["a 200 HTML error page instead of an image", [{ target: "image", kind: "html", times: 2 }]],
  ])("%s: retried, and the run is complete", async (_name, faults) => {
    for (const f of faults) world.fault(f);
    const { first, t } = await freshSync({ HTTP_TIMEOUT_MS: "1000" });
    expect(world.pendingFaults()).toEqual([]);
    expect(first).toMatchObject({ status: "SUCCEEDED", seen: 5, created: 5, failed: 0, imagesDownloaded: 5 });
    expect(await t.db.image.count({ where: { localPath: { not: null } } })).toBe(5);
  });

  it("a 429 that asks for a longer wait than RETRY_AFTER_MAX_S is never asked again early: that run fails, naming the wait, and the next run asks", async () => {
    world.fault({ target: "sparql", kind: "429", retryAfterS: 600 });
    const before = world.requests.filter((r) => r.target === "sparql").length;
    const { first, sync, t } = await freshSync();
    expect(world.requests.filter((r) => r.target === "sparql").length - before).toBe(1);
    expect(first.status).toBe("FAILED");
    const failure = await t.db.syncFailure.findFirstOrThrow({ where: { syncRunId: first.runId } });
    expect(failure.stage).toBe("inventory");
    expect(failure.reason).toMatch(/HTTP 429: the server asked to wait 600 s before asking again, longer than RETRY_AFTER_MAX_S \(1 s\)/);
    // A later run (the next night; here a new client, as each run makes one) asks again.
    expect(await sync()).toMatchObject({ status: "SUCCEEDED", created: 5 });
  });

  it("an image that keeps failing is recorded with its stage; the run goes on and the next run retries it", async () => {
    world.fault({ target: "image", kind: "reset", times: 4 }); // HTTP_MAX_RETRIES=3: four attempts
    const { first, sync, t } = await freshSync({ DOWNLOAD_CONCURRENCY: "1" });
    expect(first).toMatchObject({ status: "PARTIAL", created: 5, failed: 1, imagesDownloaded: 4 });
    const failure = await t.db.syncFailure.findFirstOrThrow({ where: { syncRunId: first.runId } });
    expect(failure).toMatchObject({ stage: "download", fileTitle: "File:Goya work 1.jpg" });
    expect(failure.reason).toMatch(/after 4 attempt/);
    const second = await sync();
    expect(second).toMatchObject({ status: "SUCCEEDED", unchanged: 5, failed: 0, imagesDownloaded: 1 });
  });

  it("an image answer that is cut off or an HTML page every time is that run's failure, not a refusal remembered for good: the next run takes the file", async () => {
    for (const kind of ["truncated", "html"] as const) {
      world.clearFaults();
      // An HTML page is refused at once and tried again (HTTP_MAX_RETRIES=3: four attempts); a body
      // without Content-Length that stops half-way looks whole to HTTP, and sharp finds it cut off.
      world.fault({ target: "image", kind, times: kind === "html" ? 4 : 1 });
      const { first, sync, t } = await freshSync({ DOWNLOAD_CONCURRENCY: "1" });
      expect(first, kind).toMatchObject({ status: "PARTIAL", failed: 1, imagesDownloaded: 4 });
      const failed = await t.db.syncFailure.findFirstOrThrow({ where: { syncRunId: first.runId } });
      const row = await t.db.image.findFirstOrThrow({ where: { fileTitle: failed.fileTitle! } });
      expect(row, kind).toMatchObject({ localPath: null, localSourceSha1: null });
      expect(await sync(), kind).toMatchObject({ status: "SUCCEEDED", failed: 0, imagesDownloaded: 1 });
      expect((await t.db.image.findFirstOrThrow({ where: { id: row.id } })).localPath).not.toBeNull();
    }
  });

  it("a creator in SYNC_CREATORS that was merged on Wikidata is named on every refreshing run, with the QID to configure instead", async () => {
    const { t, config } = await freshSync();
    const target = "Q99005432";
    world.model.items.set(target, world.model.items.get("Q5432")!);
    world.model.redirects.set("Q5432", target);
    try {
      const r = await runSync({ db: t.db, config, log }, { full: true });
      expect(r.status).toBe("PARTIAL");
      const failures = await t.db.syncFailure.findMany({ where: { syncRunId: r.runId } });
      expect(failures).toMatchObject([{ stage: "details", itemQid: "Q5432" }]);
      expect(failures[0]!.reason).toBe(`the creator Q5432 in SYNC_CREATORS was merged into ${target} on Wikidata: put ${target} in SYNC_CREATORS`);
    } finally {
      world.model.redirects.delete("Q5432");
      world.model.items.delete(target);
    }
  });

  type CommonsPage = { title: string; imageinfo?: Record<string, unknown>[]; imagerepository?: string };

  /** A proxy in front of the tests' Commons that passes each imageinfo page of its answers through `edit`; resolves to the proxy's API URL. */
  async function commonsRewriting(edit: (page: CommonsPage) => void): Promise<string> {
    const proxy = createServer(async (req, res) => {
      const answer = (await (await fetch(world.env.COMMONS_API_URL! + req.url!.slice(req.url!.indexOf("?")))).json()) as { query?: { pages?: Record<string, CommonsPage> } };
      for (const page of Object.values(answer.query?.pages ?? {})) edit(page);
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer));
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    cleanups.push(() => new Promise<void>((r) => proxy.close(() => r())));
    return `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/w/api.php`;
  }

  /** Commons behind a proxy that takes the record out of one file's page. */
  const commonsWithout = (title: string, imagerepository: string) =>
    commonsRewriting((page) => {
      if (page.title !== title) return;
      delete page.imageinfo;
      page.imagerepository = imagerepository;
    });

  it("a File: page with no file (imagerepository \"\", no record) is MediaWiki's \"no such file\": marked missing, not asked again every run", async () => {
    const commons = await commonsWithout("File:Goya work 3.jpg", "");
    const before = world.requests.length;
    const { first, sync, t } = await freshSync({ COMMONS_API_URL: commons, IMAGE_HOSTS: new URL(world.env.COMMONS_API_URL!).host });
    expect(first).toMatchObject({ status: "PARTIAL", created: 5, failed: 1, imagesDownloaded: 4 });
    expect(await t.db.syncFailure.findMany({ where: { syncRunId: first.runId }, select: { stage: true, itemQid: true, fileTitle: true, reason: true } })).toEqual([
      // The file's failure names its work too.
      { stage: "imageinfo", itemQid: "Q910003", fileTitle: "File:Goya work 3.jpg", reason: "Commons has no such file" },
    ]);
    expect(await t.db.image.findFirstOrThrow({ where: { fileTitle: "File:Goya work 3.jpg" } })).toMatchObject({ missing: true, localPath: null });
    // A definite answer, not a glitch to ask about again.
    expect(world.requests.slice(before).filter((r) => r.target === "commons" && r.params.get("titles") === "File:Goya work 3.jpg")).toEqual([]);
    // A quiet night does not ask for it; the weekly refresh does.
    expect(await sync()).toMatchObject({ status: "SUCCEEDED", failed: 0, imagesDownloaded: 0 });
  });

  it("a work the query service still lists but Wikidata answers as merged is marked MERGED at once, not a failure every run", async () => {
    const { t, config, first } = await freshSync();
    expect(first.status).toBe("SUCCEEDED");
    // Merged on Wikidata; the query service has not caught up (its data is left as it was).
    world.model.redirects.set("Q910002", "Q910003");
    try {
      const r = await runSync({ db: t.db, config, log }, { full: true });
      expect(r).toMatchObject({ status: "SUCCEEDED", removed: 1, failed: 0 });
      expect(await t.db.artwork.findUniqueOrThrow({ where: { qid: "Q910002" } })).toMatchObject({ state: "MERGED", mergedIntoQid: "Q910003" });
      // The next run, the query service still lagging: nothing more to do, and no failure.
      expect(await runSync({ db: t.db, config, log }, { full: true })).toMatchObject({ status: "SUCCEEDED", removed: 0, failed: 0 });
    } finally {
      world.model.redirects.delete("Q910002");
    }
  });

  it("a file Commons answers without its record (a glitch) is asked again alone, after a pause, then is that file's failure; the other files of its batch are had", async () => {
    const commons = await commonsWithout("File:Goya work 3.jpg", "local");
    const before = world.requests.length;
    const { first, sync, t } = await freshSync({ COMMONS_API_URL: commons, IMAGE_HOSTS: new URL(world.env.COMMONS_API_URL!).host });
    expect(first).toMatchObject({ status: "PARTIAL", created: 5, failed: 1, imagesDownloaded: 4 });
    expect(await t.db.syncFailure.findMany({ where: { syncRunId: first.runId }, select: { stage: true, itemQid: true, fileTitle: true, reason: true } })).toEqual([
      // The file's failure names its work too.
      { stage: "imageinfo", itemQid: "Q910003", fileTitle: "File:Goya work 3.jpg", reason: "Commons never answered with the record of File:Goya work 3.jpg" },
    ]);
    // HTTP_MAX_RETRIES=3: three more asks, for that title only.
    const retried = world.requests.slice(before).filter((r) => r.target === "commons" && r.params.get("titles") === "File:Goya work 3.jpg");
    expect(retried).toHaveLength(3);
    // The next run asks for it again, and the others are left as they are.
    const second = await sync();
    expect(second).toMatchObject({ status: "PARTIAL", failed: 1, imagesDownloaded: 0 });
  });

  it("URLs that are not http(s) in a Commons answer are never stored: a file left with none to download is that file's failure", async () => {
    // A broken or hostile mirror in front of the tests' Commons: one file's URLs all javascript:, another's description link.
    const commons = await commonsRewriting((page) => {
      const ii = page.imageinfo?.[0];
      if (ii && page.title === "File:Goya work 3.jpg") Object.assign(ii, { url: "javascript:alert(1)", thumburl: "JavaScript:alert(2)", descriptionurl: "data:text/html,x" });
      if (ii && page.title === "File:Goya work 4.jpg") ii.descriptionurl = "javascript:alert(3)";
    });
    const { first, t } = await freshSync({ COMMONS_API_URL: commons, IMAGE_HOSTS: new URL(world.env.COMMONS_API_URL!).host });
    expect(first).toMatchObject({ status: "PARTIAL", created: 5, failed: 1, imagesDownloaded: 4 });
    expect(await t.db.syncFailure.findMany({ where: { syncRunId: first.runId }, select: { stage: true, itemQid: true, fileTitle: true, reason: true } })).toEqual([
      // The file's failure names its work too.
      { stage: "imageinfo", itemQid: "Q910003", fileTitle: "File:Goya work 3.jpg", reason: "Commons' record of the file has no http(s) URL to download it from" },
    ]);
    const rows = await t.db.image.findMany({ where: { fileTitle: { in: ["File:Goya work 3.jpg", "File:Goya work 4.jpg"] } }, orderBy: { fileTitle: "asc" } });
    expect(rows.map((r) => [r.originalUrl, r.thumbUrl, r.descriptionUrl])).toEqual([
      [null, null, null],
      [expect.stringMatching(/^http:/), expect.stringMatching(/^http:/), null],
    ]);
    expect(rows[1]!.localPath).not.toBeNull();
  });

  it("image URLs on a host outside IMAGE_HOSTS are never asked for: each is that file's failure, and the works are kept", async () => {
    const before = world.requests.filter((r) => r.target === "image").length;
    const { first, t } = await freshSync({ IMAGE_HOSTS: "upload.wikimedia.org" });
    expect(first).toMatchObject({ status: "PARTIAL", created: 5, failed: 5, imagesDownloaded: 0 });
    expect(world.requests.filter((r) => r.target === "image").length).toBe(before);
    const failures = await t.db.syncFailure.findMany({ where: { syncRunId: first.runId } });
    const host = new URL(world.env.COMMONS_API_URL!).host;
    expect(failures.map((f) => [f.stage, f.reason])).toEqual(Array(5).fill(["download", `a URL on a host that is not allowed (http://${host})`]));
    // By default the Commons API's own host is allowed (the tests' Commons serves its files there).
    const { first: allowed } = await freshSync();
    expect(allowed).toMatchObject({ status: "SUCCEEDED", imagesDownloaded: 5 });
  });

  it("an image whose row cannot be written is that file's failure: the run goes on, and the next run retries it", async () => {
    const t: TestDb = await createTestDb();
    const imageDir = mkdtempSync(join(tmpdir(), "artdesc-images-"));
    cleanups.push(() => t.close(), () => rmSync(imageDir, { recursive: true, force: true }));
    const config = loadConfig({ ...world.env, DATABASE_URL: t.url, IMAGE_DIR: imageDir });
    const mend = await refuseImageUpdates(t, "refuse_copy", `NEW."fileTitle" = 'File:Goya work 2.jpg' AND NEW."sha1" IS NOT NULL`);
    const r = await runSync({ db: t.db, config, log });
    expect(r).toMatchObject({ status: "PARTIAL", created: 5, failed: 1, imagesDownloaded: 4, error: null });
    const failures = await t.db.syncFailure.findMany({ where: { syncRunId: r.runId } });
    expect(failures).toMatchObject([{ stage: "write", fileTitle: "File:Goya work 2.jpg" }]);
    expect(failures[0]!.reason).toMatch(/^unexpected \w+/);
    // The disk mended, the next run picks the image up.
    await mend();
    expect(await runSync({ db: t.db, config, log })).toMatchObject({ status: "SUCCEEDED", imagesDownloaded: 1 });
  });

  it("a Commons record that cannot be written is that file's failure; the other records of its batch are written", async () => {
    const { t, config, first } = await freshSync();
    expect(first.status).toBe("SUCCEEDED");
    // A refreshing run writes every unchanged file's record, in one transaction per imageinfo batch.
    await t.db.image.updateMany({ data: { usageTerms: null } });
    await refuseImageUpdates(t, "refuse_record", `NEW."fileTitle" = 'File:Goya work 3.jpg'`);
    const r = await runSync({ db: t.db, config, log }, { full: true });
    expect(r).toMatchObject({ status: "PARTIAL", failed: 1, imagesDownloaded: 0, error: null });
    expect(await t.db.syncFailure.findMany({ where: { syncRunId: r.runId } })).toMatchObject([{ stage: "write", fileTitle: "File:Goya work 3.jpg" }]);
    const images = await t.db.image.findMany({ orderBy: { fileTitle: "asc" }, select: { fileTitle: true, usageTerms: true } });
    expect(images.filter((i) => i.usageTerms === null).map((i) => i.fileTitle)).toEqual(["File:Goya work 3.jpg"]);
  });

  it("a new version that cannot be read leaves the previous copy in place, and is tried again next run", async () => {
    const title = "File:Goya work 2.jpg";
    const original = world.model.files.get(title)!;
    const { first, config, t } = await freshSync();
    expect(first.status).toBe("SUCCEEDED");
    // A re-upload changes the Commons file, not the Wikidata item: a refreshing run notices it.
    const sync = () => runSync({ db: t.db, config, log }, { full: true });
    const before = await t.db.image.findFirstOrThrow({ where: { fileTitle: title } });
    try {
      // Commons gets a new upload whose data is cut off (as a failed transfer or a decoder out of memory leaves it).
      world.model.setFile(title, { ...original, bytes: original.bytes.subarray(0, Math.floor(original.bytes.length / 3)) });
      const second = await sync();
      expect(second).toMatchObject({ status: "PARTIAL", failed: 1, imagesDownloaded: 0 });
      const kept = await t.db.image.findFirstOrThrow({ where: { fileTitle: title } });
      // The work keeps its image (still describable); the unreadable version is not remembered as refused.
      expect(kept).toMatchObject({ localPath: before.localPath, localHash: before.localHash, localSourceSha1: before.localSourceSha1 });
      expect(kept.sha1).not.toBe(before.localSourceSha1);
      // Once Commons has a readable file again, the next run takes it.
      world.model.setFile(title, { ...original, bytes: Buffer.concat([original.bytes, Buffer.from([0])]) });
      expect(await sync()).toMatchObject({ status: "SUCCEEDED", imagesDownloaded: 1 });
    } finally {
      world.model.setFile(title, original);
    }
  });

  it("an inventory that never parses fails the run and marks nothing as gone", async () => {
    const { sync, t } = await freshSync();
    world.fault({ target: "sparql", kind: "truncated", times: 4 });
    const r = await sync();
    expect(r.status).toBe("FAILED");
    expect(r.error).toMatch(/no inventory could be read/);
    const failure = await t.db.syncFailure.findFirstOrThrow({ where: { syncRunId: r.runId } });
    expect(failure).toMatchObject({ stage: "inventory", itemQid: "Q5432" });
    expect(failure.reason).toMatch(/incomplete JSON/);
    expect(await t.db.artwork.count({ where: { state: "ACTIVE" } })).toBe(5);
  });

  it("a query service that answers with no works (it lags) marks none as gone: Wikidata still credits them, and the run says so", async () => {
    const { sync, t } = await freshSync();
    world.fault({ target: "sparql", kind: "empty" });
    const r = await sync();
    expect(r).toMatchObject({ status: "PARTIAL", seen: 0, removed: 0 });
    const failures = await t.db.syncFailure.findMany({ where: { syncRunId: r.runId } });
    expect(failures).toHaveLength(5);
    expect(failures.every((f) => f.stage === "removal" && /still credits it to the creator: left as it is/.test(f.reason))).toBe(true);
    expect(await t.db.artwork.count({ where: { state: "ACTIVE" } })).toBe(5);
    expect(await sync()).toMatchObject({ status: "SUCCEEDED", seen: 5, failed: 0 });
  });

  it("a sync refuses to start without USER_AGENT_CONTACT, and says why", async () => {
    const t = await createTestDb();
    cleanups.push(() => t.close());
    const config = { ...loadConfig({ ...world.env, DATABASE_URL: t.url }), USER_AGENT_CONTACT: undefined };
    await expect(runSync({ db: t.db, config, log })).rejects.toThrow(/USER_AGENT_CONTACT is not set.*User-Agent policy/);
    expect(await t.db.syncRun.count()).toBe(0);
  });
});
