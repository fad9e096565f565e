import { checkColourOnMonochrome } from "./checks/colour-on-monochrome.js";
import { checkDepictsMissing } from "./checks/depicts-missing.js";
import { checkTooLong, checkTooShort } from "./checks/length.js";
import { checkLanguage } from "./checks/language.js";
import { checkMarkdown } from "./checks/markdown.js";
import { checkMediumConflict } from "./checks/medium-conflict.js";
import { checkRepetition } from "./checks/repetition.js";
import { checkTruncated } from "./checks/truncated.js";
import { riskOf } from "./risk.js";
import { type CheckOutcome, QUALITY_FLAGS, type QualityInput, type QualityResult } from "./types.js";

/** Every check, one per flag. */
export const CHECKS: readonly ((input: QualityInput) => CheckOutcome)[] = [
  checkTruncated,
  checkMarkdown,
  checkRepetition,
  checkTooShort,
  checkTooLong,
  checkDepictsMissing,
  checkMediumConflict,
  checkColourOnMonochrome,
  checkLanguage,
];

/** The quality signals of one description: pure, a fraction of a millisecond for a 150-word text. */
export function assessQuality(input: QualityInput): QualityResult {
  const outcomes = CHECKS.map((check) => check(input));
  const raised = new Set(outcomes.filter((o) => o.flagged).map((o) => o.flag));
  return {
    flags: QUALITY_FLAGS.filter((f) => raised.has(f)),
    risk: riskOf(outcomes),
    checks: outcomes.flatMap((o) => o.checks),
  };
}
