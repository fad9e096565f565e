import type { Db } from "../db.js";
import { dbTime } from "../store/db-clock.js";
import type { Heartbeat } from "../generated/prisma/client.js";
import type { JobStatus } from "../generated/prisma/enums.js";
import { DESCRIBE } from "../jobs/queue.js";
import { nextCronMatch } from "../jobs/cron.js";
import { FINISHED_SYNC_STATUSES, summarizeSync, type SyncSummary } from "../sync/summary.js";

export type JobCounts = Record<Lowercase<JobStatus>, number>;

/**
 * A process's heartbeat as the API shows it (GraphQL ProcessHeartbeat, in `status { heartbeats }`
 * and `generationDefaults { model workers }`): the row, its age, and whether it is fresh.
 */
export interface HeartbeatStatus {
  id: string;
  role: string;
  pid: number;
  hostname: string;
  startedAt: Date;
  beatAt: Date;
  /** Seconds since the last beat. */
  ageSeconds: number;
  /** Beat within HEARTBEAT_STALE_S. */
  alive: boolean;
  modelStatus: string | null;
  modelError: string | null;
  modelId: string | null;
  modelRevision: string | null;
  dtypes: Record<string, string> | null;
  device: string | null;
  /** The vectors its background embedder makes (embedderKey: model, file, @revision), while the embedding model is loaded. */
  embedModelId: string | null;
}

export interface Status {
  now: Date;
  /** The most recent sync run, finished or not. */
  lastSync: SyncSummary | null;
  /** The most recent sync run that succeeded (the same as lastSync when that one did). */
  lastSuccessfulSync: SyncSummary | null;
  /** When the schedule runs next (null when no schedule was given). */
  nextSyncAt: Date | null;
  jobs: JobCounts;
  heartbeats: HeartbeatStatus[];
  /** Model descriptions written in the hour before `now`. */
  descriptionsLastHour: number;
  /** Mean generation time of those, in seconds (null when none recorded timings). */
  averageDescriptionSeconds: number | null;
  /** QUEUED + RUNNING describe jobs (an embed job takes the embedding thread, not the describe worker, and is left out). */
  backlog: number;
  /** Seconds until the backlog is done at the last hour's rate: 0 when empty, null when nothing was described in the hour. */
  backlogSeconds: number | null;
  backlogDoneAt: Date | null;
}

const HOUR_MS = 3_600_000;
const JOB_STATUSES: JobStatus[] = ["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"];

/** Everything an operator asks first, in a handful of cheap queries. */
export async function getStatus(
  db: Db,
  options: { staleAfterS: number; now?: Date; schedule?: { cron: string; timezone: string } },
): Promise<Status> {
  // The database's clock: heartbeats from other hosts were written with it (store/db-clock.ts).
  const now = options.now ?? (await dbTime(db));
  const hourAgo = new Date(now.getTime() - HOUR_MS);
  const [lastSync, lastSuccessfulSync, jobGroups, beats, recent] = await Promise.all([
    db.syncRun.findFirst({ orderBy: [{ startedAt: "desc" }, { id: "desc" }] }),
    db.syncRun.findFirst({ where: { status: { in: FINISHED_SYNC_STATUSES } }, orderBy: [{ startedAt: "desc" }, { id: "desc" }] }),
    db.job.groupBy({ by: ["status", "kind"], _count: { _all: true } }),
    db.heartbeat.findMany({ orderBy: [{ role: "asc" }, { id: "asc" }] }),
    db.description.findMany({
      where: { source: "MODEL", createdAt: { gt: hourAgo, lte: now } },
      select: { timings: true },
    }),
  ]);
  const jobs = Object.fromEntries(JOB_STATUSES.map((s) => [s.toLowerCase(), 0])) as JobCounts;
  let backlog = 0;
  for (const g of jobGroups) {
    jobs[g.status.toLowerCase() as keyof JobCounts] += g._count._all;
    if (g.kind === DESCRIBE && (g.status === "QUEUED" || g.status === "RUNNING")) backlog += g._count._all;
  }

  const seconds = recent.map((d) => totalSeconds(d.timings)).filter((s): s is number => s != null);
  const perSecond = recent.length / (HOUR_MS / 1000);
  const backlogSeconds = backlog === 0 ? 0 : perSecond > 0 ? Math.round(backlog / perSecond) : null;

  return {
    now,
    lastSync: lastSync && summarizeSync(lastSync, now),
    lastSuccessfulSync: lastSuccessfulSync && summarizeSync(lastSuccessfulSync, now),
    nextSyncAt: options.schedule ? nextCronMatch(options.schedule.cron, options.schedule.timezone, now) : null,
    jobs,
    heartbeats: beats.map((b) => heartbeatStatus(b, now, options.staleAfterS)),
    descriptionsLastHour: recent.length,
    averageDescriptionSeconds: seconds.length ? seconds.reduce((a, b) => a + b, 0) / seconds.length : null,
    backlog,
    backlogSeconds,
    backlogDoneAt: backlogSeconds == null ? null : new Date(now.getTime() + backlogSeconds * 1000),
  };
}

