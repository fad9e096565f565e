import type { CheckOutcome, QualityFlag } from "./types.js";

/**
 * How much each flag's evidence weighs in the review risk: the chance, roughly, that a text with
 * that signal at full severity needs a human. Claims that are wrong about the work weigh most;
 * form problems that a reader can see and that rarely mislead weigh least.
 */
export const RISK_WEIGHTS: Record<QualityFlag, number> = {
  TRUNCATED: 0.35,
  MARKDOWN: 0.25,
  REPETITION: 0.7,
  TOO_SHORT: 0.5,
  TOO_LONG: 0.3,
  DEPICTS_MISSING: 0.6,
  MEDIUM_CONFLICT: 0.75,
  COLOUR_ON_MONOCHROME: 0.75,
  WRONG_LANGUAGE: 0.7,
};

/**
 * risk = 1 - prod over checks of (1 - weight(flag) x severity): a noisy-OR, in [0, 1] by
 * construction. Each severity is in [0, 1]: 1 (or more than 0.5) for a raised flag, a small
 * figure (at most 0.2) as a continuous figure nears its threshold, 0 otherwise.
 */
export function riskOf(outcomes: CheckOutcome[]): number {
  let keep = 1;
  for (const o of outcomes) {
    const s = Math.min(1, Math.max(0, o.applicable ? o.severity : 0));
    keep *= 1 - RISK_WEIGHTS[o.flag] * s;
  }
  return Math.min(1, Math.max(0, 1 - keep));
}
