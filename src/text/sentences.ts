/**
 * Where a sentence ends: one rule for the stored text's trim, the beam search's target-length
 * stop, the TRUNCATED check and alt text. A full stop after "St", "c" or "No" ends nothing ("St.
 * Jerome", "c. 1799", "plate No. 43"), nor does one followed by a lower-case letter or a digit; a
 * text cut there is cut mid-sentence.
 */

/** A run of . ! ? or … with any closing quotes or brackets after it. */
const CANDIDATE = /([.!?…]+)["'”’)\]]*/gu;

/**
 * Words a full stop follows without ending a sentence, as written (so "said no." ends one and
 * "No. 43" does not): saints and titles, numbers and references, dates and measures. "etc." is
 * not here: it ends sentences as often as not.
 */
const ABBREVIATIONS = new Set([
  "St", "Sta", "Sto", "Mr", "Mrs", "Ms", "Dr", "Prof", "Sr", "Sra", "Fr", "Rev", "Gen", "Capt", "Col",
  "No", "Nos", "Nr", "Fig", "Figs", "Vol", "Pl", "Inv", "Op",
  "c", "ca", "cf", "approx", "vs", "e.g", "i.e", "viz",
]);
// Lower-case "cat.", "fig.", "vol." are words as often as references ("she holds a cat."), and a
// reference is followed by its number, which continues the sentence anyway.

/** Letters that are Roman numerals as often as initials ("Charles V.", "World War I."). */
const NUMERAL_LETTERS = new Set(["I", "V", "X"]);

/** The word just before `at`: letters, and inner dots ("e.g"). */
const WORD_BEFORE = /(?:^|[^\p{L}.])(\p{L}(?:[\p{L}.]*\p{L})?)$/u;

/** The first character after `at` that is not whitespace, or undefined at the end. */
const nextVisible = (text: string, at: number): string | undefined => /\S/u.exec(text.slice(at, at + 16))?.[0];

/**
 * Whether the mark `mark` at `at` ends a sentence, given what follows it. At the end of the text
 * only the word before counts; inside it, a lower-case letter or a digit after it continues the
 * sentence, and so does an initial ("J. M. W. Turner": a single capital before a full stop).
 */
function endsHere(text: string, at: number, mark: string, end: number): boolean {
  const next = nextVisible(text, end);
  if (next !== undefined && /[\p{Ll}\p{N}]/u.test(next)) return false;
  if (mark !== ".") return true;
  const word = WORD_BEFORE.exec(text.slice(Math.max(0, at - 24), at))?.[1];
  if (word === undefined) return true;
  if (ABBREVIATIONS.has(word)) return false;
  if (next === undefined || !/^\p{Lu}$/u.test(word)) return true;
  // An initial ("J. M. W. Turner"); I, V and X only when another initial follows ("V. S. Pritchett").
  return NUMERAL_LETTERS.has(word) && !/^\s*\p{Lu}\.\s/u.test(text.slice(end, end + 8));
}

/**
 * Offsets just after each sentence end in `text`: the mark and its closing quotes or brackets,
 * followed by whitespace or the end of the text ("3.5" and "e.g" hold no end).
 */
export function* sentenceEnds(text: string): Generator<number> {
  for (const m of text.matchAll(CANDIDATE)) {
    const end = m.index + m[0].length;
    if (end < text.length && !/\s/u.test(text[end]!)) continue;
    if (endsHere(text, m.index, m[1]!, end)) yield end;
  }
}

/** The last run of marks (the lookbehind starts it at its first mark: linear on "!!!!…x"). */
const FINAL_CANDIDATE = /(?<![.!?…])([.!?…]+)["'”’)\]]*$/u;

/** Whether `text` ends with a complete sentence (trailing whitespace aside). Reads only its end. */
export function endsWithSentence(text: string): boolean {
  const t = text.trimEnd();
  const m = FINAL_CANDIDATE.exec(t);
  return m !== null && endsHere(t, m.index, m[1]!, t.length);
}
