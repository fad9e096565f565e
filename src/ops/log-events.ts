import type { SyncRun } from "../generated/prisma/client.js";
import type { Logger } from "../log.js";
import { syncCounts } from "./sync-counts.js";

/**
 * One log line per finished sync run (info when it succeeded, warn when some works failed or it
 * was aborted, error when it failed), with its counts and duration. The sync code calls it after writing the run's last state.
 */
export function logSyncRun(log: Logger, run: SyncRun): void {
  const durationMs = run.finishedAt ? run.finishedAt.getTime() - run.startedAt.getTime() : null;
  const fields = {
    event: "sync",
    syncRunId: run.id,
    status: run.status,
    trigger: run.trigger,
    full: run.full,
    durationMs,
    ...syncCounts(run),
    ...(run.error ? { error: run.error } : {}),
  };
  const level = run.status === "FAILED" ? "error" : run.status === "ABORTED" || run.status === "PARTIAL" ? "warn" : "info";
  log[level](fields, `sync ${run.status.toLowerCase()}`);
}

export interface DescriptionLogEvent {
  artworkQid: string;
  descriptionId?: number;
  jobId?: number | null;
  /** Wall time of the description, ms. */
  durationMs: number;
  promptTokens?: number;
  generatedTokens: number;
  finishReason: string;
  modelId?: string;
  device?: string;
}

/** One log line per description written by the model. The jobs/describe code calls it. */
export function logDescription(log: Logger, e: DescriptionLogEvent): void {
  log.info({ event: "description", ...e }, "description written");
}
