import { diffWords } from "diff";

export interface DiffPart {
  kind: "same" | "added" | "removed";
  text: string;
}

/** Longest a word diff may compute; two long, very different texts are not worth a stalled request. */
export const DIFF_TIMEOUT_MS = 200;

/**
 * A word-level diff of two versions (jsdiff's diffWords), or null when the texts are too different
 * to compare within DIFF_TIMEOUT_MS. The parts are plain text: templates escape them. Pure.
 */
export function wordDiff(before: string, after: string): DiffPart[] | null {
  const changes = diffWords(before, after, { timeout: DIFF_TIMEOUT_MS });
  if (!changes) return null;
  return changes.map((c) => ({ kind: c.added ? "added" : c.removed ? "removed" : "same", text: c.value }));
}
