import type { SyncRun } from "../generated/prisma/client.js";
import type { SyncRunStatus } from "../generated/prisma/enums.js";
import { type SyncCounts, syncCounts } from "../ops/sync-counts.js";

/*
 * What a sync run's row says, for the status, the schedule and the logs: apart from sync.ts, so
 * that reading a run (`artdesc status`) does not load what running one needs (sharp, wikibase-sdk).
 */

/** A run that went through to the end: every work was looked at, some may have failed. */
export const FINISHED_SYNC_STATUSES: SyncRunStatus[] = ["SUCCEEDED", "PARTIAL"];

/**
 * A sync run as everyone reports it: what runSync returns, what `artdesc status` and the sync
 * command print, and what the logs carry. Read from the SyncRun row (summarizeSync).
 */
export interface SyncSummary extends SyncCounts {
  runId: number;
  status: SyncRunStatus;
  /** "manual", "schedule" or "startup". */
  trigger: string;
  full: boolean;
  creators: string[];
  startedAt: Date;
  finishedAt: Date | null;
  /** Seconds from start to finish (or to now while running). */
  durationSeconds: number;
  error: string | null;
}

export function summarizeSync(run: SyncRun, now: Date = new Date()): SyncSummary {
  let creators: string[] = [];
  try {
    creators = JSON.parse(run.creators) as string[];
  } catch {
    // A hand-edited row: show no creators rather than fail the whole status.
  }
  return {
    runId: run.id,
    status: run.status,
    trigger: run.trigger,
    full: run.full,
    creators,
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
    durationSeconds: ((run.finishedAt ?? now).getTime() - run.startedAt.getTime()) / 1000,
    ...syncCounts(run),
    error: run.error,
  };
}
