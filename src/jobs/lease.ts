import { hostname } from "node:os";
import type { Db } from "../db.js";
import { Prisma } from "../db.js";

/**
 * The one lock primitive: a named lease with a holder and an expiry, in the database, so it works
 * across processes. The sync lock is `lease("sync")`; a job claim is `lease("job:<id>")`.
 * Each operation is a single conditional statement (no read-then-write), which is atomic in
 * SQLite and PostgreSQL alike.
 */

/** A process-unique holder id: host, pid and a random suffix. */
export function holderId(role: string): string {
  return `${role}@${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
}

/** Takes the lease if it is free, expired, or already ours. Returns true when we hold it. */
export async function acquireLease(db: Db, name: string, holder: string, ttlMs: number, now = new Date()): Promise<boolean> {
  const expiresAt = new Date(now.getTime() + ttlMs);
  const taken = await db.lease.updateMany({
    where: { name, OR: [{ expiresAt: { lt: now } }, { holder }] },
    data: { holder, expiresAt, acquiredAt: now },
  });
  if (taken.count === 1) return true;
  try {
    await db.lease.create({ data: { name, holder, expiresAt, acquiredAt: now } });
    return true;
  } catch (err) {
    // Someone else holds it (the row exists and is neither expired nor ours).
    if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === "P2002") return false;
    throw err;
  }
}

/** Extends a lease we hold. Returns false if it was lost (expired and taken by another holder). */
export async function renewLease(db: Db, name: string, holder: string, ttlMs: number, now = new Date()): Promise<boolean> {
  const r = await db.lease.updateMany({ where: { name, holder }, data: { expiresAt: new Date(now.getTime() + ttlMs) } });
  return r.count === 1;
}

export async function releaseLease(db: Db, name: string, holder: string): Promise<void> {
  await db.lease.deleteMany({ where: { name, holder } });
}

/** Current holder of a live lease, or null. */
export async function leaseHolder(db: Db, name: string, now = new Date()): Promise<string | null> {
  const l = await db.lease.findUnique({ where: { name } });
  return l && l.expiresAt >= now ? l.holder : null;
}

/**
 * Runs `fn` while holding the lease, renewing it every ttl/3. Returns `{ acquired: false }` at
 * once when another holder has it. `fn` receives a signal that aborts if the lease is lost.
 */
export async function withLease<T>(
  db: Db,
  name: string,
  holder: string,
  ttlMs: number,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<{ acquired: true; result: T } | { acquired: false; holder: string | null }> {
  if (!(await acquireLease(db, name, holder, ttlMs))) return { acquired: false, holder: await leaseHolder(db, name) };
  const lost = new AbortController();
  const timer = setInterval(() => {
    renewLease(db, name, holder, ttlMs).then(
      (ok) => ok || lost.abort(new Error(`lease ${name} was lost`)),
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
