/**
 * The commonest function words of the languages a description is likely to come out in, for
 * telling which one a text is written in. Function words make up a third or more of any prose in
 * these languages and say nothing about its subject, so their share is a cheap, reliable signal
 * from a few dozen words on (the classic stop-word method; Grefenstette 1995). No list holds an
 * English word ("a", "no", "as", "son", "die", "come" are left out of the others), and words are
 * compared in lower case with their accents ("está", "é").
 */
export const LANGUAGE_WORDS: Readonly<Record<string, ReadonlySet<string>>> = Object.freeze({
  en: words(
    "the of and in is are was were with his her their its this that these those which who whose to for from by at on an it has have had be been while into behind over under near there or not but above below beside",
  ),
  es: words(
    "el los las del con una unos unas por para que se su sus es está están y al como pero muy sobre entre lo le les este esta estos estas también donde cuya cuyo detrás junto hacia mientras",
  ),
  fr: words(
    "le les des du et est une dans sur avec qui au aux ses pour par pas ce cette ces sont il elle ils elles leur leurs où mais derrière devant sous vers sans tandis",
  ),
  de: words(
    "der das und ist mit ein eine einen einem einer auf im dem des von zu sich nicht sind seine ihre ihr sein hinter über unter neben vor zwischen während wird",
  ),
  it: words(
    "il gli della delle degli di che è con nel nella nei sono del dei un uno per sul sulla tra fra anche suo sua suoi sue lo dietro davanti mentre questa questo",
  ),
  pt: words(
    "o os da dos das em com uma um que é não na nos nas ao à pela pelo seu sua seus suas também está estão atrás sobre entre enquanto este esta",
  ),
});

function words(list: string): ReadonlySet<string> {
  return new Set(list.split(" "));
}

/** Languages LANGUAGE_WORDS can tell apart. */
export const KNOWN_LANGUAGES = Object.freeze(Object.keys(LANGUAGE_WORDS));

/** Words (runs of letters) and sentence ends. */
const TOKENS = /\p{L}+|[.!?]/gu;
const SENTENCE_END = /^[.!?]$/;
const CAPITAL = /^\p{Lu}/u;
const ANY_FUNCTION_WORD = new Set(Object.values(LANGUAGE_WORDS).flatMap((list) => [...list]));

/**
 * Words (runs of letters, lower case) and, per known language, the share of them that are its
 * function words. Names and titles say nothing of the language the text is written in ("Francisco
 * de Goya y Lucientes", "Museo del Prado", "Los desastres de la guerra" in English prose), so their
 * function words do not count: a capitalised word inside a sentence, and a lower-case function word
 * between two capitalised words. They still count as words.
 */
export function languageShares(text: string): { words: number; shares: Record<string, number> } {
  const found: { lower: string; capital: boolean; start: boolean }[] = [];
  let start = true;
  for (const token of text.match(TOKENS) ?? []) {
    if (SENTENCE_END.test(token)) {
      start = true;
      continue;
    }
    found.push({ lower: token.toLowerCase(), capital: CAPITAL.test(token), start });
    start = false;
  }
  // For each word, the nearest word before and after it that is not a lower-case function word (two passes: linear).
  const lowerFunction = found.map((w) => !w.capital && ANY_FUNCTION_WORD.has(w.lower));
  const before = new Int32Array(found.length);
  const after = new Int32Array(found.length);
  for (let i = 0, last = -1; i < found.length; i++) {
    before[i] = last;
    if (!lowerFunction[i]) last = i;
  }
  for (let i = found.length - 1, last = -1; i >= 0; i--) {
    after[i] = last;
    if (!lowerFunction[i]) last = i;
  }
  const counted = found.map((w, i) => {
    if (w.capital) return w.start;
    if (!lowerFunction[i]) return false;
    // Inside a name: the words around it (past other lower-case function words) are both capitalised, in one sentence.
    const b = before[i]!;
    const a = after[i]!;
    return !(b >= 0 && a >= 0 && found[b]!.capital && found[a]!.capital && !found[a]!.start);
  });
  const shares: Record<string, number> = {};
  for (const [language, list] of Object.entries(LANGUAGE_WORDS)) {
    let n = 0;
    for (let i = 0; i < found.length; i++) if (counted[i] && list.has(found[i]!.lower)) n++;
    shares[language] = found.length ? n / found.length : 0;
  }
  return { words: found.length, shares };
}

/** Fewer words than this say too little about their language. */
export const MIN_LANGUAGE_WORDS = 20;
/** A language is told when its function words are at least this share of the words (prose runs at 0.3–0.5). */
export const MIN_LANGUAGE_SHARE = 0.12;

/**
 * The known language a text is written in: the one whose function words are the largest share,
 * at least MIN_LANGUAGE_SHARE, and at least twice the next one's; null for a text of fewer than
 * `minWords` words, a text in another language, or a mixed one.
 */
export function detectLanguage(text: string, minWords = MIN_LANGUAGE_WORDS): string | null {
  const { words, shares } = languageShares(text);
  if (words < minWords) return null;
  const ranked = Object.entries(shares).sort((a, b) => b[1] - a[1]);
  const [best, next] = [ranked[0]!, ranked[1]!];
  return best[1] >= MIN_LANGUAGE_SHARE && best[1] >= 2 * next[1] ? best[0] : null;
}
