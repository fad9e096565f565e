import type { Config } from "../config.js";
import { type Db, writeTransaction } from "../db.js";
import { countWords } from "../describe/postprocess.js";
import { encodeJobParams, PARAM_NAMES, paramsFromConfig, resolveParams } from "../generation/params.js";
import type { Experiment } from "../generated/prisma/client.js";
import { DESCRIBE, describableImage, PRIORITY } from "../jobs/queue.js";
import { storedQuality } from "../quality/store.js";
import { dbTime } from "../store/db-clock.js";
import { artworkWhereResolved } from "../store/artwork-filter.js";
import { type Arm, decodeArms, encodeArms } from "./arms.js";
import { buildReport, type ExperimentReport, type JobCounts, NO_JOBS, type ReportDescription, depictsJudgement } from "./report.js";
import { drawSample, MAX_SAMPLE } from "./sample.js";

/**
 * The I/O edge of experiments: creating one (its sample and its jobs, in one transaction),
 * reading the figures its report is made of, cancelling it. Its jobs are ordinary describe jobs
 * tagged with the experiment (Job.experimentId, Job.experimentArm): any worker runs them, a
 * restarted one picks them up, and their descriptions never become current (jobs/descriptions.ts).
 */

export class ExperimentNotFoundError extends Error {
  override name = "ExperimentNotFoundError";
  constructor(readonly experimentId: number) {
    super(`No experiment with id ${experimentId}`);
  }
}

/** An experiment request that cannot be carried out (sample size, name, no work to sample). */
export class ExperimentRequestError extends Error {
  override name = "ExperimentRequestError";
  constructor(readonly problem: string) {
    super(problem);
  }
}

export const MAX_EXPERIMENT_NAME = 200;

export interface ExperimentRequest {
  name?: string | null;
  /** Works to sample, 1 to MAX_SAMPLE. */
  sampleSize: number;
  seed: number;
  /** A creator QID or label words (as `artworks(creator:)` takes them). */
  creator?: string | null;
  /** Checked arms (arms.ts). */
  arms: Arm[];
  requestedBy?: string | null;
}

/** Rows written per statement: SQLite limits the variables of one statement. */
const INSERT_CHUNK = 500;

/**
 * Draws the sample (active works with a downloaded main image, of the creator if one is given),
 * stores the experiment and queues one describe job per work per arm, at bulk priority: after a
 * person's requests, before the nightly backlog. Jobs are queued work by work, every arm in turn,
 * so a partial run has about as many texts in each arm.
 */
export async function createExperiment(db: Db, config: Config, req: ExperimentRequest, now = new Date()): Promise<{ experiment: Experiment; jobs: number }> {
  if (!Number.isInteger(req.sampleSize) || req.sampleSize < 1 || req.sampleSize > MAX_SAMPLE) {
    throw new ExperimentRequestError(`the sample size must be a whole number from 1 to ${MAX_SAMPLE} (got ${req.sampleSize})`);
  }
  if (!Number.isSafeInteger(req.seed)) throw new ExperimentRequestError(`the seed must be a whole number (got ${req.seed})`);
  const name = req.name?.trim() || null;
  if (name && (name.length > MAX_EXPERIMENT_NAME || /[\u0000-\u001f\u007f]/.test(name))) {
    throw new ExperimentRequestError(`the name must be one line of at most ${MAX_EXPERIMENT_NAME} characters`);
  }
  const creator = req.creator?.trim() || null;
  // When the jobs may run, on the clock claims compare it with (store/db-clock.ts).
  const runAfter = await dbTime(db);
  const where = await artworkWhereResolved(db, { state: ["ACTIVE"], creator });
  const candidates = await db.artwork.findMany({
    where: { ...where, images: { some: describableImage } },
    select: { id: true, qid: true, images: { where: describableImage, orderBy: { position: "asc" }, take: 1, select: { id: true } } },
  });
  if (candidates.length === 0) {
    throw new ExperimentRequestError(`no active work with a downloaded image${creator ? ` by ${JSON.stringify(creator)}` : ""} to sample`);
  }
  const sample = drawSample(candidates, req.sampleSize, req.seed);
  const defaults = paramsFromConfig(config);
  const jobs = sample.flatMap((w) =>
    req.arms.map((arm) => ({
      kind: DESCRIBE,
      artworkId: w.id,
      imageId: w.images[0]!.id,
      params: encodeJobParams(arm.params),
      // No dedupe key: an experiment's job is never merged with another (an ordinary job of the same work, another experiment's).
      dedupeKey: null,
      priority: PRIORITY.bulk,
      requestedBy: req.requestedBy ?? null,
      maxAttempts: config.JOB_MAX_ATTEMPTS,
      progressTotal: resolveParams(arm.params, defaults).maxNewTokens,
      experimentArm: arm.name,
      createdAt: now,
      runAfter,
    })),
  );
  const experiment = await writeTransaction(db, async (tx) => {
    const e = await tx.experiment.create({
      data: { name, seed: req.seed, sampleSize: req.sampleSize, creator, arms: encodeArms(req.arms), requestedBy: req.requestedBy ?? null, createdAt: now },
    });
    const works = sample.map((w, position) => ({ experimentId: e.id, artworkId: w.id, position }));
    for (let i = 0; i < works.length; i += INSERT_CHUNK) await tx.experimentWork.createMany({ data: works.slice(i, i + INSERT_CHUNK) });
    const tagged = jobs.map((j) => ({ ...j, experimentId: e.id, reason: `experiment ${e.id}, arm ${j.experimentArm}` }));
    for (let i = 0; i < tagged.length; i += INSERT_CHUNK) await tx.job.createMany({ data: tagged.slice(i, i + INSERT_CHUNK) });
    return e;
  });
  return { experiment, jobs: jobs.length };
}

