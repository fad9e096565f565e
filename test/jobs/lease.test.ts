import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeDb, createDb, type Db } from "../../src/db.js";
import { spawn } from "node:child_process";
import { loadConfig } from "../../src/config.js";
import { acquireLease, deadHolders, leaseHolder, releaseLease, renewLease, withLease } from "../../src/jobs/lease.js";
import { type ProcessIdentity, thisProcess } from "../../src/jobs/process-identity.js";
import { claimJobs, enqueueDescribe, requeueStale } from "../../src/jobs/queue.js";
import { makeArtwork } from "../support/factories.js";
import { createTestDb, type TestDb } from "../support/db.js";

let t: TestDb;
// A second connection, as a second process would have. Only sequential use: two connections in
// one thread cannot overlap writes (better-sqlite3 waits synchronously for the other's lock).
let other: Db;

beforeAll(async () => {
  t = await createTestDb();
  other = await createDb(t.url);
});
afterAll(async () => {
  await closeDb(other);
  await t.close();
});

describe("lease", () => {
  it("is held by one holder at a time, across connections", async () => {
    expect(await acquireLease(t.db, "sync", "a", 10_000)).toBe(true);
    expect(await acquireLease(other, "sync", "b", 10_000)).toBe(false);
    expect(await acquireLease(t.db, "sync", "a", 10_000)).toBe(true); // re-entrant for its holder
    expect(await leaseHolder(other, "sync")).toBe("a");
    await releaseLease(other, "sync", "b"); // not b's to release
    expect(await leaseHolder(t.db, "sync")).toBe("a");
    await releaseLease(t.db, "sync", "a");
    expect(await acquireLease(other, "sync", "b", 10_000)).toBe(true);
    await releaseLease(other, "sync", "b");
  });

  it("can be taken over once expired, and the old holder cannot renew it", async () => {
    const past = new Date(Date.now() - 60_000);
    expect(await acquireLease(t.db, "job:1", "dead", 1_000, past)).toBe(true);
    expect(await acquireLease(other, "job:1", "alive", 10_000)).toBe(true);
    expect(await renewLease(t.db, "job:1", "dead", 10_000)).toBe(false);
    expect(await renewLease(other, "job:1", "alive", 10_000)).toBe(true);
  });

  it("lets exactly one of many concurrent claimants win", async () => {
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => acquireLease(t.db, "race", `h${i}`, 10_000)),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it("withLease aborts its work when the process was paused past the lease's expiry, before the work resumes", async () => {
    const r = await withLease(t.db, "paused", "p", 300, async (signal) => {
      // The event loop held for longer than the lease lasts, as a stopped or frozen process is.
      const until = performance.now() + 450;
      while (performance.now() < until);
      // The first thing that runs after the pause is the overdue renewal timer: it stops the work.
      await new Promise((resolve) => setTimeout(resolve, 0));
      return { aborted: signal.aborted, reason: (signal.reason as Error | undefined)?.message };
    });
    expect(r).toEqual({ acquired: true, result: { aborted: true, reason: "lease paused may have expired: this process was paused for longer than the lease's 300 ms" } });
  });

  it("withLease keeps a lease it renews in time", async () => {
    // Renewed every 200 ms: a renewal may take up to 400 ms on a busy machine before the lease counts as lapsed.
    const r = await withLease(t.db, "steady", "s", 600, async (signal) => {
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      return signal.aborted;
    });
    expect(r).toEqual({ acquired: true, result: false });
  });

  it("withLease runs once, releases afterwards, and refuses while held", async () => {
    const inner = await withLease(t.db, "w", "x", 5_000, async () => withLease(t.db, "w", "y", 5_000, async () => "never"));
    expect(inner).toEqual({ acquired: true, result: { acquired: false, holder: "x", expiresAt: expect.any(Date) } });
    expect(await leaseHolder(t.db, "w")).toBeNull();
  });
});

/** A process that ran on this host and has exited: its pid is free (or, later, someone else's). */
async function exitedProcess(): Promise<ProcessIdentity> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  const pid = child.pid!;
  await new Promise((resolve) => child.once("exit", resolve));
  return { ...thisProcess(), pid, startTicks: null };
}

