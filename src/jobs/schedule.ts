import { createTask } from "node-cron";
import type { Component, Runtime } from "../runtime.js";
import {
  abortAbandonedSyncRuns,
  SYNC_LEASE,
  SYNC_LEASE_TTL_MS,
  type SyncAttempt,
  syncInChildProcess,
  SyncProcessError,
  type SyncTrigger,
  sleep,
  syncOnce,
} from "../sync/command.js";
import { requireContact } from "../sync/http.js";
import { FINISHED_SYNC_STATUSES, type SyncSummary } from "../sync/summary.js";
import { nextCronMatch } from "./cron.js";
import { holderId } from "./lease.js";
import { dbTime } from "../store/db-clock.js";

export { SYNC_LEASE, SYNC_LEASE_TTL_MS };

export type SyncScheduleOptions = {
  /** Run a sync at start when the store has never been synced (default true). */
  syncAtStartWhenNeverSynced?: boolean;
  /** Waits before the startup sync is tried again after it FAILED or crashed, the last repeated (default STARTUP_RETRY_MS). */
  startupRetryMs?: readonly number[];
  /** How often to look for runs left RUNNING by a process that ended (default ABANDONED_RUN_SWEEP_MS). */
  abandonedRunSweepMs?: number;
  /** Tests: runs one attempt in place of the sync (a crash is a throw). */
  runAttempt?: (trigger: SyncTrigger, signal: AbortSignal) => Promise<SyncAttempt>;
} & (
  | {
      /** Each sync runs in this process (`daemon`). */
      inChildProcess?: false;
      /**
       * Called after every run that succeeded, with its id; returns how many jobs it queued, which is
       * stored in SyncRun.jobsQueued. Default: the nightly describe jobs.
       */
      afterSync?: (runId: number) => Promise<number>;
    }
  | {
      /**
       * Each sync runs in a child process (syncInChildProcess), which queues the nightly describe
       * jobs itself: `start`, whose API must keep this process's thread.
       */
      inChildProcess: true;
      afterSync?: never;
    }
);

export interface SyncSchedule extends Component {
  /** Runs one sync now unless one is running here or in another process (then null). */
  runNow(trigger: SyncTrigger): Promise<SyncSummary | null>;
  /** Resolves when the sync in progress (if any), and a startup sync still waiting for the lease, have ended. */
  idle(): Promise<void>;
}

/** How often a schedule looks for sync runs left RUNNING by a process that has ended. */
export const ABANDONED_RUN_SWEEP_MS = 60_000;

/** Waits before a FAILED or crashed startup sync is tried again: 1, 5 and 15 minutes, then every hour until one succeeds. */
export const STARTUP_RETRY_MS = [60_000, 5 * 60_000, 15 * 60_000, 60 * 60_000] as const;

/**
 * How one attempt ended: it ran, a sync was already running here, another process holds the lease,
 * or it crashed (the sync process died, or the run threw) before reporting a result.
 */
type Attempt = { ran: true; summary: SyncSummary } | { ran: false; expiresAt: Date | null; here: boolean; crashed?: true };

/**
 * The nightly sync as a service component: node-cron fires runs (SYNC_CRON in SYNC_TIMEZONE), a
 * first run happens at start if the store was never synced, and the "sync" lease makes sure only
 * one process syncs at a time. A scheduled run that finds the lease held by a live process skips;
 * the startup sync waits for that lease to expire (or be released) and tries again. A lease held by
 * a process that died on this host is taken over at once, and runs left RUNNING by dead processes
 * are recorded ABORTED at start. With `inChildProcess`, each run is a child process of its own,
 * one at a time; one that crashes is logged, its run recorded ABORTED, and the schedule goes on.
 */
