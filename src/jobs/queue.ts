import type { Config } from "../config.js";
import { type Db, kindOf, writeTransaction } from "../db.js";
import { dbTime } from "../store/db-clock.js";
import { POSTGRESQL_DIALECT } from "../store/sql.js";
import { type ArtworkFilter, artworkWhere } from "../store/artwork-filter.js";
import type { Job, Prisma } from "../generated/prisma/client.js";
import type { JobStatus } from "../generated/prisma/enums.js";
import {
  checkRequested,
  decodeJobParams,
  encodeJobParams,
  type GenerationParams,
  paramsFromConfig,
  type RequestedParams,
  resolveParams as resolveOver,
  StoredParamsError,
} from "../generation/params.js";
import { acquireLease, deadHolders, leaseHolderVerdict, processColumns, releaseLease, releaseLeaseQuery, renewLease } from "./lease.js";
import { thisProcess } from "./process-identity.js";
import { checkCurrent } from "./conflict.js";
import type { Logger } from "../log.js";
import { flagFailedFallbacks, flagMissedFallbacks } from "../review/failed-fallback.js";
import { keepsCurrent } from "../review/verdict.js";

/**
 * The describe queue, in the Job table. Every state change is one conditional statement
 * (`updateMany` with the expected status and holder in its WHERE), so two processes can never both
 * move the same job, and the same logic holds on PostgreSQL.
 */

export const DESCRIBE = "describe";
/** Refreshes missing and stale description embeddings (src/embed/jobs.ts); the describe worker never claims it. */
export const EMBED = "embed";

/** Higher runs first: a person's request before a bulk request before the nightly backlog; embeddings last. */
export const PRIORITY = { request: 100, bulk: 50, nightly: 0, embed: -10 } as const;

/** First retry after 30 s, then 60 s, 120 s, ... capped at an hour. */
export const BACKOFF_BASE_MS = 30_000;
export const BACKOFF_MAX_MS = 3_600_000;

export function backoffMs(attempts: number, baseMs = BACKOFF_BASE_MS): number {
  return Math.min(BACKOFF_MAX_MS, baseMs * 2 ** Math.max(0, attempts - 1));
}

export type { RequestedParams } from "../generation/params.js";
/** The queue's refusal of a parameter (the API turns it into ParameterOutOfRangeError). */
export { earlyStoppingText, ParamOutOfRangeError } from "../generation/params.js";

export class ArtworkWithoutImageError extends Error {
  override name = "ArtworkWithoutImageError";
  constructor(readonly qid: string) {
    super(`Artwork ${qid} has no downloaded main image to describe`);
  }
}

export class JobNotCancellableError extends Error {
  override name = "JobNotCancellableError";
  constructor(
    readonly jobId: number,
    readonly status: JobStatus,
  ) {
    super(`Job ${jobId} is ${status} and cannot be cancelled`);
  }
}

/**
 * Checks requested parameters against generation/params.ts and drops unset ones (null/undefined).
 * Throws ParamOutOfRangeError naming the first bad field; minNewTokens is checked against the
 * maxNewTokens that will apply.
 */
export function validateParams(input: unknown, config: Config): RequestedParams {
  return checkRequested(input, paramsFromConfig(config));
}

/** The parameters a job runs with: the requested ones over the configured defaults. */
export function resolveParams(requested: RequestedParams, config: Config): GenerationParams {
  return resolveOver(requested, paramsFromConfig(config));
}

/** A job's stored parameters (Job.params); throws StoredParamsError for a row this version cannot read. */
export function parseJobParams(json: string): RequestedParams {
  return decodeJobParams(json);
}

export interface EnqueueRequest {
  artworkId: number;
  imageId: number | null;
  params?: RequestedParams;
  priority?: number;
  force?: boolean;
  reason?: string | null;
  requestedBy?: string | null;
  /**
   * The current description the caller saw (a Description id, or "none" when the work had none):
   * when another text became current meanwhile, DescriptionConflictError and nothing is queued. With
   * force this is the text the caller means to replace, so a person's text saved since is not
   * replaced unseen. Null or absent: no check.
   */
  replaces?: number | "none" | null;
}

