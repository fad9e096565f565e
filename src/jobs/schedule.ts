import { createTask, validate } from "node-cron";
import type { Component, Runtime } from "../runtime.js";
import { requireContact } from "../sync/http.js";
import { runSync, type SyncSummary } from "../sync/sync.js";
import { holderId, leaseHolder, withLease } from "./lease.js";
import { logSyncRun } from "../ops/log-events.js";

/** The lease that keeps syncs one at a time across processes. */
export const SYNC_LEASE = "sync";
export const SYNC_LEASE_TTL_MS = 60_000;

/** Throws a clear error for a bad expression or time zone. */
export function checkSchedule(cron: string, timezone: string): void {
  if (!validate(cron)) throw new Error(`SYNC_CRON="${cron}" is not a cron expression (e.g. "0 3 * * *")`);
  try {
    new Intl.DateTimeFormat("en", { timeZone: timezone });
  } catch {
    throw new Error(`SYNC_TIMEZONE="${timezone}" is not an IANA time zone (e.g. "Europe/Madrid")`);
  }
}

/** When the schedule next fires after `now`. */
export function nextSyncAt(cron: string, timezone: string, now: Date = new Date()): Date {
  checkSchedule(cron, timezone);
  const task = createTask(cron, () => undefined, { timezone });
  try {
    // node-cron exposes the next match only from the current time; its matcher takes any date.
    const matcher = (task as unknown as { timeMatcher?: { getNextMatch(d: Date): Date } }).timeMatcher;
    if (!matcher) throw new Error("node-cron changed: no timeMatcher on a task");
    return matcher.getNextMatch(now);
  } finally {
    void task.destroy();
  }
}

export interface SyncScheduleOptions {
  /**
   * Called after every run that finished (not aborted), with its id; returns how many jobs it
   * queued, which is stored in SyncRun.jobsQueued.
   */
  afterSync?: (runId: number) => Promise<number>;
  /** Run a sync at start when the store has never been synced (default true). */
  syncAtStartWhenNeverSynced?: boolean;
}

export interface SyncSchedule extends Component {
  /** Runs one sync now unless one is running here or in another process (then null). */
  runNow(trigger: "schedule" | "startup" | "manual"): Promise<SyncSummary | null>;
  /** Resolves when the sync in progress (if any) has ended. */
  idle(): Promise<void>;
}

/**
 * The nightly sync as a service component: node-cron fires runs (SYNC_CRON in SYNC_TIMEZONE), a
 * first run happens at start if the store was never synced, and the "sync" lease makes sure only
 * one process syncs at a time: a process that finds it taken skips that run.
 */
export async function startSyncSchedule(rt: Runtime, options: SyncScheduleOptions = {}): Promise<SyncSchedule> {
  const { config, db, log } = rt;
  requireContact(config.USER_AGENT_CONTACT);
  checkSchedule(config.SYNC_CRON, config.SYNC_TIMEZONE);
  const holder = holderId("sync");
  const stopping = new AbortController();
  let current: Promise<SyncSummary | null> | null = null;

  const runNow = (trigger: "schedule" | "startup" | "manual"): Promise<SyncSummary | null> => {
    if (stopping.signal.aborted) return Promise.resolve(null);
    if (current) {
      log.info({ trigger }, "sync already running here; this run is skipped");
      return Promise.resolve(null);
    }
    current = (async () => {
      const outcome = await withLease(db, SYNC_LEASE, holder, SYNC_LEASE_TTL_MS, async (leaseLost) => {
        const signal = AbortSignal.any([stopping.signal, leaseLost]);
        log.info({ trigger }, "sync started");
        const summary = await runSync({ db, config, log }, { trigger, holder, signal });
        if (options.afterSync && summary.status === "SUCCEEDED") {
          try {
            const jobsQueued = await options.afterSync(summary.runId);
            await db.syncRun.update({ where: { id: summary.runId }, data: { jobsQueued } });
          } catch (err) {
            log.error({ err, runId: summary.runId }, "after-sync hook failed");
          }
        }
        logSyncRun(log, await db.syncRun.findUniqueOrThrow({ where: { id: summary.runId } }));
        return summary;
      });
      if (!outcome.acquired) {
        log.info({ trigger, holder: outcome.holder }, "another process is syncing; this run is skipped");
        return null;
      }
      return outcome.result;
    })()
      .catch((err: unknown) => {
        log.error({ err, trigger }, "sync could not run");
        return null;
      })
      .finally(() => {
        current = null;
      });
    return current;
  };

  const task = createTask(config.SYNC_CRON, () => void runNow("schedule"), { timezone: config.SYNC_TIMEZONE, name: "sync" });
  await task.start();
  log.info({ next: nextSyncAt(config.SYNC_CRON, config.SYNC_TIMEZONE).toISOString() }, "sync scheduled");

  if (options.syncAtStartWhenNeverSynced !== false) {
    const everSynced = await db.syncRun.findFirst({ where: { status: "SUCCEEDED" }, select: { id: true } });
    const busy = await leaseHolder(db, SYNC_LEASE);
    if (!everSynced && !busy) void runNow("startup");
  }

  return {
    name: "sync-schedule",
    runNow,
    idle: async () => {
      await current;
    },
    async stop() {
      await task.destroy();
      // Stop taking work; the work in progress finishes its item and the run is recorded ABORTED.
      stopping.abort(new Error("shutting down"));
      await current;
    },
  };
}
