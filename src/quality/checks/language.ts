import { detectLanguage, KNOWN_LANGUAGES, languageShares, MIN_LANGUAGE_SHARE, MIN_LANGUAGE_WORDS } from "../language-words.js";
import type { CheckOutcome, QualityInput } from "../types.js";

const NAMES: Record<string, string> = { en: "English", es: "Spanish", fr: "French", de: "German", it: "Italian", pt: "Portuguese" };
const nameOf = (code: string) => NAMES[code] ?? code;
const pct = (x: number) => `${Math.round(x * 100)}%`;

/** "… in Spanish", "… en español": an instruction that names the language of the answer. */
const ASKED: [RegExp, string][] = [
  [/\bin english\b/i, "en"],
  [/\bin spanish\b|\ben (español|castellano)\b/i, "es"],
  [/\bin french\b|\ben français\b/i, "fr"],
  [/\bin german\b|\bauf deutsch\b/i, "de"],
  [/\bin italian\b|\bin italiano\b/i, "it"],
  [/\bin portuguese\b|\bem português\b/i, "pt"],
];
/** Words an instruction needs for its own language to be told (the default instruction has 17). */
const MIN_INSTRUCTION_WORDS = 8;

/**
 * The language a text should be in: the one the instruction names ("… in Spanish"), else the
 * instruction's own when it is long enough to tell (DESCRIBE_PROMPT written in Spanish asks for
 * Spanish), else the description's (`language`, "en").
 */
export function expectedLanguage(input: QualityInput): string {
  const instruction = input.generation?.instruction ?? "";
  const named = ASKED.find(([pattern]) => pattern.test(instruction))?.[1];
  const told = named ?? (instruction ? detectLanguage(instruction, MIN_INSTRUCTION_WORDS) : null);
  return told ?? (input.language || "en").toLowerCase().split("-")[0]!;
}

/**
 * WRONG_LANGUAGE: the text is written in another language than the one asked for (a small model
 * given a Spanish title may answer in Spanish; alt text read out in the wrong language is noise to
 * a listener): another known language's function words are at least MIN_LANGUAGE_SHARE of the
 * words and at least twice the expected language's (a Spanish inscription quoted in English prose
 * is not enough). Names and titles do not count (languageShares). Judged from MIN_LANGUAGE_WORDS
 * words, and only when the expected language is one LANGUAGE_WORDS knows.
 */
export function checkLanguage(input: QualityInput): CheckOutcome {
  const expected = expectedLanguage(input);
  const { words, shares } = languageShares(input.text);
  const known = KNOWN_LANGUAGES.includes(expected);
  if (!known || words < MIN_LANGUAGE_WORDS) {
    const why = known ? `too few words (${words}) to tell the language` : `the expected language (${expected}) is not one the check knows`;
    return { flag: "WRONG_LANGUAGE", flagged: false, applicable: false, severity: 0, checks: [{ name: "wrongLanguage", value: 0, detail: `not judged: ${why}` }] };
  }
  const [other, share] = Object.entries(shares)
    .filter(([l]) => l !== expected)
    .sort((a, b) => b[1] - a[1])[0]!;
  const flagged = share >= MIN_LANGUAGE_SHARE && share >= 2 * shares[expected]!;
  const figures = `${nameOf(expected)} function words ${pct(shares[expected]!)} of ${words} words, ${nameOf(other)} ${pct(share)}`;
  return {
    flag: "WRONG_LANGUAGE",
    flagged,
    applicable: true,
    severity: flagged ? 1 : 0,
    checks: [{ name: "wrongLanguage", value: flagged ? 1 : 0, detail: flagged ? `written in ${nameOf(other)}, not ${nameOf(expected)}: ${figures}` : figures }],
  };
}