/**
 * Queues a describe job, or returns the identical job that is still queued (raising its priority if
 * this request is more urgent). `created` says which.
 */
export async function enqueueDescribe(db: Db, config: Config, req: EnqueueRequest): Promise<{ job: Job; created: boolean }> {
  // Find, then queue, in one write transaction: two processes asking at once take turns (on
  // PostgreSQL a check after the insert would not do: ids are given at insert, commits land in any order).
  const now = await dbTime(db);
  return writeTransaction(db, (tx) => enqueueDescribeIn(tx, config, req, now));
}

/**
 * enqueueDescribe inside the caller's write transaction (writeTransaction), so that queueing joins
 * what else the caller writes. `reuseRunning`: an identical job already running is returned too
 * (a second rejection of the same text must not start the same attempt twice). `now`: the
 * database's time (dbTime, read before the transaction), when the job may run: claims compare it
 * with that clock, and Prisma's default would take this process's.
 */
export async function enqueueDescribeIn(
  tx: Prisma.TransactionClient,
  config: Config,
  req: EnqueueRequest & { reuseRunning?: boolean },
  now: Date,
): Promise<{ job: Job; created: boolean }> {
  const params = encodeJobParams(req.params ?? {});
  const force = req.force ?? false;
  const priority = req.priority ?? PRIORITY.request;
  const dedupeKey = `${DESCRIBE}:${req.artworkId}:${req.imageId ?? "-"}:${force ? "force" : "keep"}:${params}`;
  const statuses: JobStatus[] = req.reuseRunning ? ["QUEUED", "RUNNING"] : ["QUEUED"];
  const current = force || req.replaces != null ? await tx.artwork.findUnique({ where: { id: req.artworkId }, select: { currentDescriptionId: true } }) : null;
  if (current && req.replaces != null) checkCurrent(req.artworkId, current.currentDescriptionId, req.replaces, "regenerate");
  // A forced request may replace the text the work shows as it is asked for, and no later one.
  const forceOverId = force ? (current?.currentDescriptionId ?? null) : null;
  const existing = await tx.job.findFirst({ where: { dedupeKey, status: { in: statuses } }, orderBy: { id: "asc" } });
  if (existing) {
    const raise = existing.status === "QUEUED" && existing.priority < priority;
    // The same forced request again, over a newer text: the queued job now reaches that one.
    const reach = force && existing.status === "QUEUED" && existing.forceOverId !== forceOverId;
    if (!raise && !reach) return { job: existing, created: false };
    await tx.job.updateMany({ where: { id: existing.id, status: "QUEUED" }, data: { ...(raise ? { priority } : {}), ...(reach ? { forceOverId } : {}) } });
    return { job: await tx.job.findUniqueOrThrow({ where: { id: existing.id } }), created: false };
  }
  const mine = await tx.job.create({
    data: {
      kind: DESCRIBE,
      artworkId: req.artworkId,
      imageId: req.imageId,
      params,
      dedupeKey,
      force,
      forceOverId,
      priority,
      reason: req.reason ?? null,
      requestedBy: req.requestedBy ?? null,
      maxAttempts: config.JOB_MAX_ATTEMPTS,
      progressTotal: resolveParams(req.params ?? {}, config).maxNewTokens,
      runAfter: now,
    },
  });
  return { job: mine, created: true };
}

/** The main image a description would be made from: downloaded and not missing on Commons. */
export const describableImage = { isMain: true, missing: false, localPath: { not: null } } satisfies Prisma.ImageWhereInput;

