import { diffWords } from "diff";
import { BoundedLru } from "../graphql/bounded-lru.js";

export interface DiffPart {
  kind: "same" | "added" | "removed";
  text: string;
}

/**
 * Longest text a word diff is tried on, in characters. Anyone may open an artwork page, and each
 * view diffs two versions: jsdiff's cost grows with the product of the texts' lengths when they
 * differ, so a 20,000-character text (setDescription's limit) could hold the process for seconds.
 * A description is about 150 words (about 1,000 characters); 3,000 leaves room for long ones.
 */
export const DIFF_MAX_CHARS = 3_000;

/**
 * Longest a word diff may compute. Two completely different 150-word texts take about 10-25 ms,
 * so the budget leaves room for a busy machine while a page view cannot cost much more.
 */
export const DIFF_TIMEOUT_MS = 50;

/**
 * A word-level diff of two versions (jsdiff's diffWords), or null when a text is longer than
 * DIFF_MAX_CHARS or the texts are too different to compare within DIFF_TIMEOUT_MS (the page then
 * says so; the history shows both texts). The parts are plain text: templates escape them. Pure.
 */
export function wordDiff(before: string, after: string): DiffPart[] | null {
  if (before.length > DIFF_MAX_CHARS || after.length > DIFF_MAX_CHARS) return null;
  const changes = diffWords(before, after, { timeout: DIFF_TIMEOUT_MS });
  if (!changes) return null;
  return changes.map((c) => ({ kind: c.added ? "added" : c.removed ? "removed" : "same", text: c.value }));
}

/** Diffs kept, by the two descriptions' ids: a description row never changes, so neither does its diff. */
const kept = new BoundedLru<DiffPart[] | "too-different">({ maxEntries: 1_000, maxBytes: 8 * 1024 * 1024 });

/**
 * wordDiff of two stored descriptions, computed once per pair while kept (the last 1,000 pairs,
 * at most 8 MB): a page viewed again, or by many, costs a lookup, not up to DIFF_TIMEOUT_MS.
 */
export function keptWordDiff(beforeId: string, before: string, afterId: string, after: string): DiffPart[] | null {
  const key = `${beforeId} ${afterId}`;
  const hit = kept.get(key);
  if (hit !== undefined) return hit === "too-different" ? null : hit;
  const parts = wordDiff(before, after);
  // One that ran out of time is kept as such too: each view of the page (anyone may open it) would
  // otherwise hold the event loop for the whole budget again.
  if (parts) kept.set(key, parts, 64 + 2 * (before.length + after.length) + 32 * parts.length);
  else kept.set(key, "too-different", 64 + key.length * 2);
  return parts;
}
