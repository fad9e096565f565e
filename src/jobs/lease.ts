import { hostname } from "node:os";
import type { Db } from "../db.js";
import { Prisma } from "../db.js";
import type { Lease } from "../generated/prisma/client.js";
import { dbTime } from "../store/db-clock.js";
import { holderVerdict, type HolderVerdict, hostColumn, parseHostColumn, type ProcessIdentity, thisProcess } from "./process-identity.js";

/**
 * The one lock primitive: a named lease with a holder and an expiry, in the database, so it works
 * across processes. The sync lock is `lease("sync")`; a job claim is `lease("job:<id>")`.
 * Each operation is a single conditional statement (no read-then-write), which is atomic in
 * SQLite and PostgreSQL alike. A lease also records its holder's process: one held by a process
 * that died on this host is taken over at once rather than when it expires.
 */

/** A process-unique holder id: host, pid and a random suffix. */
export function holderId(role: string): string {
  return `${role}@${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
}

/** A process as a lease row's columns record it (the machine id rides in `hostname`: hostColumn). */
export function processColumns(p: ProcessIdentity) {
  return { hostname: hostColumn(p), pid: p.pid, bootId: p.bootId, pidNamespace: p.pidNamespace, startTicks: p.startTicks };
}

/** The process a lease row records, or null for a row written before leases recorded one. */
export function leaseProcess(l: Pick<Lease, "hostname" | "pid" | "bootId" | "pidNamespace" | "startTicks">): ProcessIdentity | null {
  if (l.hostname === null || l.pid === null) return null;
  return { ...parseHostColumn(l.hostname), pid: l.pid, bootId: l.bootId, pidNamespace: l.pidNamespace, startTicks: l.startTicks };
}

/** Whether a lease's holder still runs: "elsewhere" when it cannot be told from here. */
export function leaseHolderVerdict(l: Pick<Lease, "hostname" | "pid" | "bootId" | "pidNamespace" | "startTicks">): HolderVerdict {
  const p = leaseProcess(l);
  return p ? holderVerdict(p) : "elsewhere";
}

/**
 * Takes the lease if it is free, expired, already ours, or held by a process that died on this
 * host. Returns true when we hold it. `owner` is the holder's process (this one, except in tests).
 */
export async function acquireLease(
  db: Db,
  name: string,
  holder: string,
  ttlMs: number,
  at?: Date,
  owner: ProcessIdentity = thisProcess(),
): Promise<boolean> {
  const now = at ?? (await dbTime(db));
  const expiresAt = new Date(now.getTime() + ttlMs);
  const data = { holder, expiresAt, acquiredAt: now, ...processColumns(owner) };
  const taken = await db.lease.updateMany({ where: { name, OR: [{ expiresAt: { lt: now } }, { holder }] }, data });
  if (taken.count === 1) return true;
  try {
    await db.lease.create({ data: { name, ...data } });
    return true;
  } catch (err) {
    // Someone else holds it (the row exists and is neither expired nor ours).
    if (!(err instanceof Prisma.PrismaClientKnownRequestError && err.code === "P2002")) throw err;
  }
  const held = await db.lease.findUnique({ where: { name } });
  if (!held || leaseHolderVerdict(held) !== "dead") return false;
  // The same row we judged (holder and acquisition time), so a live newcomer is never displaced.
  const takeover = await db.lease.updateMany({ where: { name, holder: held.holder, acquiredAt: held.acquiredAt }, data });
  return takeover.count === 1;
}

/** Extends a lease we hold. Returns false if it was lost (expired and taken by another holder). */
export async function renewLease(db: Db, name: string, holder: string, ttlMs: number, at?: Date): Promise<boolean> {
  const now = at ?? (await dbTime(db));
  const r = await db.lease.updateMany({ where: { name, holder }, data: { expiresAt: new Date(now.getTime() + ttlMs) } });
  return r.count === 1;
}

export async function releaseLease(db: Db, name: string, holder: string): Promise<void> {
  await releaseLeaseQuery(db, name, holder);
}

/** releaseLease as a query not yet sent, to commit with the change that ends the claim (`$transaction([...])`). */
export function releaseLeaseQuery(db: Db, name: string, holder: string) {
  return db.lease.deleteMany({ where: { name, holder } });
}

/** Current holder of a live lease, or null. */
export async function leaseHolder(db: Db, name: string, at?: Date): Promise<string | null> {
  const now = at ?? (await dbTime(db));
  const l = await db.lease.findUnique({ where: { name } });
  return l && l.expiresAt >= now ? l.holder : null;
}

/**
 * Holders of leases named `<prefix>...` whose process died on this host, by lease name: their
 * claims can be given back at once.
 */
export async function deadHolders(db: Db, prefix: string): Promise<Map<string, string>> {
  const rows = await db.lease.findMany({ where: { name: { startsWith: prefix }, pid: { not: null } } });
  return new Map(rows.filter((l) => leaseHolderVerdict(l) === "dead").map((l) => [l.name, l.holder]));
}

/**
 * Runs `fn` while holding the lease, renewing it every ttl/3. Returns `{ acquired: false }` at
 * once when another live holder has it (with when its lease expires, to try again then). `fn`
 * receives a signal that aborts if the lease is lost.
 */
export async function withLease<T>(
  db: Db,
  name: string,
  holder: string,
  ttlMs: number,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<{ acquired: true; result: T } | { acquired: false; holder: string | null; expiresAt: Date | null }> {
  if (!(await acquireLease(db, name, holder, ttlMs))) {
    // Null when it was released in the meantime: nothing to wait for.
    const held = await db.lease.findUnique({ where: { name } });
    return { acquired: false, holder: held?.holder ?? null, expiresAt: held?.expiresAt ?? null };
  }
  const lost = new AbortController();
  // When the lease was last known to be ours, on this process's monotonic clock.
  let heldAt = performance.now();
  const timer = setInterval(() => {
    // A process paused past the lease's expiry (SIGSTOP, a frozen VM, an event loop blocked that
    // long) may have lost it to another: its work stops now, before any write it resumes with,
    // not when a renewal comes back refused.
    if (performance.now() - heldAt > ttlMs) {
      lost.abort(new Error(`lease ${name} may have expired: this process was paused for longer than the lease's ${ttlMs} ms`));
      return;
    }
    const asked = performance.now();
    renewLease(db, name, holder, ttlMs).then(
      (ok) => (ok ? (heldAt = asked) : lost.abort(new Error(`lease ${name} was lost`))),
      (err: unknown) => lost.abort(err),
    );
  }, Math.max(50, Math.floor(ttlMs / 3)));
  timer.unref();
  try {
    return { acquired: true, result: await fn(lost.signal) };
  } finally {
    clearInterval(timer);
    await releaseLease(db, name, holder);
  }
}
