/**
 * Limits on what a caller may write through the job and description mutations, in one place.
 * Lengths count UTF-16 code units (what JavaScript's `length` says), after trimming.
 */

export interface TextLimit {
  /** Longest accepted text. */
  max: number;
  /** Newlines (and CR LF, stored as LF) and tabs allowed: true for prose, false for names. */
  multiline: boolean;
}

export const TEXT_LIMITS = {
  /** setDescription text: a person's description. */
  descriptionText: { max: 20_000, multiline: true },
  /** setDescription author. */
  author: { max: 200, multiline: false },
  /** The reason recorded with a description or a regenerate request. */
  reason: { max: 1_000, multiline: true },
  /** A generation prompt (regenerateDescription params.prompt). */
  prompt: { max: 2_000, multiline: true },
  /** reviewDescription note: why a verdict was given. */
  reviewNote: { max: 2_000, multiline: true },
  /** describeMissing creator: a QID or words of a creator's labels. */
  creator: { max: 200, multiline: false },
} as const satisfies Record<string, TextLimit>;

/** Longest list of job statuses a filter may name (there are five statuses). */
export const MAX_STATUS_FILTER = 5;

// C0 controls but tab and line feed, DEL, C1 controls; and the bidirectional overrides and
// isolates, which make a name display as something it is not.
const CONTROL_MULTILINE = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]/u;
const CONTROL_SINGLE_LINE = /[\u0000-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069\u2028\u2029]/u;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export type TextCheck = { ok: true; text: string } | { ok: false; problem: string };

/**
 * A caller's text, trimmed (and CR LF made LF), or why it is refused: empty, too long, a control
 * character, or not well-formed UTF-16 (a lone surrogate cannot be stored as UTF-8).
 */
export function checkText(value: string, limit: TextLimit): TextCheck {
  if (LONE_SURROGATE.test(value)) return { ok: false, problem: "must be valid Unicode text (it contains a lone surrogate)" };
  const text = (limit.multiline ? value.replace(/\r\n/g, "\n") : value).trim();
  if (text === "") return { ok: false, problem: "must not be empty" };
  if (text.length > limit.max) return { ok: false, problem: `must have at most ${limit.max} characters (got ${text.length})` };
  const control = (limit.multiline ? CONTROL_MULTILINE : CONTROL_SINGLE_LINE).exec(text);
  if (control) {
    const code = `U+${control[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
    return { ok: false, problem: `must not contain control characters${limit.multiline ? " other than newline and tab" : ""} (found ${code})` };
  }
  return { ok: true, text };
}
