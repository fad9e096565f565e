import { BRUSH_TERMS, PAINTING_TERMS, PAPER_TERMS, workKind } from "../medium-vocabulary.js";
import { tokenize, WordIndex, wordForms } from "../text-match.js";
import type { CheckOutcome, QualityInput } from "../types.js";

/** A medium word after one of these (within three words) names another work: "a print after a painting". */
const REFERENCE_BEFORE = new Set(
  "after for from like resembling reproducing reproduces reproduced reproduction copy copies copied study studies based into version tras segun para copia como estudio version basado basada".split(
    " ",
  ),
);
/** After the medium word: "hanging on the wall", "depicted in the print". */
const OBJECT_AFTER = new Set("hang hanging hangs hung wall walls framed colgado colgada pared".split(" "));
const PREPOSITIONS = new Set("in within inside of for on en de para dentro".split(" "));
const DETERMINERS = new Set("a an the this that these those his her its their s one el la los las un una este esta ese esa su".split(" "));
/** Before "painting" or "drawing", these make it a noun: "this oil painting a man…" is no verb. */
const NOUN_MODIFIERS = new Set("oil large small famous great dark black religious early late whole entire preparatory".split(" "));
const COPULAS = new Set("is was are were es era be been".split(" "));
/** "painting a wall", "drawing the viewer's eye": a verb, not the work. */
const VERB_OBJECT = new Set("a an the his her their its attention eye eyes gaze viewer viewers water near closer back upon".split(" "));

interface Mention {
  term: string;
  at: number;
  end: number;
}

/** Terms as words, longest first, so "oil on canvas" is one mention, not also "canvas". */
type Terms = { term: string; words: string[] }[];
const termsOf = (terms: string[]): Terms => terms.map((term) => ({ term, words: tokenize(term) })).sort((a, b) => b.words.length - a.words.length);
const TERMS = {
  painting: termsOf(PAINTING_TERMS),
  paintingOrBrush: termsOf([...PAINTING_TERMS, ...BRUSH_TERMS]),
  paper: termsOf(PAPER_TERMS),
};
const wordsOf = (terms: string[]) => new Set(terms.flatMap((t) => tokenize(t)).filter((w) => w !== "on" && w !== "oil"));
const RIGHT_WORDS = { painting: wordsOf(PAINTING_TERMS), paper: wordsOf(PAPER_TERMS) };

function mentions(index: WordIndex, terms: Terms): Mention[] {
  const out: Mention[] = [];
  const taken = new Set<number>();
  for (const { term, words } of terms) {
    const len = words.length;
    for (const at of index.find(words)) {
      if (taken.has(at)) continue;
      for (let k = at; k < at + len; k++) taken.add(k);
      out.push({ term, at, end: at + len });
    }
  }
  return out;
}

const isAny = (word: string | undefined, set: Set<string>) => word !== undefined && wordForms(word).some((f) => set.has(f));

/**
 * Whether a mention of the wrong kind calls the work itself that kind, rather than naming another
 * work (a print after a painting, a study for a painting), an object in the picture (a painting on
 * the wall, the painting depicted in the print), a verb (painting a wall, drawing the eye), a
 * quality (sketch-like, an oil sketch) or a pattern (a cuadros).
 */
function isClaim(words: string[], m: Mention, rightTerms: Set<string>, textNamesRightKind: boolean): boolean {
  const before = words.slice(Math.max(0, m.at - 3), m.at);
  const prev = words[m.at - 1];
  const next = words[m.end];
  if (before.some((w) => isAny(w, REFERENCE_BEFORE))) return false;
  const after = words.slice(m.end, m.end + 4);
  if (after.some((w) => isAny(w, OBJECT_AFTER))) return false;
  // "... depicted in the print", "a drawing for this painting", "a print of this painting".
  for (let k = 0; k < after.length; k++) {
    if (!isAny(after[k], PREPOSITIONS)) continue;
    const target = after[k + 1] && isAny(after[k + 1], DETERMINERS) ? after[k + 2] : after[k + 1];
    if (target && isAny(target, rightTerms)) return false;
  }
  if (m.term === "sketch" && (prev === "oil" || next === "like")) return false;
  if ((m.term === "painting" || m.term === "drawing") && !isAny(prev, DETERMINERS) && !isAny(prev, NOUN_MODIFIERS) && isAny(next, VERB_OBJECT)) return false;
  if (m.term === "drawing" && !isAny(prev, DETERMINERS)) return false; // "the figures' drawing" is draughtsmanship at best
  if (m.term === "drawing" && next === "of") return false; // "the drawing of the figures": draughtsmanship or subject, undecidable
  if (m.term === "cuadro" && (prev === "a" || prev === "de")) return false; // "a cuadros": checked
  // "a painting" in a text that calls the work a print elsewhere is a painting in the picture, unless "is a painting".
  if ((prev === "a" || prev === "an" || prev === "un" || prev === "una") && textNamesRightKind && !isAny(words[m.at - 2], COPULAS)) return false;
  return true;
}

/**
 * MEDIUM_CONFLICT: the text calls a print, etching, aquatint or drawing a painting, or a
 * painting a print or drawing, judged against the work's P31 and P186. Value: the number of such
 * claims; one flags.
 */
export function checkMediumConflict(input: QualityInput): CheckOutcome {
  const kind = workKind(input.work?.instanceOf, input.work?.materials);
  if (!kind) {
    return { flag: "MEDIUM_CONFLICT", flagged: false, applicable: false, severity: 0, checks: [{ name: "mediumConflict", value: 0, detail: "the work's kind is unknown" }] };
  }
  const sentences = input.text.split(/(?<=[.!?…;:])\s+/).map((s) => new WordIndex(s));
  const wrong = kind === "painting" ? TERMS.paper : kind === "print" ? TERMS.paintingOrBrush : TERMS.painting;
  const right = kind === "painting" ? TERMS.painting : TERMS.paper;
  const rightWords = kind === "painting" ? RIGHT_WORDS.painting : RIGHT_WORDS.paper;
  const namesRight = sentences.some((index) => mentions(index, right).length > 0);
  // Sentence by sentence: "… an oil painting. The woman …" is no verb "painting the".
  const claims = sentences.flatMap((index) => mentions(index, wrong).filter((m) => isClaim(index.words, m, rightWords, namesRight)));
  const flagged = claims.length > 0;
  const terms = [...new Set(claims.map((c) => c.term))];
  return {
    flag: "MEDIUM_CONFLICT",
    flagged,
    applicable: true,
    severity: flagged ? 1 : 0,
    checks: [
      {
        name: "mediumConflict",
        value: claims.length,
        detail: flagged ? `the work is a ${kind}; the text says ${terms.map((t) => `"${t}"`).join(", ")}` : `the work is a ${kind}; no conflict`,
      },
    ],
  };
}
