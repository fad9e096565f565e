import { countWords } from "../../describe/postprocess.js";
import type { CheckOutcome, QualityInput } from "../types.js";

/** The target when the text has none (a human text, or target 0): DESCRIBE_TARGET_WORDS' default. */
export const DEFAULT_TARGET_WORDS = 150;
/** Words / target below this is TOO_SHORT (60 words for 150). */
export const TOO_SHORT_RATIO = 0.4;
/** Words / target above this is TOO_LONG (300 words for 150). */
export const TOO_LONG_RATIO = 2;

const clamp01 = (x: number) => Math.min(1, Math.max(0, x));

export function lengthFigures(input: QualityInput): { words: number; target: number; ratio: number } {
  const t = input.generation?.targetWords;
  const target = t && t > 0 ? t : DEFAULT_TARGET_WORDS;
  const words = countWords(input.text);
  return { words, target, ratio: words / target };
}

/** TOO_SHORT: words / target < TOO_SHORT_RATIO. Severity 0.5..1 when flagged, up to 0.2 from ratio 0.7 down. */
export function checkTooShort(input: QualityInput): CheckOutcome {
  const { words, target, ratio } = lengthFigures(input);
  const flagged = ratio < TOO_SHORT_RATIO;
  const severity = flagged ? 0.5 + 0.5 * clamp01((TOO_SHORT_RATIO - ratio) / TOO_SHORT_RATIO) : 0.2 * clamp01((0.7 - ratio) / (0.7 - TOO_SHORT_RATIO));
  return {
    flag: "TOO_SHORT",
    flagged,
    applicable: true,
    severity,
    checks: [{ name: "lengthRatio", value: ratio, detail: `${words} words for a target of ${target}` }],
  };
}

/** TOO_LONG: words / target > TOO_LONG_RATIO. Severity 0.5..1 when flagged, up to 0.2 from ratio 1.5 up. */
export function checkTooLong(input: QualityInput): CheckOutcome {
  const { words, target, ratio } = lengthFigures(input);
  const flagged = ratio > TOO_LONG_RATIO;
  const severity = flagged ? 0.5 + 0.5 * clamp01((ratio - TOO_LONG_RATIO) / TOO_LONG_RATIO) : 0.2 * clamp01((ratio - 1.5) / (TOO_LONG_RATIO - 1.5));
  return {
    flag: "TOO_LONG",
    flagged,
    applicable: true,
    // lengthRatio is reported once, by checkTooShort.
    severity,
    checks: [],
  };
}