describe("lease held by a process that died", () => {
  it("is taken over at once on the same host, long before it expires", async () => {
    const dead = await exitedProcess();
    expect(await acquireLease(t.db, "crash", "dead-holder", 3_600_000, new Date(), dead)).toBe(true);
    expect(await acquireLease(other, "crash", "next", 10_000)).toBe(true);
    expect(await leaseHolder(t.db, "crash")).toBe("next");
    // The dead holder cannot renew or release what it lost.
    expect(await renewLease(t.db, "crash", "dead-holder", 10_000)).toBe(false);
    await releaseLease(t.db, "crash", "dead-holder");
    expect(await leaseHolder(t.db, "crash")).toBe("next");
  });

  it("is taken over when its pid now runs another process (start time differs)", async () => {
    const me = thisProcess();
    if (me.startTicks === null) return; // no /proc here
    const reused: ProcessIdentity = { ...me, startTicks: me.startTicks - 1n };
    expect(await acquireLease(t.db, "reused", "old", 3_600_000, new Date(), reused)).toBe(true);
    expect(await acquireLease(other, "reused", "new", 10_000)).toBe(true);
  });

  it("is not taken from a live holder, nor from a holder on another host before it expires", async () => {
    expect(await acquireLease(t.db, "live", "me", 3_600_000)).toBe(true);
    expect(await acquireLease(other, "live", "you", 10_000)).toBe(false);
    const far: ProcessIdentity = { ...(await exitedProcess()), hostname: "another-host.example" };
    const now = Date.now();
    expect(await acquireLease(t.db, "far", "far-holder", 2_000, new Date(now), far)).toBe(true);
    expect(await acquireLease(other, "far", "near", 10_000, new Date(now + 1_000))).toBe(false);
    expect(await acquireLease(other, "far", "near", 10_000, new Date(now + 2_001))).toBe(true);
  });

  it("a claim held by a worker that died here is requeued at once; a live or remote worker's is not", async () => {
    const config = loadConfig({ JOB_MAX_ATTEMPTS: "3" });
    await t.db.lease.deleteMany(); // earlier tests' "job:1"
    for (let i = 0; i < 3; i++) {
      const a = await makeArtwork(t.db, { image: false });
      await enqueueDescribe(t.db, config, { artworkId: a.id, imageId: null });
    }
    const dead = await exitedProcess();
    const far: ProcessIdentity = { ...dead, hostname: "another-host.example" };
    // Each worker claims one job; claims are fresh (heartbeats just now).
    const claim = async (holder: string, owner: ProcessIdentity) => {
      const [job] = await claimJobs(t.db, holder, { limit: 1, ttlMs: 60_000 });
      await acquireLease(t.db, `job:${job!.id}`, holder, 60_000, new Date(), owner);
      return job!;
    };
    const deadJob = await claim("dead-worker", dead);
    const liveJob = await claim("live-worker", thisProcess());
    const farJob = await claim("far-worker", far);
    expect([...(await deadHolders(t.db, "job:")).entries()]).toEqual([[`job:${deadJob.id}`, "dead-worker"]]);

    expect(await requeueStale(t.db, 60_000)).toBe(1);
    expect(await t.db.job.findUniqueOrThrow({ where: { id: deadJob.id } })).toMatchObject({ status: "QUEUED", holder: null, error: "worker dead-worker is no longer running" });
    expect(await t.db.job.findUniqueOrThrow({ where: { id: liveJob.id } })).toMatchObject({ status: "RUNNING", holder: "live-worker" });
    expect(await t.db.job.findUniqueOrThrow({ where: { id: farJob.id } })).toMatchObject({ status: "RUNNING", holder: "far-worker" });
    // Its claim went with it: another worker takes the job now.
    expect((await claimJobs(t.db, "next-worker", { limit: 1, ttlMs: 60_000 })).map((j) => j.id)).toEqual([deadJob.id]);
  });

  it("a holder on another machine with this host's name and pid namespace is not judged dead (its boot id differs); one of this machine's earlier boot is", async () => {
    await t.db.lease.deleteMany();
    const me = thisProcess();
    if (me.bootId === null) return; // no boot id here: nothing tells boots apart
    // Containers on two hosts given one host name, both in their host's root pid namespace (the same inode everywhere).
    const otherMachine = me.machineId === "f".repeat(32) ? "e".repeat(32) : "f".repeat(32);
    const exited = await exitedProcess();
    const twin: ProcessIdentity = { ...exited, machineId: otherMachine, bootId: `${me.bootId}-twin` };
    expect(await acquireLease(t.db, "twin", "twin-holder", 3_600_000, new Date(), twin)).toBe(true);
    expect(await acquireLease(other, "twin", "here", 10_000)).toBe(false);
    expect(await leaseHolder(t.db, "twin")).toBe("twin-holder");
    // This machine before a reboot: its holders are gone.
    const rebooted: ProcessIdentity = { ...exited, bootId: `${me.bootId}-before` };
    expect(await acquireLease(t.db, "rebooted", "old-boot", 3_600_000, new Date(), rebooted)).toBe(true);
    expect(await acquireLease(other, "rebooted", "here", 10_000)).toBe(true);
    // A row recorded before machine ids (host name alone): another boot id cannot be told from another machine.
    await t.db.lease.create({
      data: { name: "legacy", holder: "legacy-holder", expiresAt: new Date(Date.now() + 3_600_000), hostname: me.hostname, pid: exited.pid, bootId: `${me.bootId}-before`, pidNamespace: me.pidNamespace },
    });
    expect(await acquireLease(other, "legacy", "here", 10_000)).toBe(false);
    // ... while one of this boot whose process exited is still taken over at once.
    await t.db.lease.create({
      data: { name: "legacy-dead", holder: "legacy-dead", expiresAt: new Date(Date.now() + 3_600_000), hostname: me.hostname, pid: exited.pid, bootId: me.bootId, pidNamespace: me.pidNamespace },
    });
    expect(await acquireLease(other, "legacy-dead", "here", 10_000)).toBe(true);
  });

  it("requeueStale leaves a live worker's claim on another machine of the same host name alone", async () => {
    await t.db.lease.deleteMany();
    const me = thisProcess();
    if (me.bootId === null) return;
    const a = await makeArtwork(t.db, { image: false });
    await enqueueDescribe(t.db, loadConfig({}), { artworkId: a.id, imageId: null });
    const twin: ProcessIdentity = { ...(await exitedProcess()), machineId: me.machineId === "f".repeat(32) ? "e".repeat(32) : "f".repeat(32), bootId: `${me.bootId}-twin` };
    const [job] = await claimJobs(t.db, "twin-worker", { limit: 1, ttlMs: 60_000 });
    await acquireLease(t.db, `job:${job!.id}`, "twin-worker", 60_000, new Date(), twin);
    expect((await deadHolders(t.db, "job:")).size).toBe(0);
    expect(await requeueStale(t.db, 60_000)).toBe(0);
    expect(await t.db.job.findUniqueOrThrow({ where: { id: job!.id } })).toMatchObject({ status: "RUNNING", holder: "twin-worker" });
  });
});
