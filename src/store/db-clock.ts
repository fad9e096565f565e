import { type Db, kindOf } from "../db.js";

/**
 * The database's clock, for the times that processes on several hosts compare: heartbeats and the
 * stale cutoff, lease expiry, job back-off. On PostgreSQL, workers on other machines write them;
 * a host whose clock is off by more than HEARTBEAT_STALE_S would otherwise take live workers' jobs
 * (its cutoff is in their future) or never give a dead worker's back (a Raspberry Pi without a
 * real-time clock starts in 1970 until NTP answers). So each process keeps its offset from the
 * database's clock, measured with one `SELECT clock_timestamp()` at most every CLOCK_REFRESH_MS,
 * and takes those times from it. SQLite lives on one host: its clock is this process's.
 */

/** How long a measured offset is used before it is measured again. */
export const CLOCK_REFRESH_MS = 60_000;

interface Offset {
  /** Database time minus this process's time, in milliseconds. */
  ms: number;
  /** When it was measured (this process's clock). */
  at: number;
}

const offsets = new WeakMap<Db, Offset>();
/** The last time dbTime gave for each database (milliseconds). */
const lastTimes = new WeakMap<Db, number>();

/**
 * How far back a new measurement may move the clock and be held instead: a measured offset is
 * off by up to half a round trip, so two measurements differ by a millisecond or so. A larger
 * step back (the database's clock was set back) is followed.
 */
export const CLOCK_NOISE_MS = 1_000;

/**
 * The time dbTime gives: `candidate`, unless it is less than CLOCK_NOISE_MS before the last one
 * given, then that one again. A job queued with dbTime's now is then never in the future of a
 * claim's dbTime a moment later, even when the offset was measured again in between.
 */
export function monotonicTime(last: number | undefined, candidate: number): number {
  return last !== undefined && candidate < last && last - candidate < CLOCK_NOISE_MS ? last : candidate;
}

/** The database's time now (this process's clock on SQLite). Measures the offset when it is older than CLOCK_REFRESH_MS. */
export async function dbTime(db: Db): Promise<Date> {
  if (kindOf(db) !== "postgresql") return new Date();
  let o = offsets.get(db);
  const local = Date.now();
  // A clock that jumped backwards (local < at) is measured again too.
  if (!o || local - o.at > CLOCK_REFRESH_MS || local < o.at) o = await measure(db);
  const time = monotonicTime(lastTimes.get(db), Date.now() + o.ms);
  lastTimes.set(db, time);
  return new Date(time);
}

/** The offset last measured for this database (0 before the first, and always on SQLite), in milliseconds. */
export function dbClockOffset(db: Db): number {
  return offsets.get(db)?.ms ?? 0;
}

async function measure(db: Db): Promise<Offset> {
  const before = Date.now();
  const [row] = await db.$queryRawUnsafe<{ now: Date }[]>(`SELECT clock_timestamp() AS now`);
  const after = Date.now();
  // The database read its clock somewhere in the round trip: the middle is the best guess.
  const o = { ms: row!.now.getTime() - (before + after) / 2, at: after };
  offsets.set(db, o);
  return o;
}
