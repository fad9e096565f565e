import type { SyncRun } from "../generated/prisma/client.js";

/** The counters of a sync run, as the status, the logs and the metrics report them. */
export const SYNC_COUNT_KEYS = [
  "seen",
  "created",
  "updated",
  "unchanged",
  "removed",
  "skippedNoImage",
  "failed",
  "imagesDownloaded",
  "imagesUnchanged",
  "jobsQueued",
] as const satisfies readonly (keyof SyncRun)[];

export type SyncCounts = Pick<SyncRun, (typeof SYNC_COUNT_KEYS)[number]>;

export function syncCounts(run: SyncCounts): SyncCounts {
  return Object.fromEntries(SYNC_COUNT_KEYS.map((k) => [k, run[k]])) as SyncCounts;
}