export async function startSyncSchedule(rt: Runtime, options: SyncScheduleOptions = {}): Promise<SyncSchedule> {
  const { config, db, log } = rt;
  requireContact(config.USER_AGENT_CONTACT);
  const holder = holderId("sync");
  const stopping = new AbortController();
  const runOne = (trigger: SyncTrigger): Promise<SyncAttempt> =>
    options.runAttempt
      ? options.runAttempt(trigger, stopping.signal)
      : options.inChildProcess
      ? syncInChildProcess(rt, trigger, stopping.signal)
      : syncOnce(rt, { trigger, holder, signal: stopping.signal, afterSync: options.afterSync });
  let current: Promise<Attempt> | null = null;

  const attempt = (trigger: SyncTrigger): Promise<Attempt> => {
    if (stopping.signal.aborted) return Promise.resolve({ ran: false, expiresAt: null, here: true });
    if (current) {
      log.info({ trigger }, "sync already running here; this run is skipped");
      return Promise.resolve({ ran: false, expiresAt: null, here: true });
    }
    current = (async (): Promise<Attempt> => {
      log.info({ trigger }, "sync starting");
      const r = await runOne(trigger);
      if (r.ran) return { ran: true, summary: r.summary };
      log.info({ trigger, holder: r.holder, expiresAt: r.expiresAt?.toISOString() }, "another process is syncing; this run is skipped");
      return { ran: false, expiresAt: r.expiresAt, here: false };
    })()
      .catch((err: unknown): Attempt => {
        if (err instanceof SyncProcessError) {
          const next = stopping.signal.aborted ? "" : "; the schedule goes on";
          const fields = { trigger, syncPid: err.pid, exitCode: err.exitCode, signal: err.exitSignal, runsAborted: err.runsAborted };
          log.error(fields, `${err.message}${next}`);
        } else log.error({ err, trigger }, "sync could not run");
        return { ran: false, expiresAt: null, here: true, crashed: true };
      })
      .finally(() => {
        current = null;
      });
    return current;
  };
  const runNow = async (trigger: SyncTrigger) => {
    const r = await attempt(trigger);
    return r.ran ? r.summary : null;
  };

  /**
   * The first sync of a store never synced: tried until a sync has succeeded (here or in another
   * process). When a live process holds the lease, it tries again once that lease expires or is
   * released, instead of leaving the store empty until the schedule fires.
   */
  const startupSync = async (): Promise<void> => {
    while (!stopping.signal.aborted) {
      if (await db.syncRun.findFirst({ where: { status: { in: FINISHED_SYNC_STATUSES } }, select: { id: true } })) return;
      const r = await attempt("startup");
      const failed = r.ran ? r.summary.status === "FAILED" : r.crashed === true;
      if (failed && !stopping.signal.aborted) {
        // A first start during an outage, or a sync process killed (out of memory, by hand), would
        // leave the store empty or half filled until the schedule fires (03:00 by default): tried
        // again after a growing wait, in the background.
        const waits = options.startupRetryMs ?? STARTUP_RETRY_MS;
        const waitMs = waits[Math.min(startupFailures++, waits.length - 1)]!;
        const how = r.ran ? "failed" : "crashed";
        log.warn({ ...(r.ran ? { runId: r.summary.runId } : {}), retryInMs: waitMs }, `the first sync ${how}; it is tried again, as no sync has succeeded yet`);
        retryTimer = setTimeout(() => {
          retryTimer = null;
          startup = startupSync().catch((err: unknown) => log.error({ err }, "the startup sync could not run"));
        }, waitMs);
        retryTimer.unref();
        return;
      }
      if (r.ran || r.here) return;
      const waitMs = r.expiresAt ? Math.min(SYNC_LEASE_TTL_MS, Math.max(0, r.expiresAt.getTime() - (await dbTime(db)).getTime()) + 250) : 250;
      log.info({ retryInMs: waitMs }, "the startup sync waits for the other process's lease");
      await sleep(waitMs, stopping.signal);
    }
  };

  /** Runs left RUNNING by processes that ended are recorded ABORTED (at start, then by the sweep). */
  const recordAbandoned = async (): Promise<void> => {
    const n = await abortAbandonedSyncRuns(db);
    if (n) log.warn({ runs: n }, "sync runs left RUNNING by a process that ended are recorded ABORTED");
  };
  await recordAbandoned();
  // A run whose process dies later (an `artdesc sync` killed, a sync process out of memory) would
  // show RUNNING in status, GraphQL and /metrics until the next run: looked for every minute.
  const sweep = setInterval(() => {
    if (current || stopping.signal.aborted) return;
    // A read first: the write transaction only when a run says RUNNING.
    db.syncRun
      .count({ where: { status: "RUNNING" } })
      .then((running) => (running ? recordAbandoned() : undefined))
      .catch((err: unknown) => log.warn({ err }, "could not look for abandoned sync runs"));
  }, options.abandonedRunSweepMs ?? ABANDONED_RUN_SWEEP_MS);
  sweep.unref();

  const task = createTask(config.SYNC_CRON, () => void runNow("schedule"), { timezone: config.SYNC_TIMEZONE, name: "sync" });
  await task.start();
  log.info({ next: nextCronMatch(config.SYNC_CRON, config.SYNC_TIMEZONE).toISOString() }, "sync scheduled");

  let startup: Promise<void> = Promise.resolve();
  let retryTimer: NodeJS.Timeout | null = null;
  let startupFailures = 0;
  if (options.syncAtStartWhenNeverSynced !== false) {
    startup = startupSync().catch((err: unknown) => log.error({ err }, "the startup sync could not run"));
  }

  return {
    name: "sync-schedule",
    runNow,
    idle: async () => {
      await startup;
      await current;
    },
    async stop() {
      clearInterval(sweep);
      if (retryTimer) clearTimeout(retryTimer);
      await task.destroy();
      // Stop taking work; the work in progress finishes its item and the run is recorded ABORTED.
      stopping.abort(new Error("shutting down"));
      await startup;
      await current;
    },
  };
}