export interface QueueRunSummary {
  /** Jobs created. */
  queued: number;
  /** Works that already had an identical job queued or running. */
  alreadyQueued: number;
  /** Works without a downloaded main image. */
  skippedNoImage: number;
  /** Works whose current description is a person's text or an approved one (kept; only a forced regenerate replaces it). */
  skippedHuman: number;
  /** Works already described from their current image. */
  upToDate: number;
}

/**
 * The nightly step after each sync: every active work whose main image is new or changed, and whose
 * current description is missing or was made from another image (or an older copy of it), gets a
 * describe job at nightly priority. A person's text is never replaced here.
 */
export async function queueAfterSync(db: Db, config: Config): Promise<QueueRunSummary> {
  return queueDescriptions(db, config, { state: ["ACTIVE"] }, { priority: PRIORITY.nightly, reason: "nightly", onlyMissing: false });
}

/** describeMissing: every active work with an image and no description at all. */
export async function queueMissing(db: Db, config: Config, filter: ArtworkFilter, requestedBy: string | null): Promise<QueueRunSummary> {
  return queueDescriptions(db, config, { ...filter, state: ["ACTIVE"] }, { priority: PRIORITY.bulk, reason: "describeMissing", onlyMissing: true, requestedBy });
}

/** What a work's row holds for the nightly decision (nightlyChoice). */
const NIGHTLY_SELECT = {
  id: true,
  images: { where: describableImage, take: 1, select: { id: true, downloadedAt: true, localHash: true } },
  currentDescription: { select: { source: true, imageId: true, imageHash: true, createdAt: true, reviewState: true } },
  // An experiment's jobs never make the current text: they do not stand in for a nightly one.
  jobs: { where: { kind: DESCRIBE, status: { in: ["QUEUED", "RUNNING"] as JobStatus[] }, experimentId: null }, select: { status: true, imageId: true, startedAt: true } },
} satisfies Prisma.ArtworkSelect;
type NightlyRow = Prisma.ArtworkGetPayload<{ select: typeof NIGHTLY_SELECT }>;

/**
 * Whether a description (or a job's output) was made from the image's current file: the same Image
 * row, and the hash of the bytes the engine read against the local copy's. A re-upload keeps the
 * Image row and changes its file, and a job that was running meanwhile writes its text (from the
 * old file) after the new file came, so times cannot tell; they are only the fallback for rows
 * without a hash (written before there was one), and without times either it counts as the same.
 * The nightly run and the write of a job's result (descriptions.ts) share this one rule.
 */
export function madeFromCurrentFile(
  d: { imageId: number | null; imageHash: string | null; createdAt?: Date },
  image: { id: number; localHash: string | null; downloadedAt?: Date | null },
): boolean {
  if (d.imageId !== image.id) return false;
  if (d.imageHash !== null && image.localHash !== null) return d.imageHash === image.localHash;
  return !(image.downloadedAt && d.createdAt && image.downloadedAt > d.createdAt);
}

/** Whether a work needs a describe job (and which QueueRunSummary count it adds to otherwise). Pure. */
function nightlyChoice(w: NightlyRow, onlyMissing: boolean): Exclude<keyof QueueRunSummary, "queued"> | "queue" {
  const image = w.images[0];
  if (!image) return "skippedNoImage";
  const current = w.currentDescription;
  // A person's text, or a model text a person approved (review/verdict.ts).
  if (current && keepsCurrent(current)) return "skippedHuman";
  if (current && (onlyMissing || madeFromCurrentFile(current, image))) return "upToDate";
  // A queued job of the work will do, whichever image was main when it was queued: a worker
  // describes the main image as it is when the job starts. A running one will do only if it read
  // the current file: it started after that file was stored (a job reads its image when it starts;
  // the job's start is the database's time, the download the syncing process's, so a clock between
  // them that is off errs one way or the other by as much: a second job, or the next night's).
  const readsCurrentFile = (j: NightlyRow["jobs"][number]) =>
    j.imageId === image.id && j.startedAt !== null && (image.downloadedAt === null || j.startedAt > image.downloadedAt);
  if (w.jobs.some((j) => j.status === "QUEUED" || readsCurrentFile(j))) return "alreadyQueued";
  return "queue";
}