/** A heartbeat row with its age at `now`; alive when it beat within `staleAfterS` seconds. */
export function heartbeatStatus(b: Heartbeat, now: Date, staleAfterS: number): HeartbeatStatus {
  const ageSeconds = Math.max(0, (now.getTime() - b.beatAt.getTime()) / 1000);
  return {
    id: b.id,
    role: b.role,
    pid: b.pid,
    hostname: b.hostname,
    startedAt: b.startedAt,
    beatAt: b.beatAt,
    ageSeconds,
    alive: ageSeconds <= staleAfterS,
    modelStatus: b.modelStatus,
    modelError: b.modelError,
    modelId: b.modelId,
    modelRevision: b.modelRevision,
    dtypes: parseMap(b.dtypes),
    device: b.device,
    embedModelId: b.embedModelId,
  };
}

/** Description.timings.totalMs in seconds, or null. */
export function totalSeconds(timings: string | null): number | null {
  if (!timings) return null;
  try {
    const ms = (JSON.parse(timings) as { totalMs?: unknown }).totalMs;
    return typeof ms === "number" && Number.isFinite(ms) ? ms / 1000 : null;
  } catch {
    return null;
  }
}

function parseMap(text: string | null): Record<string, string> | null {
  if (!text) return null;
  try {
    return JSON.parse(text) as Record<string, string>;
  } catch {
    return null;
  }
}

export interface HeartbeatCheck {
  ok: boolean;
  /** One line per problem: which process is stale, or that a required role has none. */
  problems: string[];
}

/** The roles that write heartbeats: the describe worker of `artdesc worker`, `daemon` and `start`. */
export const HEARTBEAT_ROLES = ["worker", "daemon", "start"] as const;

/**
 * Heartbeats of processes that are gone and were restarted: a process of the same role on the
 * same host started after the row's last beat (a killed process leaves its row, kept a week).
 */
export function supersededHeartbeats(beats: readonly Pick<HeartbeatStatus, "id" | "role" | "hostname" | "startedAt" | "beatAt">[]): Set<string> {
  return new Set(
    beats
      .filter((old) => beats.some((b) => b !== old && b.role === old.role && b.hostname === old.hostname && b.startedAt.getTime() >= old.beatAt.getTime()))
      .map((b) => b.id),
  );
}

/**
 * The liveness check behind `artdesc status --check`: fails when a recorded heartbeat (of `role`,
 * if given; on `hostname`, if given: a container's own check) is older than HEARTBEAT_STALE_S, or
 * when no process of the role beats. A process that stops cleanly removes its heartbeat row, so a
 * stale row is one that died; it no longer counts once a process of the same role started after it
 * on the same host (a supervisor restarted it), or its row would fail every check for the week it
 * is kept.
 */
export function checkHeartbeats(status: Status, role?: string, hostname?: string): HeartbeatCheck {
  const beats = status.heartbeats.filter((b) => (role == null || b.role === role) && (hostname == null || b.hostname === hostname));
  const replaced = (dead: HeartbeatStatus) =>
    beats.some((b) => b !== dead && b.alive && b.role === dead.role && b.hostname === dead.hostname && b.startedAt.getTime() >= dead.beatAt.getTime());
  const problems = beats
    .filter((b) => !b.alive && !replaced(b))
    .map((b) => `${b.role} ${b.id} (pid ${b.pid} on ${b.hostname}) last beat ${Math.round(b.ageSeconds)} s ago`);
  // No heartbeat at all is no proof of health: nothing that beats has ever run against this database.
  if (beats.length === 0) problems.push(`no ${role != null ? `${role} ` : ""}heartbeat recorded${hostname != null ? ` on ${hostname}` : ""}`);
  return { ok: problems.length === 0, problems };
}
