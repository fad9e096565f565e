/**
 * Quality signals of a description: the flags, the checks behind them and the review risk.
 * The checks are pure functions of a `QualityInput`; I/O (the database, Wikidata, the stored
 * image) stays with the callers, which gather the facts below. See docs/quality.md.
 */

export const QUALITY_FLAGS = [
  "TRUNCATED",
  "MARKDOWN",
  "REPETITION",
  "TOO_SHORT",
  "TOO_LONG",
  "DEPICTS_MISSING",
  "MEDIUM_CONFLICT",
  "COLOUR_ON_MONOCHROME",
  "WRONG_LANGUAGE",
] as const;
export type QualityFlag = (typeof QUALITY_FLAGS)[number];

/** One measured figure. `value` is a number (1/0 for yes/no checks); `detail` says it in words. */
export interface QualityCheck {
  name: string;
  value: number;
  detail: string;
}

export interface QualityResult {
  /** In QUALITY_FLAGS order. */
  flags: QualityFlag[];
  /** In [0, 1]; orders the review queue (docs/quality.md, "Risk"). */
  risk: number;
  checks: QualityCheck[];
}

/** What one check module returns: its flag, whether it is raised, and the figures behind it. */
export interface CheckOutcome {
  flag: QualityFlag;
  flagged: boolean;
  /** False when the facts needed are missing (no depicted items, no image figure…): never flagged. */
  applicable: boolean;
  /** In [0, 1]: how strongly the check points at a bad text (used by risk). 0 when not applicable. */
  severity: number;
  checks: QualityCheck[];
}

/** A Wikidata item as the checks need it: labels and aliases by language code. */
export interface LabelledItem {
  qid: string;
  labels: Record<string, string>;
  aliases?: Record<string, string[]>;
}

/** A value of the work's P180 (depicts), with the item's own P31 (instance of). */
export interface DepictedItem extends LabelledItem {
  instanceOf: string[];
}

/** How the text was generated; all absent for a human text. */
export interface GenerationFacts {
  /** The engine's finish reason: "eos", "length" (max tokens), "stop" (target length reached). */
  finishReason?: string | null;
  /** The text was cut back to its last complete sentence. */
  trimmed?: boolean | null;
  /** The markdown cleanup removed something. */
  markdownRemoved?: boolean | null;
  /** Sentences the engine removed for repeating the one before (withoutRepeatedSentences on the raw text). */
  repeatsRemoved?: number | null;
  /** Target length in words (0 or absent: DEFAULT_TARGET_WORDS). */
  targetWords?: number | null;
  /** The instruction the model was given (its language is the one asked for). */
  instruction?: string | null;
}

export interface WorkFacts {
  /** P180 values. */
  depicts?: DepictedItem[];
  /** The work's P31 values. */
  instanceOf?: LabelledItem[];
  /** The work's P186 values (material used). */
  materials?: LabelledItem[];
}

/** Figures measured on the stored main image by `measureChroma` (src/quality/image-colour.ts). */
export interface ImageFacts {
  /** 95th percentile of chroma (CIE Lab) left after removing a uniform tint; null when unknown. */
  chroma: number | null;
  /** The removed tint: its hue angle (degrees, Lab) and chroma; null when unknown. */
  tint?: { hue: number; chroma: number } | null;
}

export interface QualityInput {
  text: string;
  /** The text's language code ("en", "es"). */
  language?: string;
  generation?: GenerationFacts;
  work?: WorkFacts;
  image?: ImageFacts;
  /** The synced languages (SYNC_LANGUAGES); labels and aliases in these are matched. Absent: all given. */
  languages?: string[];
}
