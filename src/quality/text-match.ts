import { normalizeWords } from "../text/normalize.js";

/**
 * Word matching for the checks: accents removed, lower case, whole words only ("cat" never
 * matches "category"), with simple English and Spanish plural forms ("donkeys", "churches",
 * "women", "mujeres", "luces") and possessives ("donkey's" is "donkey" + "s").
 */

/** The text's words, normalised as search does (src/text/normalize.ts). */
export function tokenize(text: string): string[] {
  const words = normalizeWords(text);
  return words ? words.split(" ") : [];
}

const IRREGULAR: Record<string, string> = {
  men: "man",
  women: "woman",
  children: "child",
  feet: "foot",
  teeth: "tooth",
  mice: "mouse",
  geese: "goose",
  oxen: "ox",
  people: "person",
  sheep: "sheep",
  cattle: "cow",
  dice: "die",
  lice: "louse",
};

/**
 * A word and the singular forms it may be a plural of, in English or Spanish. Two words match
 * when their forms share one: "churches" {churches, churche, church}, "church" {church}. Only
 * endings are undone, so a wrong guess ("bus" -> "bu") meets no real word.
 */
export function wordForms(word: string): string[] {
  const out = [word];
  const irregular = IRREGULAR[word];
  if (irregular) out.push(irregular);
  if (word.length < 3) return out;
  if (word.endsWith("s") && !word.endsWith("ss") && !word.endsWith("us") && !word.endsWith("is")) out.push(word.slice(0, -1));
  if (word.length > 3 && word.endsWith("es")) out.push(word.slice(0, -2)); // churches, mujeres, reyes, heroes
  if (word.length > 4 && word.endsWith("ies")) out.push(`${word.slice(0, -3)}y`); // ladies
  if (word.length > 4 && word.endsWith("ves")) out.push(`${word.slice(0, -3)}f`, `${word.slice(0, -3)}fe`); // wolves, knives
  if (word.length > 4 && word.endsWith("ces")) out.push(`${word.slice(0, -3)}z`); // luces, peces
  return out;
}

/** A text prepared for many phrase look-ups: each word form -> the positions where it occurs. */
export class WordIndex {
  readonly words: string[];
  private readonly forms = new Map<string, number[]>();

  constructor(text: string) {
    this.words = tokenize(text);
    this.words.forEach((w, i) => {
      for (const f of wordForms(w)) {
        const at = this.forms.get(f);
        if (at) {
          if (at[at.length - 1] !== i) at.push(i);
        } else this.forms.set(f, [i]);
      }
    });
  }

  /** Positions where the word (in any of its forms) occurs. */
  positionsOf(word: string): number[] {
    const seen = new Set<number>();
    for (const f of wordForms(word)) for (const i of this.forms.get(f) ?? []) seen.add(i);
    return [...seen].sort((a, b) => a - b);
  }

  /** Start positions of the phrase ("coat of arms" also as "coats of arms"). */
  find(phrase: string | string[]): number[] {
    const parts = typeof phrase === "string" ? tokenize(phrase) : phrase;
    if (parts.length === 0) return [];
    const rest = parts.slice(1).map((p) => new Set(wordForms(p)));
    return this.positionsOf(parts[0]!).filter((start) =>
      rest.every((forms, k) => {
        const w = this.words[start + 1 + k];
        return w !== undefined && wordForms(w).some((f) => forms.has(f));
      }),
    );
  }

  has(phrase: string | string[]): boolean {
    return this.find(phrase).length > 0;
  }
}
