import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeDb, type Db, openDatabase } from "../../src/db.js";
import { testDatabaseUrl } from "../support/db.js";
import { SYNC_PROCESS_NICE } from "../../src/sync/sync.js";
import { type ArtdescProcess, listeningBase, spawnArtdesc, tinyModelEnv, waitForHealth, waitUntil } from "../support/processes.js";
import { startWikidataWorld, type WikidataWorld } from "../support/wikidata-world/index.js";

/**
 * `artdesc start` runs each sync in a child process of its own (so the sync's JavaScript never
 * takes the API's thread). Every process here is a real `artdesc start` against the local Wikidata
 * world; the sync process is found through the lease it holds and the run it records, and watched
 * through /proc. What must hold: the sync runs in another pid at background priority; it dies with
 * its parent, however the parent dies, and the next `start` takes the sync over at once; a stop
 * of `start` stops it cleanly; a crash of the sync process alone is recorded and the schedule
 * goes on; the describe jobs it queues are picked up by the worker of `start`.
 */

const WORKS = 8;
// The sync process runs at nice 19: on a machine busy with other work it gets the CPU last.
const SYNC_WAIT_MS = 180_000;
const TEST_MS = 420_000;
let world: WikidataWorld;
let dir: string;
const open: { db: Db; children: ArtdescProcess[] }[] = [];

beforeAll(async () => {
  world = await startWikidataWorld({ generated: WORKS, hardCases: false, imageEdge: 160 });
  dir = mkdtempSync(join(tmpdir(), "artdesc-sync-child-"));
});
afterAll(async () => {
  for (const o of open) {
    for (const c of o.children) await c.stop("SIGKILL");
    await closeDb(o.db);
  }
  await world?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A fresh store and a way to run `artdesc start` on it. */
async function store(name: string, extra: Record<string, string> = {}) {
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
    ...extra,
  };
  const { db } = await openDatabase(env.DATABASE_URL);
  const o = { db, children: [] as ArtdescProcess[] };
  open.push(o);
  const start = (more: Record<string, string> = {}) => {
    const p = spawnArtdesc(["start"], { ...env, ...more });
    o.children.push(p);
    return p;
  };
  return { env, db, start };
}

const slowImages = (delayMs = 400) => world.fault({ target: "image", kind: "slow", delayMs, times: WORKS * 4 });
const storedImages = (db: Db) => db.image.count({ where: { localPath: { not: null } } });
/** The pid in a holder id (`role@host:pid:suffix`). */
const holderPid = (holder: string | null) => Number(/:(\d+):[a-z0-9]+$/.exec(holder ?? "")?.[1]);

/** /proc/<pid>/stat, or null when the pid is gone. */
function procStat(pid: number): string[] | null {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  } catch {
    return null;
  }
}

/** Whether `pid` has exited: no such process (signal 0 says ESRCH), or a zombie nobody collected yet. */
function exited(pid: number): boolean {
  const stat = procStat(pid);
  if (stat) return stat[0] === "Z" || stat[0] === "X";
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ESRCH";
  }
}

/** Waits until `start`'s sync process holds the lease and has stored `images` images; returns its pid. */
async function syncProcessOf(db: Db, start: ArtdescProcess, images = 1): Promise<number> {
  await waitUntil(`${images} image(s) stored`, async () => (await storedImages(db)) >= images, SYNC_WAIT_MS, 50).catch((err: unknown) => {
    throw new Error(`${String(err)}; output of start:\n${start.output().slice(-4000)}`);
  });
  const lease = await db.lease.findUniqueOrThrow({ where: { name: "sync" } });
  const [run] = await db.syncRun.findMany({ where: { status: "RUNNING" } });
  expect(run, start.output().slice(-3000)).toBeDefined();
  // The run and the lease name the same process, which is not `start`.
  expect(lease.pid).not.toBe(start.child.pid);
  expect(holderPid(run!.holder)).toBe(lease.pid);
  expect(lease.holder).toBe(run!.holder);
  expect(exited(lease.pid!)).toBe(false);
  return lease.pid!;
}

