import { fork } from "node:child_process";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { type Db, writeTransaction } from "../db.js";
import { holderId, leaseHolderVerdict, withLease } from "../jobs/lease.js";
import { describeAfterSync } from "../jobs/queue.js";
import { logSyncRun } from "../ops/log-events.js";
import type { Runtime } from "../runtime.js";
import { requireContact } from "./http.js";
import { FINISHED_SYNC_STATUSES, type SyncSummary } from "./summary.js";
import { runSync, type SyncOptions, type SyncProgress } from "./sync.js";
import { dbTime } from "../store/db-clock.js";

/** The lease that keeps syncs one at a time across processes. */
export const SYNC_LEASE = "sync";
export const SYNC_LEASE_TTL_MS = 60_000;

/** Why a run that was RUNNING is recorded ABORTED when nobody runs it any more. */
export const ABANDONED_RUN = "the process ended before the run finished";

export interface SyncOnceOptions extends Pick<SyncOptions, "creators" | "full" | "trigger" | "signal" | "onProgress"> {
  /** Who runs it: the lease holder, recorded on the run. */
  holder: string;
  /**
   * Queues the describe jobs after a run that succeeded and returns how many (stored on the run);
   * default: the nightly describe jobs (queueAfterSync).
   */
  afterSync?: (runId: number) => Promise<number>;
}

/** A sync ran (whatever its status), or another live process holds the lease until `expiresAt`. */
export type SyncAttempt =
  | { ran: true; summary: SyncSummary; jobsQueued: number }
  | { ran: false; holder: string | null; expiresAt: Date | null };

/**
 * Runs a sync, the one way every entry point does (`artdesc sync`, the schedule, the startup
 * sync): under the "sync" lease (taken over at once from a process that died on this host), then
 * the describe jobs for what changed, then one log line for the run.
 */
export async function syncOnce(rt: Runtime, options: SyncOnceOptions): Promise<SyncAttempt> {
  const { db, config, log } = rt;
  const afterSync = options.afterSync ?? describeAfterSync(rt);
  const { creators, full, trigger, holder, onProgress } = options;
  const r = await withLease(db, SYNC_LEASE, holder, SYNC_LEASE_TTL_MS, async (leaseLost) => {
    const signal = options.signal ? AbortSignal.any([options.signal, leaseLost]) : leaseLost;
    const summary = await runSync({ db, config, log }, { creators, full, trigger, holder, signal, onProgress });
    let jobsQueued = 0;
    if (FINISHED_SYNC_STATUSES.includes(summary.status)) {
      try {
        jobsQueued = await afterSync(summary.runId);
        await db.syncRun.update({ where: { id: summary.runId }, data: { jobsQueued } });
      } catch (err) {
        log.error({ err, runId: summary.runId }, "queueing the describe jobs after the sync failed");
      }
    }
    logSyncRun(log, await db.syncRun.findUniqueOrThrow({ where: { id: summary.runId } }));
    return { summary, jobsQueued };
  });
  return r.acquired ? { ran: true, ...r.result } : { ran: false, holder: r.holder, expiresAt: r.expiresAt };
}

/** Who started a run (SyncRun.trigger). */
export type SyncTrigger = NonNullable<SyncOptions["trigger"]>;
const SYNC_TRIGGERS: readonly string[] = ["manual", "schedule", "startup"] satisfies SyncTrigger[];
export const isSyncTrigger = (s: unknown): s is SyncTrigger => typeof s === "string" && SYNC_TRIGGERS.includes(s);

/**
 * What the sync process (./child.ts) tells its parent: that it has set up its signal handlers
 * (a stop asked before is sent then), then the one attempt it made.
 */
export type SyncChildMessage = { type: "ready" } | { type: "attempt"; attempt: SyncAttempt };

export function isSyncChildMessage(m: unknown): m is SyncChildMessage {
  if (typeof m !== "object" || m === null || !("type" in m)) return false;
  if (m.type === "ready") return true;
  if (m.type !== "attempt" || !("attempt" in m) || typeof m.attempt !== "object" || m.attempt === null) return false;
  const a = m.attempt as Partial<Record<string, unknown>>;
  if (a.ran === false) return true;
  const summary = a.summary as Partial<SyncSummary> | undefined;
  return a.ran === true && typeof a.jobsQueued === "number" && typeof summary?.runId === "number" && typeof summary.status === "string";
}

/** A sync process that ended without reporting its attempt: it crashed or was killed. */
export class SyncProcessError extends Error {
  constructor(
    readonly pid: number | undefined,
    readonly exitCode: number | null,
    readonly exitSignal: NodeJS.Signals | null,
    /** Runs it left RUNNING, recorded ABORTED once it had gone. */
    readonly runsAborted: number,
    options?: ErrorOptions,
  ) {
    const how = exitSignal ? `was killed by ${exitSignal}` : exitCode === null ? "could not be started" : `exited with status ${exitCode}`;
    const runs = runsAborted ? `; the run it left RUNNING is recorded ABORTED` : "";
    super(`the sync process${pid ? ` (pid ${pid})` : ""} ${how} before reporting a result${runs}`, options);
  }
}

