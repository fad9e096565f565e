import type { Db } from "../db.js";
import type { Prisma } from "../generated/prisma/client.js";

/**
 * A fallback ladder step's job that failed for good (its attempts spent, an image it can never
 * read, a worker that died on its last attempt) or was cancelled leaves the rejected text current,
 * and nothing else will try again: the work needs a person, as when the ladder is spent (verdict.ts,
 * "needsPerson").
 * Only while that text is still current and that step is still the work's latest: a person's text,
 * an approval or a newer step since has settled it otherwise. Returns how many works it marked.
 */
export async function flagFailedFallbacks(db: Db | Prisma.TransactionClient, jobIds: readonly number[]): Promise<number> {
  if (jobIds.length === 0) return 0;
  const steps = await db.review.findMany({
    where: { fallbackJobId: { in: [...jobIds] }, fallbackStep: { not: null }, fallbackJob: { status: { in: ["FAILED", "CANCELLED"] } } },
    select: { descriptionId: true, fallbackStep: true, description: { select: { artworkId: true } } },
  });
  // Two rejections of one text share one job (review.ts): one mark.
  const marks = new Map(steps.map((s) => [s.descriptionId, s]));
  let flagged = 0;
  for (const s of marks.values()) {
    const r = await db.artwork.updateMany({
      where: { id: s.description.artworkId, currentDescriptionId: s.descriptionId, fallbackStep: s.fallbackStep, needsPerson: false },
      data: { needsPerson: true },
    });
    flagged += r.count;
  }
  return flagged;
}

/**
 * The same, for every ladder step that ended so (the nightly run calls it): a process that died
 * between a step's job ending and its mark left the work unmarked, and nothing else would mark it.
 */
export async function flagMissedFallbacks(db: Db): Promise<number> {
  const steps = await db.review.findMany({
    // Only steps whose text is still current on a work not yet marked: the rest were settled or
    // marked on an earlier night, and reading them all again would grow with the history for ever.
    where: {
      fallbackStep: { not: null },
      fallbackJob: { status: { in: ["FAILED", "CANCELLED"] } },
      description: { currentOf: { is: { needsPerson: false } } },
    },
    select: { fallbackJobId: true },
  });
  return flagFailedFallbacks(db, [...new Set(steps.map((s) => s.fallbackJobId!))]);
}