describe("the sync of `artdesc start` runs in a process of its own", () => {
  it("in another pid at background priority; it queues the describe jobs and exits when done", async () => {
    const { db, start } = await store("pid");
    slowImages(150);
    const s = start();
    const pid = await syncProcessOf(db, s);
    // Background priority: the process and every thread of it (sharp's) run at nice 19.
    const threads = readdirSync(`/proc/${pid}/task`).map((tid) => Number(readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8").split(") ")[1]!.split(" ")[16]));
    expect(threads.length).toBeGreaterThan(4);
    expect(new Set(threads)).toEqual(new Set([SYNC_PROCESS_NICE]));
    // `start` itself keeps its priority: the API runs there.
    expect(Number(procStat(s.child.pid!)![16])).toBe(0);
    expect(s.output()).toMatch(new RegExp(`"syncPid":${pid},"msg":"sync process started"`));

    // jobsQueued is stored just after the run is marked SUCCEEDED.
    const done = await waitUntil("the startup sync", () => db.syncRun.findFirst({ where: { OR: [{ status: { notIn: ["RUNNING", "SUCCEEDED"] } }, { jobsQueued: { gt: 0 } }] } }), SYNC_WAIT_MS, 100);
    expect(done, s.output().slice(-3000)).toMatchObject({ trigger: "startup", status: "SUCCEEDED", jobsQueued: WORKS });
    expect(holderPid(done.holder)).toBe(pid);
    expect(await db.job.count({ where: { status: "QUEUED", reason: "nightly" } })).toBe(WORKS);
    // Done: the process has exited and left neither lease nor run behind; `start` goes on serving.
    await waitUntil("the sync process to exit", async () => exited(pid), 10_000, 50);
    expect(await db.lease.count({ where: { name: "sync" } })).toBe(0);
    // Its log line for the run reaches the same output, from its own pid.
    expect(s.output()).toMatch(new RegExp(`"pid":${pid},.*"event":"sync".*"status":"SUCCEEDED"`));
    expect(s.child.exitCode).toBeNull();
    expect(await s.stop("SIGTERM")).toBe(0);
    world.clearFaults();
  }, TEST_MS);

  it("the describe jobs it queues are described by the worker of `start`", async () => {
    const model = tinyModelEnv();
    try {
      const { db, start } = await store("worker", { ...model.env, DESCRIBE_NUM_BEAMS: "1", DESCRIBE_MAX_NEW_TOKENS: "16", DESCRIBE_TARGET_WORDS: "0", HEARTBEAT_INTERVAL_S: "0.5" });
      const s = start();
      const run = await waitUntil("the startup sync", () => db.syncRun.findFirst({ where: { status: "SUCCEEDED", jobsQueued: { gt: 0 } } }), SYNC_WAIT_MS, 100).catch((err) => {
        throw new Error(`${err}\n${s.output().slice(-5000)}`);
      });
      expect(holderPid(run.holder)).not.toBe(s.child.pid);
      await waitUntil("every job described", async () => (await db.job.count({ where: { status: "SUCCEEDED" } })) === run.jobsQueued || null, 120_000, 200);
      // The only worker there is runs in `start` (its heartbeat carries start's pid).
      const beats = await db.heartbeat.findMany();
      expect(beats.map((b) => [b.role, b.pid])).toEqual([["start", s.child.pid]]);
      expect(await s.stop("SIGTERM")).toBe(0);
    } finally {
      model.remove();
    }
  }, TEST_MS);
});

describe("the sync process dies with `artdesc start`", () => {
  it("SIGKILL of `start` mid-sync: the sync process exits within seconds, and the next `start` takes the sync over at once", async () => {
    const { db, start } = await store("orphan");
    slowImages();
    const first = start();
    const pid = await syncProcessOf(db, first, 2);
    const lease = await db.lease.findUniqueOrThrow({ where: { name: "sync" } });
    first.child.kill("SIGKILL");
    expect(await first.exited).toBe("SIGKILL");
    const t = Date.now();
    await waitUntil("the orphaned sync process to exit", async () => exited(pid), 5_000, 20);
    expect(Date.now() - t).toBeLessThan(5_000);
    // It stopped where it was: nothing more was stored after it was gone.
    const images = await storedImages(db);
    expect(images).toBeLessThan(WORKS);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await storedImages(db)).toBe(images);
    const [killed] = await db.syncRun.findMany();
    expect(killed).toMatchObject({ status: "RUNNING" });
    world.clearFaults();

    const second = start();
    const done = await waitUntil("the startup sync after the restart", () => db.syncRun.findFirst({ where: { id: { gt: killed!.id }, OR: [{ status: { notIn: ["RUNNING", "SUCCEEDED"] } }, { jobsQueued: { gt: 0 } }] } }), SYNC_WAIT_MS, 100);
    expect(done, second.output().slice(-3000)).toMatchObject({ trigger: "startup", status: "SUCCEEDED", jobsQueued: WORKS });
    // Taken over at once, by a new sync process (neither the old one nor the new `start`).
    expect(done.startedAt.getTime()).toBeLessThan(lease.expiresAt.getTime());
    expect([pid, second.child.pid]).not.toContain(holderPid(done.holder));
    expect(await db.syncRun.findUniqueOrThrow({ where: { id: killed!.id } })).toMatchObject({ status: "ABORTED", error: expect.stringMatching(/ended before the run finished/) });
    expect(second.output()).not.toMatch(/another process is syncing/);
    expect(await storedImages(db)).toBe(WORKS);
    expect(await second.stop("SIGTERM")).toBe(0);
  }, TEST_MS);

  it("SIGKILL of `start` while its sync process is still loading: that process exits before it syncs anything", async () => {
    const { db, start } = await store("early");
    const s = start();
    const line = await waitUntil("the sync process to start", async () => /.*"msg":"sync process started".*/.exec(s.output())?.[0], 60_000, 5);
    s.child.kill("SIGKILL");
    const pid = (JSON.parse(line) as { syncPid: number }).syncPid;
    expect(pid).not.toBe(s.child.pid);
    // Loading its modules may take a while on a loaded machine; it exits once it sees its parent gone.
    await waitUntil("the orphaned sync process to exit", async () => exited(pid), 30_000, 20);
    // It may have got as far as opening its run; it syncs nothing more once its parent is gone.
    const works = await db.artwork.count();
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await db.artwork.count()).toBe(works);
  }, TEST_MS);

  it("SIGTERM of `start` stops the sync process cleanly: the run is ABORTED, the lease released, both processes gone", async () => {
    const { db, start } = await store("term");
    slowImages();
    const s = start();
    const pid = await syncProcessOf(db, s);
    expect(await s.stop("SIGTERM")).toBe(0);
    // `start` waited for it: it has exited by the time `start` has.
    expect(exited(pid)).toBe(true);
    const [run] = await db.syncRun.findMany();
    // Recorded by the sync process itself (an abandoned run would say it was left by a process that ended).
    expect(run).toMatchObject({ status: "ABORTED", error: null });
    expect(await storedImages(db)).toBeLessThan(WORKS);
    expect(await db.lease.count({ where: { name: "sync" } })).toBe(0);
    // The run's own log line came from the sync process before it exited.
    expect(s.output()).toMatch(new RegExp(`"pid":${pid},.*"event":"sync".*"status":"ABORTED"`));
    world.clearFaults();
  }, TEST_MS);

  it("a sync process that does not stop within SHUTDOWN_GRACE_S is killed, and its run recorded ABORTED before `start` exits", async () => {
    const { db, start } = await store("grace", { SHUTDOWN_GRACE_S: "1" });
    slowImages();
    const s = start();
    const pid = await syncProcessOf(db, s);
    // Hung: a stopped process handles no signal but SIGKILL.
    process.kill(pid, "SIGSTOP");
    const t = Date.now();
    expect(await s.stop("SIGTERM")).toBe(0);
    expect(Date.now() - t).toBeLessThan(10_000);
    expect(exited(pid)).toBe(true);
    expect(s.output()).toMatch(/grace period over: killing the sync process/);
    expect(s.output()).toMatch(/the sync process \(pid \d+\) was killed by SIGKILL before reporting a result; the run it left RUNNING is recorded ABORTED/);
    expect(await db.syncRun.findFirstOrThrow()).toMatchObject({ status: "ABORTED", error: expect.stringMatching(/ended before the run finished/) });
    world.clearFaults();
  }, TEST_MS);
});

