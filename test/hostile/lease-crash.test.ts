import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeDb, type Db, openDatabase } from "../../src/db.js";
import { testDatabaseUrl } from "../support/db.js";
import { acquireLease, holderId, renewLease } from "../../src/jobs/lease.js";
import { type ProcessIdentity, thisProcess } from "../../src/jobs/process-identity.js";
import { claimJobs, enqueueDescribe, requeueStale } from "../../src/jobs/queue.js";
import { loadConfig } from "../../src/config.js";
import { makeArtwork } from "../support/factories.js";
import { type ArtdescProcess, spawnArtdesc, waitUntil } from "../support/processes.js";
import { startWikidataWorld, type WikidataWorld } from "../support/wikidata-world/index.js";

/**
 * A crash in the middle of a sync, then a restart at once: the lease of the killed process must be
 * taken over at once (it died on this host), the killed run recorded ABORTED, a new run must finish
 * and queue the describe jobs. A live holder, or one on another host, is waited for instead.
 * Every sync here is a real `artdesc` child process against the local Wikidata world.
 */

const WORKS = 12;
let world: WikidataWorld;
let dir: string;
const open: { db: Db; children: ArtdescProcess[] }[] = [];

beforeAll(async () => {
  world = await startWikidataWorld({ generated: WORKS, hardCases: false });
  dir = mkdtempSync(join(tmpdir(), "artdesc-lease-"));
});
afterAll(async () => {
  for (const o of open) {
    for (const c of o.children) await c.stop("SIGKILL");
    await closeDb(o.db);
  }
  await world?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A fresh store and the environment of a process that syncs it; images come slowly while `slow`. */
async function store(name: string) {
  const env = {
    ...world.env,
    DATABASE_URL: await testDatabaseUrl(dir, name),
    IMAGE_DIR: join(dir, `${name}-images`),
    DOWNLOAD_CONCURRENCY: "1",
    HTTP_TIMEOUT_MS: "5000",
    PORT: "0",
    HOST: "127.0.0.1",
    // No model: the describe worker of `start` waits, so queued jobs stay queued to be counted.
    MODEL_DIR: join(dir, "no-models"),
  };
  const { db } = await openDatabase(env.DATABASE_URL);
  const o = { db, children: [] as ArtdescProcess[] };
  open.push(o);
  const run = (args: string[]) => {
    const p = spawnArtdesc(args, env);
    o.children.push(p);
    return p;
  };
  return { env, db, run };
}

const slowImages = (delayMs = 400) => world.fault({ target: "image", kind: "slow", delayMs, times: WORKS });
const storedImages = (db: Db) => db.image.count({ where: { localPath: { not: null } } });

/** Kills `p` with SIGKILL once it has stored `n` images; returns the lease it left behind. */
async function killMidSync(db: Db, p: ArtdescProcess, n = 2) {
  await waitUntil(`${n} images stored`, async () => (await storedImages(db)) >= n, 90_000, 50);
  p.child.kill("SIGKILL");
  expect(await p.exited).toBe("SIGKILL");
  const lease = await db.lease.findUniqueOrThrow({ where: { name: "sync" } });
  // `artdesc sync` holds the lease itself; `artdesc start` syncs in a child process of its own.
  if (p.child.spawnargs.includes("start")) expect(lease.pid).not.toBe(p.child.pid);
  else expect(lease.pid).toBe(p.child.pid);
  const [run] = await db.syncRun.findMany();
  expect(run).toMatchObject({ status: "RUNNING" });
  expect(await storedImages(db)).toBeLessThan(WORKS);
  world.clearFaults();
  return { lease, run: run! };
}

async function expectRecovered(db: Db, killed: { lease: { expiresAt: Date }; run: { id: number } }) {
  const runs = await db.syncRun.findMany({ orderBy: { id: "asc" } });
  expect(runs.map((r) => r.status)).toEqual(["ABORTED", "SUCCEEDED"]);
  expect(runs[0]).toMatchObject({ id: killed.run.id, error: expect.stringMatching(/ended before the run finished/) });
  // Taken over at once: the new run started before the dead process's lease would have expired.
  expect(runs[1]!.startedAt.getTime()).toBeLessThan(killed.lease.expiresAt.getTime());
  expect(await storedImages(db)).toBe(WORKS);
  // The describe jobs of the recovered sync were queued.
  expect(runs[1]!.jobsQueued).toBe(WORKS);
  expect(await db.job.count({ where: { status: "QUEUED", reason: "nightly" } })).toBe(WORKS);
  return runs;
}

describe("a sync killed with SIGKILL, restarted at once", () => {
  it("artdesc start: the restarted process takes the lease at once, the old run is ABORTED, the new one finishes and queues the describe jobs", async () => {
    const { db, run } = await store("start");
    slowImages();
    const killed = await killMidSync(db, run(["start"]));

    const second = run(["start"]);
    const done = await waitUntil("the startup sync after the restart", () => db.syncRun.findFirst({ where: { id: { gt: killed.run.id }, status: { not: "RUNNING" } } }), 90_000, 100);
    expect(done, second.output().slice(-3000)).toMatchObject({ trigger: "startup", status: "SUCCEEDED" });
    await waitUntil("the describe jobs", async () => (await db.syncRun.findUniqueOrThrow({ where: { id: done.id } })).jobsQueued > 0, 10_000);
    await expectRecovered(db, killed);
    expect(second.output()).toMatch(/sync runs left RUNNING by a process that ended are recorded ABORTED/);
    expect(second.output()).not.toMatch(/another process is syncing/);
    expect(await second.stop("SIGTERM")).toBe(0);
    expect(await db.lease.count({ where: { name: "sync" } })).toBe(0);
  }, 180_000);

  it("artdesc sync: the next `artdesc sync` does not wait for the dead process's lease", async () => {
    const { db, run } = await store("sync");
    slowImages();
    const killed = await killMidSync(db, run(["sync"]));
    const second = run(["sync"]);
    expect(await second.exited, second.output()).toBe(0);
    expect(second.output()).not.toMatch(/waiting for it/);
    expect(second.output()).toMatch(new RegExp(`queued: ${WORKS} describe job`));
    await expectRecovered(db, killed);
  }, 180_000);
});

describe("a sync lease that is not taken over", () => {
  it("a live `artdesc sync` keeps it: a second one waits, then syncs after the first has finished", async () => {
    const { db, run } = await store("live");
    // Slow enough that the second process starts while the first is still downloading: after the
    // first image, 11 more take 11 s, and a `sync` process starts in well under a second.
    slowImages(1_000);
    const first = run(["sync"]);
    await waitUntil("the first sync's images", async () => (await storedImages(db)) >= 1, 90_000, 50);
    const second = run(["sync"]);
    await waitUntil("the second sync to wait", async () => /another process is syncing \(sync-cli@/.test(second.output()), 90_000);
    expect(await storedImages(db)).toBeLessThan(WORKS);
    expect(await first.exited, first.output()).toBe(0);
    expect(await second.exited, second.output()).toBe(0);
    const runs = await db.syncRun.findMany({ orderBy: { id: "asc" } });
    expect(runs.map((r) => [r.status, r.holder?.split("@")[0]])).toEqual([
      ["SUCCEEDED", "sync-cli"],
      ["SUCCEEDED", "sync-cli"],
    ]);
    expect(runs[1]!.startedAt.getTime()).toBeGreaterThanOrEqual(runs[0]!.finishedAt!.getTime());
    world.clearFaults();
  }, 180_000);

  it("one held by another host is waited for: the startup sync of `artdesc start` runs when it expires, and the old run is ABORTED then", async () => {
    const { db, run } = await store("far");
    // A process on another host holds the lease and is syncing: we renew its lease for it, as it would.
    const far: ProcessIdentity = { ...thisProcess(), hostname: "another-host.example", pid: 1 };
    const farHolder = "sync@another-host.example:1:abcdef";
    expect(await acquireLease(db, "sync", farHolder, 3_000, new Date(), far)).toBe(true);
    const farRun = await db.syncRun.create({ data: { trigger: "schedule", holder: farHolder } });
    const renew = setInterval(() => void renewLease(db, "sync", farHolder, 3_000), 500);
    const start = run(["start"]);
    try {
      await waitUntil("the startup sync to wait for the lease", async () => /the startup sync waits for the other process's lease/.test(start.output()), 90_000);
      // While the far holder renews, nothing is taken and its run stays RUNNING.
      await new Promise((r) => setTimeout(r, 2_000));
      expect(await db.syncRun.findMany()).toEqual([expect.objectContaining({ id: farRun.id, status: "RUNNING" })]);
    } finally {
      clearInterval(renew);
    }
    const { expiresAt } = await db.lease.findUniqueOrThrow({ where: { name: "sync" } });
    const done = await waitUntil("the startup sync", () => db.syncRun.findFirst({ where: { id: { gt: farRun.id }, status: { not: "RUNNING" } } }), 120_000, 100);
    expect(done, start.output().slice(-3000)).toMatchObject({ trigger: "startup", status: "SUCCEEDED" });
    expect(done.startedAt.getTime()).toBeGreaterThanOrEqual(expiresAt.getTime());
    expect(await db.syncRun.findUniqueOrThrow({ where: { id: farRun.id } })).toMatchObject({ status: "ABORTED" });
    expect(await start.stop("SIGTERM")).toBe(0);
  }, 180_000);

  it("one whose recorded pid now runs another process (start time differs) is taken over at once", async () => {
    const me = thisProcess();
    if (me.startTicks === null) return; // no /proc: start times cannot be compared here
    const { db, run } = await store("reused");
    // A live process has the recorded pid, but it started at another time than the holder did.
    const other = spawn(process.execPath, ["-e", "setTimeout(() => {}, 120000)"], { stdio: "ignore" });
    try {
      const reused: ProcessIdentity = { ...me, pid: other.pid!, startTicks: 1n };
      const holder = holderId("sync-cli").replace(/:\d+:/, `:${other.pid}:`);
      expect(await acquireLease(db, "sync", holder, 3_600_000, new Date(), reused)).toBe(true);
      const stale = await db.syncRun.create({ data: { trigger: "manual", holder } });
      const second = run(["sync"]);
      expect(await second.exited, second.output()).toBe(0);
      expect(second.output()).not.toMatch(/waiting for it/);
      const runs = await db.syncRun.findMany({ orderBy: { id: "asc" } });
      expect(runs.map((r) => [r.id, r.status])).toEqual([
        [stale.id, "ABORTED"],
        [stale.id + 1, "SUCCEEDED"],
      ]);
    } finally {
      other.kill("SIGKILL");
    }
  }, 180_000);
});

describe("a job claimed by a worker killed with SIGKILL", () => {
  it("goes back to the queue at once (not after HEARTBEAT_STALE_S) and another worker claims it", async () => {
    const { db, env } = await store("claims");
    const config = loadConfig(env);
    const a = await makeArtwork(db, { image: false });
    const { job } = await enqueueDescribe(db, config, { artworkId: a.id, imageId: null });
    const child = spawn(process.execPath, ["--import", "tsx", "test/hostile/lease-claim-child.ts", env.DATABASE_URL], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d));
    const exited = new Promise((resolve) => child.once("exit", resolve));
    await waitUntil("the child's claim", async () => out.includes("claimed"), 60_000);
    expect(out).toContain(`claimed ${job.id}`);
    // While it runs, its fresh claim is its own.
    expect(await requeueStale(db, 60_000)).toBe(0);
    expect(await claimJobs(db, "other-worker", { limit: 1, ttlMs: 60_000 })).toEqual([]);
    child.kill("SIGKILL");
    await exited;
    // Its heartbeat is seconds old, far from the 60 s stale limit: only its death frees the job.
    expect(await requeueStale(db, 60_000)).toBe(1);
    expect(await db.job.findUniqueOrThrow({ where: { id: job.id } })).toMatchObject({ status: "QUEUED", error: expect.stringMatching(/is no longer running/) });
    expect((await claimJobs(db, "other-worker", { limit: 1, ttlMs: 60_000 })).map((j) => j.id)).toEqual([job.id]);
  }, 120_000);
});
