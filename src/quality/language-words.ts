/**
 * The commonest function words of the languages a description is likely to come out in, for
 * telling which one a text is written in. Function words make up a third or more of any prose in
 * these languages and say nothing about its subject, so their share is a cheap, reliable signal
 * from a few dozen words on (the classic stop-word method; Grefenstette 1995). Each list leaves out
 * the words it shares with English ("a", "in", "no", "as"), and words are compared in lower case
 * with their accents ("está", "é").
 */
export const LANGUAGE_WORDS: Readonly<Record<string, ReadonlySet<string>>> = Object.freeze({
  en: words(
    "the of and is are was were with his her their its this that these those which who whose to for from by at on an it has have had be been while into behind over under near there or not but above below beside",
  ),
  es: words(
    "el los las del con una unos unas por para que se su sus es está están y al como pero muy sobre entre lo le les este esta estos estas son hay también donde cuya cuyo detrás junto hacia mientras sin",
  ),
  fr: words(
    "le les des du et est une dans sur avec qui au aux son ses pour par pas ce cette ces sont il elle ils elles leur leurs où mais derrière devant sous vers sans tandis",
  ),
  de: words(
    "der die das und ist mit ein eine einen einem einer auf im den dem des von zu sich nicht sind seine ihre ihr sein hinter über unter neben vor zwischen während wird",
  ),
  it: words(
    "il gli della delle degli di che è con nel nella nei sono del dei un uno per sul sulla tra fra anche ma come suo sua suoi sue lo dietro davanti mentre questa questo",
  ),
  pt: words(
    "o os da do dos das em com uma um que é não na nos nas ao à pela pelo seu sua seus suas também está estão atrás sobre entre enquanto este esta",
  ),
});

function words(list: string): ReadonlySet<string> {
  return new Set(list.split(" "));
}

/** Languages LANGUAGE_WORDS can tell apart. */
export const KNOWN_LANGUAGES = Object.freeze(Object.keys(LANGUAGE_WORDS));

const LETTERS = /\p{L}+/gu;

/** Words (runs of letters, lower case) and, per known language, the share of them that are its function words. */
export function languageShares(text: string): { words: number; shares: Record<string, number> } {
  const found = text.toLowerCase().match(LETTERS) ?? [];
  const shares: Record<string, number> = {};
  for (const [language, list] of Object.entries(LANGUAGE_WORDS)) {
    let n = 0;
    for (const w of found) if (list.has(w)) n++;
    shares[language] = found.length ? n / found.length : 0;
  }
  return { words: found.length, shares };
}

/** Fewer words than this say too little about their language. */
export const MIN_LANGUAGE_WORDS = 12;
/** A language is told when its function words are at least this share of the words (prose runs at 0.3–0.5). */
export const MIN_LANGUAGE_SHARE = 0.12;

/**
 * The known language a text is written in: the one whose function words are the largest share,
 * at least MIN_LANGUAGE_SHARE, and at least twice the next one's; null for a short text, a text in
 * another language, or a mixed one.
 */
export function detectLanguage(text: string): string | null {
  const { words, shares } = languageShares(text);
  if (words < MIN_LANGUAGE_WORDS) return null;
  const ranked = Object.entries(shares).sort((a, b) => b[1] - a[1]);
  const [best, next] = [ranked[0]!, ranked[1]!];
  return best[1] >= MIN_LANGUAGE_SHARE && best[1] >= 2 * next[1] ? best[0] : null;
}