async function queueDescriptions(
  db: Db,
  config: Config,
  filter: ArtworkFilter,
  o: { priority: number; reason: string; onlyMissing: boolean; requestedBy?: string | null },
): Promise<QueueRunSummary> {
  const summary: QueueRunSummary = { queued: 0, alreadyQueued: 0, skippedNoImage: 0, skippedHuman: 0, upToDate: 0 };
  // A page at a time by id, so memory stays flat however many works the filter matches.
  for (let after = 0; ; ) {
    const works = await db.artwork.findMany({
      where: { AND: [artworkWhere(filter), { id: { gt: after } }] },
      select: NIGHTLY_SELECT,
      orderBy: { id: "asc" },
      take: QUEUE_PAGE,
    });
    if (works.length === 0) break;
    after = works[works.length - 1]!.id;
    for (const listed of works) {
      let choice = nightlyChoice(listed, o.onlyMissing);
      if (choice === "queue") {
        // Decided again inside the write transaction that queues: a request may have been queued,
        // run or finished for this work since the list was read (the loop takes a while).
        const runAfter = await dbTime(db);
        choice = await writeTransaction(db, async (tx) => {
          const w = await tx.artwork.findUnique({ where: { id: listed.id }, select: NIGHTLY_SELECT });
          if (!w) return "skippedNoImage" as const;
          const again = nightlyChoice(w, o.onlyMissing);
          if (again !== "queue") return again;
          const { created } = await enqueueDescribeIn(tx, config, {
            artworkId: w.id,
            imageId: w.images[0]!.id,
            priority: o.priority,
            reason: o.reason,
            requestedBy: o.requestedBy ?? null,
          }, runAfter);
          return created ? ("queue" as const) : ("alreadyQueued" as const);
        });
      }
      if (choice === "queue") summary.queued++;
      else summary[choice]++;
    }
  }
  return summary;
}

/** How many works queueDescriptions reads at a time. */
const QUEUE_PAGE = 500;

export function leaseName(jobId: number): string {
  return `job:${jobId}`;
}

/** Why a stored Job.params cannot be read by this version, or null when it can. */
function storedParamsProblem(json: string): string | null {
  try {
    decodeJobParams(json);
    return null;
  } catch (err) {
    if (err instanceof StoredParamsError) return err.message;
    throw err;
  }
}

export interface ClaimOptions {
  /** How many jobs to take at most; they all share the first job's parameters (one batch). */
  limit: number;
  /** Lease time to live: a claim not renewed for this long is free for another worker. */
  ttlMs: number;
  now?: Date;
  /** Only this experiment's jobs (`artdesc experiment --run` describes nothing else). */
  experimentId?: number;
  /** Where a fault after some jobs were taken is logged (the claim then returns those jobs). */
  log?: Pick<Logger, "warn">;
}

/**
 * Claims up to `limit` ready QUEUED jobs with identical parameters, best first (priority, then
 * runAfter, then id). On SQLite each claim takes the job's lease, then moves it QUEUED -> RUNNING
 * with a conditional update; a job another worker got first is skipped. On PostgreSQL one short
 * transaction locks the candidates with `FOR UPDATE SKIP LOCKED` (see claimOnPostgres), so workers
 * on many machines claim side by side instead of taking turns.
 */
export async function claimJobs(db: Db, holder: string, o: ClaimOptions): Promise<Job[]> {
  if (kindOf(db) === "postgresql") return claimOnPostgres(db, holder, o);
  const now = o.now ?? (await dbTime(db));
  const candidates = await db.job.findMany({
    where: { kind: DESCRIBE, status: "QUEUED", runAfter: { lte: now }, ...(o.experimentId !== undefined ? { experimentId: o.experimentId } : {}) },
    orderBy: [{ priority: "desc" }, { runAfter: "asc" }, { id: "asc" }],
    take: claimWindow(o.limit),
  });
  const claimed: Job[] = [];
  try {
    await claimEach(db, holder, o, now, candidates, claimed);
  } catch (err) {
    // The jobs already ours are run (their heartbeats keep them); left out, each would wait for
    // HEARTBEAT_STALE_S and lose an attempt. A lasting fault shows again at the next claim.
    if (claimed.length === 0) throw err;
    o.log?.warn({ err, claimed: claimed.map((j) => j.id) }, "a claim failed part-way: the jobs it took are run");
  }
  return claimed;
}

