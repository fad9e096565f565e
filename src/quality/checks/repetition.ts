import { tokenize } from "../text-match.js";
import type { CheckOutcome, QualityInput } from "../types.js";

/** Distinct word trigrams / all word trigrams below this flags (natural prose sits near 1). */
export const MIN_DISTINCT3 = 0.8;
/** distinct-3 is judged only on texts with at least this many trigrams (22 words). */
export const MIN_TRIGRAMS = 20;
/** A word span repeated (overlaps allowed, so loops count) at least this long flags. */
export const MAX_REPEATED_SPAN = 8;
/** A sentence of at least this many words said twice flags. */
export const MIN_REPEATED_SENTENCE_WORDS = 4;
/** The repeated-span search looks at the first this many words (it is quadratic). */
export const SPAN_WORD_LIMIT = 4000;

export interface RepetitionFigures {
  distinct3: number;
  trigrams: number;
  longestRepeatedSpan: number;
  repeatedSentences: number;
}

/** Share of distinct word trigrams (1 when the text has fewer than 3 words). */
export function distinctNgramRatio(words: string[], n = 3): { ratio: number; total: number } {
  const total = words.length - n + 1;
  if (total <= 0) return { ratio: 1, total: 0 };
  const seen = new Set<string>();
  for (let i = 0; i < total; i++) seen.add(words.slice(i, i + n).join(" "));
  return { ratio: seen.size / total, total };
}

/** Length in words of the longest span that occurs twice (the occurrences may overlap). */
export function longestRepeatedSpan(words: string[]): number {
  const n = Math.min(words.length, SPAN_WORD_LIMIT);
  const ids = new Int32Array(n);
  const dict = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const w = words[i]!;
    let id = dict.get(w);
    if (id === undefined) dict.set(w, (id = dict.size));
    ids[i] = id;
  }
  // Longest common prefix of suffixes i and j (i < j), row by row: lcp(i, j) = lcp(i+1, j+1) + 1.
  let best = 0;
  let next = new Int32Array(n + 1);
  let row = new Int32Array(n + 1);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = n - 1; j > i; j--) {
      const v = ids[i] === ids[j] ? next[j + 1]! + 1 : 0;
      row[j] = v;
      if (v > best) best = v;
    }
    [next, row] = [row, next];
  }
  return best;
}

/** Sentences of at least MIN_REPEATED_SENTENCE_WORDS words that repeat an earlier one (after normalisation). */
export function repeatedSentences(text: string): number {
  const seen = new Set<string>();
  let repeats = 0;
  for (const s of text.split(/(?<=[.!?…])\s+/)) {
    const words = tokenize(s);
    if (words.length < MIN_REPEATED_SENTENCE_WORDS) continue;
    const key = words.join(" ");
    if (seen.has(key)) repeats++;
    else seen.add(key);
  }
  return repeats;
}

export function repetitionFigures(text: string): RepetitionFigures {
  const words = tokenize(text);
  const { ratio, total } = distinctNgramRatio(words);
  return { distinct3: ratio, trigrams: total, longestRepeatedSpan: longestRepeatedSpan(words), repeatedSentences: repeatedSentences(text) };
}

const clamp01 = (x: number) => Math.min(1, Math.max(0, x));

/**
 * REPETITION: repeated sentences (with those the engine removed from a loop), a long repeated span, or a low distinct-3 ratio (an n-gram
 * loop). Severity when flagged: 0.6 + 0.4 x how far past the worst threshold; otherwise up to
 * 0.2 as the figures approach a threshold.
 */
export function checkRepetition(input: QualityInput): CheckOutcome {
  // A loop the engine cut out of the stored text ("It is dark. It is dark.") still counts.
  const stored = repetitionFigures(input.text);
  const f = { ...stored, repeatedSentences: stored.repeatedSentences + (input.generation?.repeatsRemoved ?? 0) };
  const lowDistinct = f.trigrams >= MIN_TRIGRAMS && f.distinct3 < MIN_DISTINCT3;
  const longSpan = f.longestRepeatedSpan >= MAX_REPEATED_SPAN;
  const sentences = f.repeatedSentences >= 1;
  const flagged = lowDistinct || longSpan || sentences;
  const distinctSeverity = f.trigrams >= MIN_TRIGRAMS ? (1 - f.distinct3) / (1 - MIN_DISTINCT3) : 0;
  const severity = flagged
    ? 0.6 +
      0.4 *
        clamp01(
          Math.max(
            (MIN_DISTINCT3 - f.distinct3) / 0.4,
            (f.longestRepeatedSpan - MAX_REPEATED_SPAN) / 24,
            (f.repeatedSentences - 1) / 3,
          ),
        )
    : 0.2 * clamp01(Math.max(distinctSeverity, (f.longestRepeatedSpan - 3) / (MAX_REPEATED_SPAN - 3)));
  const reasons = [
    lowDistinct ? `distinct-3 ${f.distinct3.toFixed(3)} < ${MIN_DISTINCT3}` : "",
    longSpan ? `a ${f.longestRepeatedSpan}-word span repeats` : "",
    sentences ? `${f.repeatedSentences} repeated sentence(s)` : "",
  ].filter(Boolean);
  return {
    flag: "REPETITION",
    flagged,
    applicable: true,
    severity,
    checks: [
      { name: "distinct3", value: f.distinct3, detail: `${f.trigrams} trigrams${lowDistinct ? `, below ${MIN_DISTINCT3}` : ""}` },
      { name: "longestRepeatedSpan", value: f.longestRepeatedSpan, detail: `words${longSpan ? `, at least ${MAX_REPEATED_SPAN}` : ""}` },
      { name: "repeatedSentences", value: f.repeatedSentences, detail: reasons.length ? reasons.join("; ") : "no repetition" },
    ],
  };
}
