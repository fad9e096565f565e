import { createHash } from "node:crypto";
import { InvalidArgumentError } from "commander";

/**
 * The sample of an experiment: `size` works drawn from the candidates, the same for the same seed
 * and candidates. Each work's place is a hash of the seed and its QID, so the draw does not depend
 * on row order or ids, and a work synced later does not reshuffle the others: with the same seed,
 * a larger collection keeps every earlier pick that still ranks in the first `size`.
 *
 * Pure: no database.
 */

export const MAX_SAMPLE = 5000;

export function sampleRank(seed: number, qid: string): string {
  return createHash("sha256").update(`${seed}:${qid}`).digest("hex");
}

/** The first `size` candidates in seeded order (all of them, in that order, when fewer). */
export function drawSample<T extends { qid: string }>(candidates: readonly T[], size: number, seed: number): T[] {
  return candidates
    .map((c) => ({ c, rank: sampleRank(seed, c.qid) }))
    .sort((x, y) => (x.rank < y.rank ? -1 : x.rank > y.rank ? 1 : x.c.qid.localeCompare(y.c.qid)))
    .slice(0, size)
    .map((x) => x.c);
}

/** Commander argument parser for --seed: a whole number from 0. */
export function parseSeed(v: string): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError("must be a whole number from 0");
  return n;
}