/** claimJobs' loop on SQLite: takes candidates one by one into `claimed`. */
async function claimEach(db: Db, holder: string, o: ClaimOptions, now: Date, candidates: Job[], claimed: Job[]): Promise<void> {
  for (const c of candidates) {
    if (claimed.length >= o.limit) break;
    if (claimed.length > 0 && c.params !== claimed[0]!.params) continue;
    const unreadable = storedParamsProblem(c.params);
    if (unreadable) {
      // No attempt could ever run it: it fails now, with the reason, instead of after every retry.
      const failed = await db.job.updateMany({ where: { id: c.id, status: "QUEUED" }, data: { status: "FAILED", error: unreadable, finishedAt: now } });
      if (failed.count === 1) await flagFailedFallbacks(db, [c.id]);
      continue;
    }
    if (!(await acquireLease(db, leaseName(c.id), holder, o.ttlMs, now))) continue;
    const moved = await db.job.updateMany({
      where: { id: c.id, status: "QUEUED" },
      data: { status: "RUNNING", holder, attempts: { increment: 1 }, startedAt: now, heartbeatAt: now, progress: 0, error: null },
    });
    if (moved.count === 1) claimed.push(await db.job.findUniqueOrThrow({ where: { id: c.id } }));
    else await releaseLease(db, leaseName(c.id), holder);
  }
}

/** How many ready jobs, in queue order, a claim looks at for batch mates of the first. */
function claimWindow(limit: number): number {
  return Math.max(8, limit * 4);
}

/**
 * PostgreSQL's claim, one transaction outside writeTransaction's advisory lock, that locks only the
 * jobs it takes (`FOR UPDATE SKIP LOCKED`, which also re-checks the WHERE against the latest
 * committed row): two claims never wait for each other, and never see nothing while the other
 * holds jobs it will not take. The choice is SQLite's: the best ready job no other claim has locked
 * (one whose parameters this version cannot read fails on the way, one whose lease another live
 * holder has is passed over), then the best ready batch mates with its parameters that no other
 * claim has locked. Unlike SQLite's, the mates are not limited to the first claimWindow ready jobs:
 * those are most likely the heads other claims are taking at the same moment, and a batch costs
 * about what one job costs, so a mate from further down delays no better job. The chosen jobs move
 * to RUNNING with their leases taken.
 */
const pgParam = POSTGRESQL_DIALECT.param;