describe("a sync process that crashes on its own", () => {
  it("is logged clearly, its run is recorded ABORTED at once, `start` keeps serving, and the schedule goes on", async () => {
    // The "nightly" run every 3 seconds, skipped while a sync runs.
    const { db, start } = await store("crash", { SYNC_CRON: "*/3 * * * * *" });
    slowImages();
    const s = start();
    const base = await listeningBase(s);
    const pid = await syncProcessOf(db, s);
    process.kill(pid, "SIGKILL");
    await waitUntil("the crash to be logged", async () => /the sync process \(pid \d+\) was killed by SIGKILL before reporting a result/.test(s.output()), 10_000, 50);
    expect(s.output()).toMatch(new RegExp(`the sync process \\(pid ${pid}\\) was killed by SIGKILL before reporting a result; the run it left RUNNING is recorded ABORTED`));
    const [crashed] = await db.syncRun.findMany({ orderBy: { id: "asc" } });
    // The startup sync, or the schedule's first tick when it took the lease first (a slow start:
    // the schedule fires every 3 s); the startup sync then finds the lease held and stands aside.
    expect(crashed).toMatchObject({ trigger: expect.stringMatching(/^(startup|schedule)$/), status: "ABORTED", error: expect.stringMatching(/ended before the run finished/) });
    expect((await fetch(`${base}/health`)).status).toBe(200);
    world.clearFaults();
    // The next scheduled run takes the dead process's lease at once and finishes.
    const next = await waitUntil("the next scheduled run", () => db.syncRun.findFirst({ where: { id: { gt: crashed!.id }, OR: [{ status: { notIn: ["RUNNING", "SUCCEEDED"] } }, { jobsQueued: { gt: 0 } }] } }), SYNC_WAIT_MS, 100);
    expect(next).toMatchObject({ trigger: "schedule", status: "SUCCEEDED", jobsQueued: WORKS });
    expect([pid, s.child.pid]).not.toContain(holderPid(next.holder));
    expect(await waitForHealth(base)).toBe(true);
    expect(await s.stop("SIGTERM")).toBe(0);
  }, TEST_MS);
});