/** The sync process's entry: child.ts from the sources (under tsx), child.js once built. */
const SYNC_CHILD_ENTRY = fileURLToPath(new URL(`./child${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

/**
 * Runs one sync attempt (syncOnce: the lease, the run, the describe jobs, its log line) in a
 * child process at background priority, so that none of the sync's JavaScript (JSON parsing,
 * Prisma's writes, sharp's callbacks) runs on this process's thread: `artdesc start`'s API keeps
 * it. The child takes the sync lease itself, in its own name, and exits at once when this process
 * dies, so a `start` killed with SIGKILL leaves no sync behind and its lease can be taken over.
 *
 * Aborting `signal` stops it as SIGTERM stops `artdesc sync` (the item in progress finishes, the
 * run is recorded ABORTED); after SHUTDOWN_GRACE_S more it is killed. A child that ends without
 * reporting its attempt (it crashed or was killed) rejects with SyncProcessError, once the run it
 * left RUNNING has been recorded ABORTED.
 */
export async function syncInChildProcess(rt: Runtime, trigger: SyncTrigger, signal: AbortSignal): Promise<SyncAttempt> {
  const { db, config, log } = rt;
  const child = fork(SYNC_CHILD_ENTRY, [trigger], {
    // The same loader (tsx when run from the sources); a debugger's port is this process's.
    execArgv: process.execArgv.filter((a) => !a.startsWith("--inspect")),
    // Dates in the attempt arrive as Dates.
    serialization: "advanced",
    // Its own process group: a Ctrl-C at the terminal reaches only `start`, which stops it once.
    detached: true,
  });
  let ready = false;
  let attempt: SyncAttempt | null = null;
  let killTimer: NodeJS.Timeout | undefined;
  const terminate = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  };
  const stop = () => {
    // Before it is ready a SIGTERM would kill it outright; it gets one as soon as it is.
    if (ready) terminate();
    killTimer = setTimeout(() => {
      log.warn({ syncPid: child.pid, graceS: config.SHUTDOWN_GRACE_S }, "grace period over: killing the sync process");
      child.kill("SIGKILL");
    }, config.SHUTDOWN_GRACE_S * 1000);
  };
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.once("exit", (code, exitSignal) => resolve({ code, signal: exitSignal }));
    child.on("error", (error) => {
      // No pid: it never started (and never will exit). Otherwise a signal that found it gone.
      if (child.pid === undefined) resolve({ code: null, signal: null, error });
      else log.debug({ err: error, syncPid: child.pid }, "signalling the sync process failed");
    });
  });
  child.on("message", (m: unknown) => {
    if (!isSyncChildMessage(m)) return log.warn({ syncPid: child.pid }, "the sync process sent a message that is not a report; ignored");
    if (m.type === "attempt") attempt = m.attempt;
    else {
      ready = true;
      if (signal.aborted) terminate();
    }
  });
  if (signal.aborted) stop();
  else signal.addEventListener("abort", stop, { once: true });
  log.info({ trigger, syncPid: child.pid }, "sync process started");
  const end = await ended;
  clearTimeout(killTimer);
  signal.removeEventListener("abort", stop);
  if (attempt) {
    if (end.code !== 0) log.warn({ syncPid: child.pid, exitCode: end.code, signal: end.signal }, "the sync process reported its run, then exited abnormally");
    return attempt;
  }
  // It is gone, so its lease is a dead process's: its run is abandoned and recorded now.
  const runsAborted = await abortAbandonedSyncRuns(db);
  throw new SyncProcessError(child.pid, end.code, end.signal, runsAborted, end.error ? { cause: end.error } : undefined);
}

/**
 * Records as ABORTED every RUNNING run that no live holder of the sync lease is running (its
 * process was killed). Returns how many. The lease is read inside the write, so a run that starts
 * meanwhile is never touched. `now` is the database's clock (dbTime), as the lease's expiry is:
 * this host's clock, a minute fast, took another host's live run for abandoned.
 */
export async function abortAbandonedSyncRuns(db: Db, at?: Date): Promise<number> {
  const now = at ?? (await dbTime(db));
  return writeTransaction(db, async (tx) => {
    const lease = await tx.lease.findUnique({ where: { name: SYNC_LEASE } });
    const live = lease && lease.expiresAt >= now && leaseHolderVerdict(lease) !== "dead" ? lease.holder : null;
    const r = await tx.syncRun.updateMany({
      where: { status: "RUNNING", ...(live ? { OR: [{ holder: null }, { holder: { not: live } }] } : {}) },
      data: { status: "ABORTED", finishedAt: now, error: ABANDONED_RUN },
    });
    return r.count;
  });
}

export interface SyncCommandOptions {
  creators?: string[];
  full?: boolean;
  /** Where progress goes (default stderr). */
  out?: NodeJS.WriteStream;
  /** Where the summary goes (default stdout). */
  summaryOut?: NodeJS.WritableStream;
  /** How long to wait between looks at a lease another process holds. */
  waitPollMs?: number;
}

/**
 * `artdesc sync`: one run now, then the describe jobs for what changed (as the schedule does).
 * Waits while another live process holds the sync lease (one that died on this host is taken over
 * at once), shows progress (one rewritten line on a terminal, plain lines otherwise), prints a
 * summary. SIGINT/SIGTERM stop taking work; a second signal exits at once. Returns the exit status.
 */
export async function syncCommand(rt: Runtime, options: SyncCommandOptions = {}): Promise<number> {
  const { config } = rt;
  requireContact(config.USER_AGENT_CONTACT);
  const out = options.out ?? process.stderr;
  const stop = new AbortController();
  const onSignal = (signal: string) => {
    if (stop.signal.aborted) process.exit(130);
    out.write(`\n${signal}: finishing the current item, then stopping (again to exit now)\n`);
    stop.abort(new Error(signal));
  };
  const onInt = () => onSignal("SIGINT");
  const onTerm = () => onSignal("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  const holder = holderId("sync-cli");
  const display = progressDisplay(out);
  try {
    let done: { summary: SyncSummary; jobsQueued: number } | null = null;
    let told = false;
    while (!stop.signal.aborted) {
      const r = await syncOnce(rt, { creators: options.creators, full: options.full, trigger: "manual", holder, signal: stop.signal, onProgress: display });
      if (r.ran) {
        done = r;
        break;
      }
      if (!told) {
        const until = r.expiresAt ? `; its lease expires at ${r.expiresAt.toISOString()} unless it renews it` : "";
        out.write(`another process is syncing (${r.holder ?? "finishing"}${until}); waiting for it\n`);
      }
      told = true;
      await sleep(options.waitPollMs ?? 2_000, stop.signal);
    }
    if (!done) return 130;
    (options.summaryOut ?? process.stdout).write(formatSummary(done.summary, done.jobsQueued));
    return SYNC_EXIT_CODES[done.summary.status];
  } finally {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
  }
}

/**
 * `artdesc sync`'s exit status: a run that went through to the end exits 0, also when some works
 * failed (PARTIAL: they are recorded and tried again next run); a run that failed or stopped, 1.
 */
export const SYNC_EXIT_CODES: Record<SyncSummary["status"], number> = { SUCCEEDED: 0, PARTIAL: 0, FAILED: 1, ABORTED: 1, RUNNING: 1 };

/** Waits `ms`, or less if `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

function progressDisplay(out: NodeJS.WriteStream): (p: SyncProgress) => void {
  const tty = out.isTTY === true;
  let lastLine = "";
  let lastPhase = "";
  let lastDecile = -1;
  return (p) => {
    const line = `${p.phase.padEnd(9)} works ${p.worksDone}/${p.worksTotal}  images ${p.imagesDone}/${p.imagesTotal}`;
    if (tty) {
      if (line !== lastLine) out.write(`\r${line}\x1b[K${p.phase === "done" ? "\n" : ""}`);
    } else {
      // Plain lines for logs: one per phase and one per tenth of the work.
      const total = p.worksTotal + p.imagesTotal;
      const decile = total ? Math.floor(((p.worksDone + p.imagesDone) / total) * 10) : 0;
      if (p.phase !== lastPhase || decile !== lastDecile) out.write(`${line}\n`);
      lastDecile = decile;
    }
    lastPhase = p.phase;
    lastLine = line;
  };
}

export function formatSummary(s: SyncSummary, jobsQueued = 0): string {
  const rows = [
    `sync run ${s.runId}: ${s.status}${s.full ? " (full)" : ""}`,
    `  works:  ${s.seen} seen, ${s.created} new, ${s.updated} updated, ${s.unchanged} unchanged, ${s.removed} left the inventory, ${s.skippedNoImage} without image`,
    `  images: ${s.imagesDownloaded} downloaded, ${s.imagesUnchanged} unchanged`,
    `  failed: ${s.failed}${s.failed ? " (see syncRuns { failures } in GraphQL)" : ""}`,
    `  queued: ${jobsQueued} describe job(s)`,
  ];
  if (s.error) rows.push(`  error:  ${s.error}`);
  return rows.join("\n") + "\n";
}