export async function findExperiment(db: Db, id: number): Promise<Experiment> {
  const e = await db.experiment.findUnique({ where: { id } });
  if (!e) throw new ExperimentNotFoundError(id);
  return e;
}

/** Job counts of an experiment, by arm. */
export async function experimentJobCounts(db: Db, id: number): Promise<Record<string, JobCounts>> {
  const groups = await db.job.groupBy({ by: ["experimentArm", "status"], where: { experimentId: id }, _count: { _all: true } });
  const out: Record<string, JobCounts> = {};
  for (const g of groups) {
    const arm = g.experimentArm ?? "";
    const counts = (out[arm] ??= { ...NO_JOBS });
    counts[g.status.toLowerCase() as keyof JobCounts] += g._count._all;
  }
  return out;
}

/** Descriptions read per query when a report is made: memory stays flat however large the experiment. */
const REPORT_PAGE = 1000;

/** The figures of every description the experiment wrote (the text is reduced to its word count on the way). */
async function reportDescriptions(db: Db, id: number): Promise<ReportDescription[]> {
  const out: ReportDescription[] = [];
  let after = 0;
  for (;;) {
    const rows = await db.description.findMany({
      where: { experimentId: id, id: { gt: after } },
      orderBy: { id: "asc" },
      take: REPORT_PAGE,
      select: {
        id: true,
        experimentArm: true,
        artworkId: true,
        timings: true,
        generatedTokens: true,
        text: true,
        finishReason: true,
        qualityFlags: true,
        qualityRisk: true,
        qualityChecks: true,
        ...SETTING_COLUMNS,
      },
    });
    for (const d of rows) {
      const quality = storedQuality(d);
      out.push({
        arm: d.experimentArm ?? "",
        artworkId: d.artworkId,
        totalMs: totalMs(d.timings),
        generatedTokens: d.generatedTokens,
        words: countWords(d.text),
        finishReason: d.finishReason,
        flags: quality?.flags ?? null,
        risk: quality?.risk ?? null,
        depicts: quality ? depictsJudgement(quality.checks) : null,
        numBeams: d.numBeams,
        maxNewTokens: d.maxNewTokens,
        settings: Object.fromEntries(SETTINGS.map((name) => [name, d[name] == null ? "unrecorded" : String(d[name])])),
      });
    }
    if (rows.length < REPORT_PAGE) return out;
    after = rows.at(-1)!.id;
  }
}

/** What a report compares among an arm's texts: every generation parameter, and the model's weights. */
const SETTINGS = [...PARAM_NAMES, "modelId", "modelRevision", "dtypes"] as const;
const SETTING_COLUMNS = Object.fromEntries(SETTINGS.map((n) => [n, true])) as { [K in (typeof SETTINGS)[number]]: true };

function totalMs(timings: string | null): number | null {
  if (!timings) return null;
  try {
    const v = (JSON.parse(timings) as { totalMs?: unknown }).totalMs;
    return typeof v === "number" && Number.isFinite(v) ? v : null;
  } catch {
    return null;
  }
}

/** The report of an experiment as it stands now (partial while it runs). */
export async function experimentReport(db: Db, id: number): Promise<ExperimentReport> {
  const e = await findExperiment(db, id);
  const [sampled, jobs, descriptions] = await Promise.all([
    db.experimentWork.count({ where: { experimentId: id } }),
    experimentJobCounts(db, id),
    reportDescriptions(db, id),
  ]);
  return buildReport({
    experiment: { id: e.id, name: e.name, seed: e.seed, sampleSize: e.sampleSize, sampled, creator: e.creator, createdAt: e.createdAt, cancelledAt: e.cancelledAt },
    arms: decodeArms(e.arms),
    jobs,
    descriptions,
  });
}

/**
 * Cancels an experiment: its queued jobs are cancelled, and its running ones too (a worker drops
 * them from their batch at its next progress write). Descriptions already written stay.
 * Returns how many jobs were cancelled. An experiment with no job left to cancel (it finished) is
 * left as it is: marking it cancelled would turn a finished report into a cancelled one for good.
 */
export async function cancelExperiment(db: Db, id: number, now = new Date()): Promise<number> {
  await findExperiment(db, id);
  const r = await db.job.updateMany({
    where: { experimentId: id, status: { in: ["QUEUED", "RUNNING"] } },
    data: { status: "CANCELLED", finishedAt: now, holder: null },
  });
  if (r.count > 0) await db.experiment.updateMany({ where: { id, cancelledAt: null }, data: { cancelledAt: now } });
  return r.count;
}
