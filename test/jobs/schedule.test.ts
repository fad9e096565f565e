import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { acquireLease, releaseLease } from "../../src/jobs/lease.js";
import { nextCronMatch } from "../../src/jobs/cron.js";
import { startSyncSchedule, type SyncSchedule } from "../../src/jobs/schedule.js";
import { SyncProcessError } from "../../src/sync/command.js";
import { waitUntil } from "../support/processes.js";
import type { SyncSummary } from "../../src/sync/summary.js";
import { createLogger } from "../../src/log.js";
import type { Runtime } from "../../src/runtime.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { startWikidataWorld, type WikidataWorld } from "../support/wikidata-world/index.js";

describe("the next sync (nextCronMatch of SYNC_CRON in SYNC_TIMEZONE)", () => {
  it("follows the cron expression in the time zone", () => {
    const now = new Date("2026-11-27T10:00:00Z");
    expect(nextCronMatch("0 3 * * *", "UTC", now).toISOString()).toBe("2026-11-28T03:00:00.000Z");
    expect(nextCronMatch("0 3 * * *", "Europe/Madrid", now).toISOString()).toBe("2026-11-28T02:00:00.000Z");
    expect(nextCronMatch("30 1 * * 0", "UTC", now).toISOString()).toBe("2026-11-29T01:30:00.000Z");
  });
  it("is checked with the configuration: a bad expression or time zone never reaches it", () => {
    expect(() => loadConfig({ SYNC_CRON: "every night" })).toThrow(/SYNC_CRON="every night"/);
    expect(() => loadConfig({ SYNC_TIMEZONE: "Mars/Olympus" })).toThrow(/SYNC_TIMEZONE="Mars\/Olympus"/);
  });
});

describe("sync schedule", () => {
  let world: WikidataWorld;
  let t: TestDb;
  let rt: Runtime;
  let imageDir: string;
  const running: SyncSchedule[] = [];
  beforeAll(async () => {
    world = await startWikidataWorld({ generated: 6, hardCases: false });
  });
  afterAll(() => world?.stop());
  afterEach(async () => {
    for (const s of running.splice(0)) await s.stop();
    await t.close();
    rmSync(imageDir, { recursive: true, force: true });
  });
  async function fresh(env: Record<string, string> = {}) {
    t = await createTestDb();
    imageDir = mkdtempSync(join(tmpdir(), "artdesc-images-"));
    rt = { db: t.db, log: createLogger("silent"), config: loadConfig({ ...world.env, DATABASE_URL: t.url, IMAGE_DIR: imageDir, SYNC_CRON: "0 3 * * *", ...env }) };
  }
  const start = async (o: Parameters<typeof startSyncSchedule>[1] = {}) => {
    const s = await startSyncSchedule(rt, o);
    running.push(s);
    return s;
  };

  it("syncs at start when never synced, and stores what the after-sync hook queued", async () => {
    await fresh();
    const seen: number[] = [];
    const s = await start({ afterSync: async (runId) => (seen.push(runId), 6) });
    await s.idle();
    const runs = await t.db.syncRun.findMany();
    expect(runs.map((r) => [r.trigger, r.status, r.jobsQueued, r.created])).toEqual([["startup", "SUCCEEDED", 6, 6]]);
    expect(seen).toEqual([runs[0]!.id]);
    // Once synced, a restart does not sync again at start.
    await s.stop();
    await start();
    expect(await t.db.syncRun.count()).toBe(1);
  });

  it("a first sync that FAILED (an outage at the first start) is tried again until one succeeds, not left to the schedule", async () => {
    await fresh({ HTTP_MAX_RETRIES: "0" });
    // The query service is down for the first run's inventory.
    world.fault({ target: "sparql", kind: "500", times: 1 });
    const s = await start({ startupRetryMs: [100] });
    const deadline = Date.now() + 20_000;
    while ((await t.db.syncRun.count({ where: { status: "SUCCEEDED" } })) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const runs = await t.db.syncRun.findMany({ orderBy: { id: "asc" } });
    expect(runs.map((r) => [r.trigger, r.status])).toEqual([
      ["startup", "FAILED"],
      ["startup", "SUCCEEDED"],
    ]);
    await s.stop();
    world.clearFaults();
  });

  it("a first sync that crashed (its process killed, out of memory) is tried again too, not left to the schedule", async () => {
    await fresh();
    const triggers: string[] = [];
    const s = await start({
      startupRetryMs: [50],
      runAttempt: async (trigger) => {
        triggers.push(trigger);
        if (triggers.length === 1) throw new SyncProcessError(4242, null, "SIGKILL", 1);
        return { ran: true, summary: { runId: 1, status: "SUCCEEDED" } as SyncSummary, jobsQueued: 0 };
      },
    });
    await waitUntil("the second attempt", async () => triggers.length === 2, 10_000, 20);
    await s.idle();
    expect(triggers).toEqual(["startup", "startup"]);
  });

  it("a run left RUNNING by a process that died after the schedule started is recorded ABORTED within a sweep", async () => {
    await fresh();
    await start({ syncAtStartWhenNeverSynced: false, abandonedRunSweepMs: 50 });
    // An `artdesc sync` killed with SIGKILL: its run stays RUNNING, and its lease is gone or dead.
    const run = await t.db.syncRun.create({ data: { status: "RUNNING", holder: "sync@nowhere:999999:k1ll3d", creators: "[]" } });
    const done = await waitUntil("the run to be recorded ABORTED", () => t.db.syncRun.findFirst({ where: { id: run.id, status: "ABORTED" } }), 10_000, 25);
    expect(done.finishedAt).not.toBeNull();
  });

  it("fires on the cron schedule", async () => {
    await fresh({ SYNC_CRON: "* * * * * *" });
    const s = await start({ syncAtStartWhenNeverSynced: false });
    const deadline = Date.now() + 10_000;
    while ((await t.db.syncRun.count({ where: { status: "SUCCEEDED" } })) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await s.stop();
    expect((await t.db.syncRun.findFirstOrThrow()).trigger).toBe("schedule");
  });

  it("skips a run while another process holds the sync lease", async () => {
    await fresh();
    expect(await acquireLease(t.db, "sync", "other-process", 60_000)).toBe(true);
    const s = await start();
    expect(await s.runNow("schedule")).toBeNull();
    expect(await t.db.syncRun.count()).toBe(0);
    await releaseLease(t.db, "sync", "other-process");
    expect(await s.runNow("schedule")).toMatchObject({ status: "SUCCEEDED" });
  });

  it("on stop, finishes the current item and records the run as ABORTED", async () => {
    await fresh({ DOWNLOAD_CONCURRENCY: "1" });
    world.fault({ target: "image", kind: "slow", delayMs: 300, times: 6 });
    const s = await start({ syncAtStartWhenNeverSynced: false });
    const run = s.runNow("manual");
    while ((await t.db.image.count({ where: { localPath: { not: null } } })) < 1) await new Promise((r) => setTimeout(r, 20));
    await s.stop();
    expect(await run).toMatchObject({ status: "ABORTED" });
    const images = await t.db.image.count({ where: { localPath: { not: null } } });
    expect(images).toBeGreaterThanOrEqual(1);
    expect(images).toBeLessThan(6);
    expect(await t.db.syncRun.findFirstOrThrow()).toMatchObject({ status: "ABORTED" });
    expect(await t.db.lease.count()).toBe(0);
    world.clearFaults();
  });
});
