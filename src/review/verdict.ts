import type { DescriptionSource, ReviewVerdict } from "../generated/prisma/enums.js";
import type { Prisma } from "../generated/prisma/client.js";
import type { FallbackLadder } from "./ladder.js";
import type { RequestedParams } from "../generation/params.js";

/**
 * What a verdict does, and which current descriptions automatic runs may replace. Pure: the
 * I/O that carries a decision out lives in review.ts.
 */

export const REVIEW_VERDICTS = ["APPROVED", "REJECTED", "NEEDS_WORK"] as const satisfies readonly ReviewVerdict[];
/** A description's latest verdict, or UNREVIEWED. */
export const REVIEW_STATES = ["UNREVIEWED", ...REVIEW_VERDICTS] as const;
export type ReviewState = (typeof REVIEW_STATES)[number];

/** The facts a verdict is judged on. */
export interface VerdictFacts {
  verdict: ReviewVerdict;
  source: DescriptionSource;
  /** The description is its artwork's current one. */
  isCurrent: boolean;
  /** The artwork is ACTIVE (others are never described again). */
  artworkActive: boolean;
  /** The artwork has a downloaded main image to describe. */
  hasImage: boolean;
  /** The ladder step whose job wrote this description; 0 when it came from elsewhere. */
  madeByStep: number;
  ladder: FallbackLadder;
}

export type VerdictEffect =
  /** Only the verdict is recorded. */
  | { kind: "record" }
  /** The current text is approved: the work no longer needs a person, and the ladder is over. */
  | { kind: "settle" }
  /** A new attempt with the ladder's step `step` (1-based) of `steps`. */
  | { kind: "fallback"; step: number; steps: number; params: RequestedParams }
  /** Nothing left to try (the ladder is spent, or there is no image): the work needs a person. */
  | { kind: "needsPerson"; steps: number };

export function verdictEffect(f: VerdictFacts): VerdictEffect {
  if (f.verdict === "APPROVED") return f.isCurrent ? { kind: "settle" } : { kind: "record" };
  // NEEDS_WORK is a note to people; a rejected person's text, an old version or a work that left
  // the inventory are not described again.
  if (f.verdict !== "REJECTED" || f.source !== "MODEL" || !f.isCurrent || !f.artworkActive) return { kind: "record" };
  const step = f.madeByStep + 1;
  const params = f.ladder[step - 1];
  if (!params || !f.hasImage) return { kind: "needsPerson", steps: f.ladder.length };
  return { kind: "fallback", step, steps: f.ladder.length, params };
}

/**
 * A current description that automatic runs keep: a person's text, or a model text a person
 * approved. Only an explicit, forced regenerate replaces it.
 */
export function keepsCurrent(current: { source: DescriptionSource; reviewState: ReviewVerdict | null }): boolean {
  return current.source === "HUMAN" || current.reviewState === "APPROVED";
}

/** The Prisma form of "not kept": a model text nobody approved (the SQL twin of keepsCurrent). */
export const replaceableDescription = {
  source: "MODEL",
  OR: [{ reviewState: null }, { reviewState: { not: "APPROVED" } }],
} satisfies Prisma.DescriptionWhereInput;

/** Descriptions that may feed alt text: any but a rejected one or an experiment's (src/experiments/). */
export const notRejected = {
  experimentId: null,
  OR: [{ reviewState: null }, { reviewState: { not: "REJECTED" } }],
} satisfies Prisma.DescriptionWhereInput;

/** The artwork's review state once a person writes its text: nothing is left for the ladder to do. */
/**
 * Works whose current description is in one of `states` (UNREVIEWED: nobody gave it a verdict; a
 * work without a current description is in none), and whose "needs a person" mark is `needsPerson`.
 */
export function reviewWhere(filter: { reviewState?: readonly ReviewState[] | null; needsPerson?: boolean | null }): Prisma.ArtworkWhereInput {
  const and: Prisma.ArtworkWhereInput[] = [];
  const states = filter.reviewState ?? [];
  if (states.length) {
    const verdicts = states.filter((s): s is ReviewVerdict => s !== "UNREVIEWED");
    const or: Prisma.DescriptionWhereInput[] = [];
    if (verdicts.length) or.push({ reviewState: { in: verdicts } });
    if (states.includes("UNREVIEWED")) or.push({ reviewState: null });
    and.push({ currentDescription: { is: or.length === 1 ? or[0]! : { OR: or } } });
  }
  if (filter.needsPerson != null) and.push({ needsPerson: filter.needsPerson });
  return and.length ? { AND: and } : {};
}

export const SETTLED_BY_PERSON = { needsPerson: false, fallbackStep: null } as const;