async function claimOnPostgres(db: Db, holder: string, o: ClaimOptions): Promise<Job[]> {
  const now = o.now ?? (await dbTime(db));
  const window = claimWindow(o.limit);
  const unreadableIds: number[] = [];
  const ids = await db.$transaction(async (tx) => {
    const ready = (params: unknown[]) =>
      `kind = ${pgParam(params, DESCRIBE)} AND status = 'QUEUED' AND "runAfter" <= ${pgParam(params, now)}::timestamp` +
      (o.experimentId !== undefined ? ` AND "experimentId" = ${pgParam(params, o.experimentId)}` : "");
    const order = `ORDER BY priority DESC, "runAfter" ASC, id ASC`;
    const passed: number[] = [];
    let head: { id: number; params: string } | undefined;
    while (!head && passed.length < window) {
      const params: unknown[] = [];
      const where = ready(params);
      const [next] = await tx.$queryRawUnsafe<{ id: number; params: string }[]>(
        `SELECT id, params FROM "Job" WHERE ${where} AND id <> ALL(${pgParam(params, passed)}::int[]) ${order} LIMIT 1 FOR UPDATE SKIP LOCKED`,
        ...params,
      );
      if (!next) return [];
      const unreadable = storedParamsProblem(next.params);
      if (unreadable) {
        // No attempt could ever run it: it fails now, with the reason, instead of after every retry.
        await tx.job.updateMany({ where: { id: next.id, status: "QUEUED" }, data: { status: "FAILED", error: unreadable, finishedAt: now } });
        unreadableIds.push(next.id);
      } else if (!(await leaseHeldElsewhere(tx, [next.id], holder, now)).size) {
        head = next;
        break;
      }
      passed.push(next.id);
    }
    if (!head) return [];
    let mates: number[] = [];
    if (o.limit > 1) {
      const params: unknown[] = [];
      const where = `${ready(params)} AND params = ${pgParam(params, head.params)} AND id <> ${pgParam(params, head.id)}`;
      const rows = await tx.$queryRawUnsafe<{ id: number }[]>(`SELECT id FROM "Job" WHERE ${where} ${order} LIMIT ${o.limit - 1} FOR UPDATE SKIP LOCKED`, ...params);
      const held = await leaseHeldElsewhere(tx, rows.map((r) => r.id), holder, now);
      mates = rows.map((r) => r.id).filter((id) => !held.has(id));
    }
    const chosen = [head.id, ...mates];
    await takeJobLeases(tx, chosen, holder, now, o.ttlMs);
    await tx.job.updateMany({
      where: { id: { in: chosen }, status: "QUEUED" },
      data: { status: "RUNNING", holder, attempts: { increment: 1 }, startedAt: now, heartbeatAt: now, progress: 0, error: null },
    });
    return chosen;
  });
  // The claim has committed: a failed mark must not strand the jobs it took (the nightly run marks it).
  await flagFailedFallbacks(db, unreadableIds).catch(() => 0);
  if (ids.length === 0) return [];
  const rows = await db.job.findMany({ where: { id: { in: ids } } });
  const byId = new Map(rows.map((r) => [r.id, r]));
  return ids.map((id) => byId.get(id)!).filter((j) => j.status === "RUNNING" && j.holder === holder);
}

/**
 * Which of these jobs' leases another live holder has, as acquireLease judges them (expired or
 * held by a process that died on this host: free). A job's lease is only ever taken by the claim
 * that holds the job's row lock, so none is taken while the claim's transaction runs.
 */
async function leaseHeldElsewhere(tx: Prisma.TransactionClient, jobIds: number[], holder: string, now: Date): Promise<Set<number>> {
  if (jobIds.length === 0) return new Set();
  const leases = await tx.lease.findMany({ where: { name: { in: jobIds.map(leaseName) } } });
  const held = leases.filter((l) => l.expiresAt >= now && l.holder !== holder && leaseHolderVerdict(l) !== "dead");
  return new Set(held.map((l) => Number(l.name.slice("job:".length))));
}

/** Takes the leases of jobs this claim has locked (a row left by an earlier holder is written over). */
async function takeJobLeases(tx: Prisma.TransactionClient, jobIds: number[], holder: string, now: Date, ttlMs: number): Promise<void> {
  const owner = processColumns(thisProcess());
  await tx.$executeRawUnsafe(
    `INSERT INTO "Lease" (name, holder, "expiresAt", "acquiredAt", hostname, pid, "bootId", "pidNamespace", "startTicks")
     SELECT 'job:' || id, $2::text, $3::timestamp, $4::timestamp, $5::text, $6::int, $7::text, $8::text, $9::bigint FROM unnest($1::int[]) AS id
     ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, "expiresAt" = EXCLUDED."expiresAt", "acquiredAt" = EXCLUDED."acquiredAt",
       hostname = EXCLUDED.hostname, pid = EXCLUDED.pid, "bootId" = EXCLUDED."bootId", "pidNamespace" = EXCLUDED."pidNamespace", "startTicks" = EXCLUDED."startTicks"`,
    jobIds,
    holder,
    new Date(now.getTime() + ttlMs),
    now,
    owner.hostname,
    owner.pid,
    owner.bootId,
    owner.pidNamespace,
    owner.startTicks,
  );
}

