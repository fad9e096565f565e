import type { Config } from "../config.js";
import { type Db, writeTransaction } from "../db.js";
import type { Review, ReviewVerdict } from "../generated/prisma/client.js";
import { describableImage, enqueueDescribe, PRIORITY } from "../jobs/queue.js";
import { fallbackReason } from "./ladder.js";
import { type VerdictEffect, verdictEffect } from "./verdict.js";

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

export interface VerdictRequest {
  descriptionId: number;
  verdict: ReviewVerdict;
  /** Checked by the caller (TEXT_LIMITS.reviewNote). */
  note: string | null;
  reviewer: string;
  now?: Date;
}

export interface VerdictOutcome {
  review: Review;
  effect: VerdictEffect;
}

/**
 * Records a verdict on a description and carries out what it means (verdict.ts): an approval of
 * the current text settles the work; a rejection of the current model text queues the fallback
 * ladder's next step, or marks the work as needing a person when nothing is left to try.
 */
export async function reviewDescription(db: Db, config: Config, req: VerdictRequest): Promise<VerdictOutcome> {
  const now = req.now ?? new Date();
  const d = await db.description.findUnique({
    where: { id: req.descriptionId },
    select: {
      id: true,
      source: true,
      jobId: true,
      experimentId: true,
      artwork: { select: { id: true, state: true, currentDescriptionId: true, images: { where: describableImage, take: 1, select: { id: true } } } },
    },
  });
  if (!d) throw new DescriptionNotFoundError(req.descriptionId);
  if (d.experimentId != null) throw new ExperimentDescriptionError(d.id, d.experimentId);
  // The step that wrote it: the ladder step whose job made this description, if one did.
  const madeBy = d.jobId == null ? null : await db.review.findFirst({ where: { fallbackJobId: d.jobId, fallbackStep: { not: null } }, select: { fallbackStep: true } });
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
  // Queued before the verdict is written: a crash in between leaves one more attempt, never a
  // rejection that queued nothing. An identical job still queued is reused (enqueueDescribe).
  const job =
    effect.kind === "fallback"
      ? (
          await enqueueDescribe(db, config, {
            artworkId: d.artwork.id,
            imageId: image!.id,
            params: effect.params,
            priority: PRIORITY.request,
            reason: fallbackReason(effect.step, effect.steps),
            requestedBy: req.reviewer,
          })
        ).job
      : null;
  // Writes only (see setHumanDescription for why a SQLite transaction must not read first).
  const review = await writeTransaction(db, async (tx) => {
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
    return review;
  });
  return { review, effect };
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
