import type { Config } from "../config.js";
import { type Db, writeTransaction } from "../db.js";
import type { Review, ReviewVerdict } from "../generated/prisma/client.js";
import { describableImage, enqueueDescribeIn, PRIORITY } from "../jobs/queue.js";
import { dbTime } from "../store/db-clock.js";
import { fallbackReason } from "./ladder.js";
import { type ReviewState, type VerdictEffect, verdictEffect } from "./verdict.js";

/**
 * The description was written by an experiment (src/experiments/): it is never current, so a
 * verdict could neither settle a work nor start its fallback ladder, and is refused.
 */
export class ExperimentDescriptionError extends Error {
  override name = "ExperimentDescriptionError";
  constructor(
    readonly descriptionId: number,
    readonly experimentId: number,
  ) {
    super(`Description ${descriptionId} was written by experiment ${experimentId}: experiment texts are compared in its report, not reviewed`);
  }
}

/** No description has the id given. */
export class DescriptionNotFoundError extends Error {
  override name = "DescriptionNotFoundError";
  constructor(readonly descriptionId: number) {
    super(`No description with id ${descriptionId}`);
  }
}

/**
 * The description's review state is no longer the one the reviewer saw (`expectedState`): someone
 * else gave a verdict meanwhile. Nothing was recorded.
 */
export class ReviewConflictError extends Error {
  override name = "ReviewConflictError";
  constructor(
    readonly descriptionId: number,
    readonly expected: ReviewState,
    readonly actual: ReviewState,
    readonly reviewedBy: string | null,
  ) {
    super(
      `Description ${descriptionId} was reviewed meanwhile: it is now ${actual}${reviewedBy ? ` (by ${reviewedBy})` : ""}, not ${expected}. ` +
        "Nothing was recorded; look at it again and give your verdict once more if it still stands.",
    );
  }
}

export interface VerdictRequest {
  descriptionId: number;
  verdict: ReviewVerdict;
  /** Checked by the caller (TEXT_LIMITS.reviewNote). */
  note: string | null;
  reviewer: string;
  /** The review state the reviewer saw; when it changed meanwhile, ReviewConflictError and nothing is written. */
  expectedState?: ReviewState | null;
  /** The reviewer saw it as the work's current text; when another replaced it meanwhile, ReplacedDescriptionError and nothing is written. */
  expectCurrent?: boolean;
  now?: Date;
}

/**
 * A verdict given on the work's current text after another text replaced it (a model job that
 * finished, or a person's edit, while the reviewer read): recorded on the old text it would judge
 * what the reviewer did not see, and leave the new text unreviewed. Nothing was written.
 */
export class ReplacedDescriptionError extends Error {
  override name = "ReplacedDescriptionError";
  constructor(
    readonly descriptionId: number,
    readonly artworkId: number,
    readonly currentId: number | null,
  ) {
    super(
      `Description ${descriptionId} is no longer the work's current text: ${currentId == null ? "it has none now" : `description ${currentId} replaced it`} meanwhile. ` +
        "Nothing was recorded; read the new text and give your verdict on it.",
    );
  }
}

export interface VerdictOutcome {
  review: Review;
  effect: VerdictEffect;
}

/**
 * Records a verdict on a description and carries out what it means (verdict.ts): an approval of
 * the current text settles the work; a rejection of the current model text queues the fallback
 * ladder's next step, or marks the work as needing a person when nothing is left to try.
 *
 * One write transaction reads the facts, decides, queues the fallback job and records the verdict:
 * writers take turns there (BEGIN IMMEDIATE on SQLite, writeTransaction's lock on PostgreSQL), so
 * a verdict is judged on the state it is written over. A new text that became current meanwhile
 * makes an approval of the old one a record only; two rejections of one text queue one attempt (an
 * identical job queued or running is reused); the verdict and its job commit together.
 */
export async function reviewDescription(db: Db, config: Config, req: VerdictRequest): Promise<VerdictOutcome> {
  const now = req.now ?? new Date();
  const runAfter = await dbTime(db);
  return writeTransaction(db, async (tx) => {
    const d = await tx.description.findUnique({
      where: { id: req.descriptionId },
      select: {
        id: true,
        source: true,
        jobId: true,
        experimentId: true,
        reviewState: true,
        reviewedBy: true,
        artwork: { select: { id: true, state: true, currentDescriptionId: true, images: { where: describableImage, take: 1, select: { id: true } } } },
      },
    });
    if (!d) throw new DescriptionNotFoundError(req.descriptionId);
    if (d.experimentId != null) throw new ExperimentDescriptionError(d.id, d.experimentId);
    const state: ReviewState = d.reviewState ?? "UNREVIEWED";
    if (req.expectCurrent && d.artwork.currentDescriptionId !== d.id) throw new ReplacedDescriptionError(d.id, d.artwork.id, d.artwork.currentDescriptionId);
    if (req.expectedState != null && req.expectedState !== state) throw new ReviewConflictError(d.id, req.expectedState, state, d.reviewedBy);
    // The step that wrote it: the ladder step whose job made this description, if one did.
    const madeBy = d.jobId == null ? null : await tx.review.findFirst({ where: { fallbackJobId: d.jobId, fallbackStep: { not: null } }, select: { fallbackStep: true } });
    const image = d.artwork.images[0];
    const effect = verdictEffect({
      verdict: req.verdict,
      source: d.source,
      isCurrent: d.artwork.currentDescriptionId === d.id,
      artworkActive: d.artwork.state === "ACTIVE",
      hasImage: image !== undefined,
      madeByStep: madeBy?.fallbackStep ?? 0,
      ladder: config.REVIEW_FALLBACK_LADDER,
    });
    const job =
      effect.kind === "fallback"
        ? (
            await enqueueDescribeIn(tx, config, {
              artworkId: d.artwork.id,
              imageId: image!.id,
              params: effect.params,
              priority: PRIORITY.request,
              reason: fallbackReason(effect.step, effect.steps),
              requestedBy: req.reviewer,
              reuseRunning: true,
            }, runAfter)
          ).job
        : null;
    const review = await tx.review.create({
      data: {
        descriptionId: d.id,
        verdict: req.verdict,
        note: req.note,
        reviewer: req.reviewer,
        createdAt: now,
        fallbackStep: effect.kind === "fallback" ? effect.step : null,
        fallbackJobId: job?.id ?? null,
        exhausted: effect.kind === "needsPerson",
      },
    });
    await tx.description.update({ where: { id: d.id }, data: { reviewState: req.verdict, reviewedAt: now, reviewedBy: req.reviewer } });
    const artwork = artworkChange(effect);
    if (artwork) await tx.artwork.update({ where: { id: d.artwork.id }, data: artwork });
    return { review, effect };
  });
}

/** The artwork's review state after an effect (null: unchanged). */
function artworkChange(effect: VerdictEffect): { needsPerson: boolean; fallbackStep?: number | null } | null {
  switch (effect.kind) {
    case "record":
      return null;
    case "settle":
      return { needsPerson: false, fallbackStep: null };
    case "fallback":
      return { needsPerson: false, fallbackStep: effect.step };
    case "needsPerson":
      return { needsPerson: true };
  }
}