/** Records progress (and liveness) of a running job we hold. False when the job is no longer ours. */
export async function reportProgress(db: Db, jobId: number, holder: string, tokens: number, at?: Date): Promise<boolean> {
  const now = at ?? (await dbTime(db));
  const r = await db.job.updateMany({
    where: { id: jobId, holder, status: "RUNNING" },
    data: { progress: tokens, heartbeatAt: now },
  });
  return r.count === 1;
}

/** Liveness of several running jobs at once. Returns the ids still ours. */
export async function beatJobs(db: Db, jobIds: number[], holder: string, at?: Date): Promise<number> {
  if (jobIds.length === 0) return 0;
  const now = at ?? (await dbTime(db));
  const r = await db.job.updateMany({ where: { id: { in: jobIds }, holder, status: "RUNNING" }, data: { heartbeatAt: now } });
  return r.count;
}

/** One beat of claims we hold: the jobs' heartbeats and their leases' expiry (`ttlMs` from now). */
export async function beatClaims(db: Db, jobIds: number[], holder: string, ttlMs: number): Promise<void> {
  await beatJobs(db, jobIds, holder);
  for (const id of jobIds) await renewLease(db, leaseName(id), holder, ttlMs);
}

/** Which of these jobs are still running and held by `holder` (a cancel or a takeover removes a job). */
export async function heldJobs(db: Db, jobIds: number[], holder: string): Promise<Set<number>> {
  if (jobIds.length === 0) return new Set();
  const rows = await db.job.findMany({ where: { id: { in: jobIds }, holder, status: "RUNNING" }, select: { id: true } });
  return new Set(rows.map((r) => r.id));
}

/**
 * A failed attempt: back to the queue after an exponential backoff, or FAILED with the error once
 * the attempts are spent (or at once when `permanent`). A fallback ladder step that fails for good
 * marks its work as needing a person (review/failed-fallback.ts).
 */
export async function failJob(
  db: Db,
  job: Pick<Job, "id" | "attempts" | "maxAttempts">,
  holder: string,
  error: string,
  o: { permanent?: boolean; now?: Date; backoffBaseMs?: number } = {},
): Promise<"retry" | "failed" | "lost"> {
  const now = o.now ?? (await dbTime(db));
  const final = o.permanent || job.attempts >= job.maxAttempts;
  const ours = await endClaim(
    db,
    job.id,
    holder,
    final
      ? { status: "FAILED", error, holder: null, finishedAt: now }
      : { status: "QUEUED", error, holder: null, runAfter: new Date(now.getTime() + backoffMs(job.attempts, o.backoffBaseMs)) },
  );
  if (!ours) return "lost";
  if (final) await flagFailedFallbacks(db, [job.id]);
  return final ? "failed" : "retry";
}

/** Hands a job back untouched (shutdown): the attempt does not count. */
export async function requeueJob(db: Db, jobId: number, holder: string, note = "interrupted by shutdown"): Promise<boolean> {
  return endClaim(db, jobId, holder, { status: "QUEUED", holder: null, progress: 0, attempts: { decrement: 1 }, error: note, runAfter: await dbTime(db) });
}

/**
 * Ends `holder`'s claim on a RUNNING job with `data`, and drops its lease, in one commit: nobody
 * sees the job given back while the lease still stands. Whether the job was still ours.
 */
async function endClaim(db: Db, jobId: number, holder: string, data: Prisma.JobUpdateManyMutationInput): Promise<boolean> {
  const [r] = await db.$transaction([db.job.updateMany({ where: { id: jobId, holder, status: "RUNNING" }, data }), releaseLeaseQuery(db, leaseName(jobId), holder)]);
  return r.count === 1;
}

/**
 * Jobs left RUNNING by a worker whose heartbeat is older than `staleMs` go back to the queue (or
 * fail, if that was their last attempt). Returns how many were moved.
 */
export async function requeueStale(db: Db, staleMs: number, at?: Date): Promise<number> {
  // The database's clock, as the heartbeats were written with it (store/db-clock.ts).
  const now = at ?? (await dbTime(db));
  const cutoff = new Date(now.getTime() - staleMs);
  // A claim whose worker died on this host is given back at once, without waiting for staleness.
  const dead = await deadHolders(db, "job:");
  const deadIds = [...dead.keys()].map((name) => Number(name.slice("job:".length)));
  const stale = await db.job.findMany({
    where: { status: "RUNNING", OR: [{ heartbeatAt: { lt: cutoff } }, { heartbeatAt: null }, { id: { in: deadIds } }] },
    select: { id: true, attempts: true, maxAttempts: true, holder: true },
  });
  let moved = 0;
  const failed: number[] = [];
  for (const j of stale) {
    const died = j.holder !== null && dead.get(leaseName(j.id)) === j.holder;
    const error = died ? `worker ${j.holder} is no longer running` : `worker ${j.holder ?? "?"} stopped sending heartbeats`;
    const last = j.attempts >= j.maxAttempts;
    // The same conditions again: a worker that beat in the meantime keeps its job.
    const r = await db.job.updateMany({
      where: { id: j.id, status: "RUNNING", holder: j.holder, ...(died ? {} : { OR: [{ heartbeatAt: { lt: cutoff } }, { heartbeatAt: null }] }) },
      data: last
        ? { status: "FAILED", holder: null, error, finishedAt: now }
        : { status: "QUEUED", holder: null, error, progress: 0, runAfter: now },
    });
    if (r.count === 1) {
      moved++;
      if (last) failed.push(j.id);
      // The dead holder's claim goes with it (its lease is renewed with the same heartbeat).
      if (j.holder) await releaseLease(db, leaseName(j.id), j.holder);
    }
  }
  await flagFailedFallbacks(db, failed);
  return moved;
}

/**
 * Cancels a queued or running job. A running one is dropped from its batch at the worker's next
 * progress write (every 500 ms): its rows leave the decode, its batch mates go on, nothing is written.
 * A cancelled fallback ladder step marks its work as needing a person (review/failed-fallback.ts).
 */
export async function cancelJob(db: Db, jobId: number, at?: Date): Promise<Job | null> {
  const job = await db.job.findUnique({ where: { id: jobId } });
  if (!job) return null;
  const now = at ?? (await dbTime(db));
  const r = await db.job.updateMany({
    where: { id: jobId, status: { in: ["QUEUED", "RUNNING"] } },
    data: { status: "CANCELLED", finishedAt: now, holder: null },
  });
  if (r.count !== 1) {
    const fresh = await db.job.findUniqueOrThrow({ where: { id: jobId } });
    throw new JobNotCancellableError(jobId, fresh.status);
  }
  // A cancelled fallback step leaves its rejected text current with nothing left to try.
  await flagFailedFallbacks(db, [jobId]);
  return db.job.findUniqueOrThrow({ where: { id: jobId } });
}

/** The sync schedule's afterSync hook: queue the nightly descriptions, log what was skipped. */
export function describeAfterSync(rt: { db: Db; config: Config; log: { info(o: object, msg: string): void } }): (runId: number) => Promise<number> {
  return async (runId) => {
    const summary = await queueAfterSync(rt.db, rt.config);
    rt.log.info({ runId, ...summary }, "nightly describe jobs queued");
    const marked = await flagMissedFallbacks(rt.db);
    if (marked) rt.log.info({ runId, marked }, "works whose fallback step had ended without its mark now need a person");
    return summary.queued;
  };
}
