/**
 * FTS5's snippet() computed in JavaScript from a description and the query's phrases, so that a
 * page's snippets need no second MATCH: on SQLite, evaluating the MATCH again for a page's 10 rows
 * cost 0.42 ms for two common words over 20,000 works (ranking every match: 0.93 ms), whatever the
 * rowid constraint, because FTS5 loads each phrase's doclist first; reading the 10 texts and marking
 * them here costs 0.16 ms. This is a port of fts5SnippetFunction and fts5HighlightCb (SQLite 3.53, ext/fts5/fts5_aux.c)
 * over the unicode61 tokenizer with remove_diacritics 2 (the index's tokenizer,
 * prisma/migrations/…_search_fts): the same window, the same sentence-start preference and the
 * same marks; test/search/fts5-snippet.test.ts checks it against SQLite's snippet() on random texts
 * and queries, and its tokens against SQLite's for every letter of the Latin, Greek and Cyrillic
 * blocks. SQLite's character tables are older than JavaScript's (Unicode 6.1), so in scripts whose
 * letters or case pairs came later (Cherokee, Georgian capitals, …) a word may be marked
 * differently; which works match, and their order, never depend on this.
 */
import type { Term } from "./fts-query.js";
import { unmarkedText } from "./snippet.js";

/** A query phrase as the index sees it: its words' folded tokens, the last one a prefix when `prefix`. */
export interface SnippetPhrase {
  readonly tokens: readonly string[];
  readonly prefix: boolean;
}

export interface SnippetMarks {
  open: string;
  close: string;
  ellipsis: string;
  /** Tokens in the window (snippet()'s fifth argument). */
  tokens: number;
}

interface Token {
  start: number;
  end: number;
  folded: string;
}

// unicode61's default token characters: the categories L*, N* and Co.
const TOKEN_CHAR = /[\p{L}\p{N}\p{Co}]/u;

/** sqlite3Fts5UnicodeIsdiacritic: the combining marks unicode61 lets continue (never start) a token. */
function isDiacritic(c: number): boolean {
  if (c < 768 || c > 817) return false;
  return c < 800 ? ((0x08029fdf >>> (c - 768)) & 1) === 1 : ((0x000361f8 >>> (c - 800)) & 1) === 1;
}

const isAsciiAlnum = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);

const folded = new Map<string, string>();
/** Where SQLite's tables differ from that rule: dotless i is not folded to i, and "ǡ" (a, dot, macron) keeps its marks. */
const KEPT_AS_IS: Record<string, string> = { ı: "ı", ǡ: "ǡ", Ǡ: "ǡ" };
/**
 * One character as sqlite3Fts5UnicodeFold(c, 2) leaves it: case folded one character at a time
 * (so "ς" and "σ", "ſ" and "s" are one letter, as in Unicode's case folding), and a Latin letter's
 * diacritics removed ("é" is "e"); other scripts keep theirs ("й" stays, as SQLite keeps it).
 */
function foldChar(c: string): string {
  let f = folded.get(c);
  if (f !== undefined) return f;
  const kept = KEPT_AS_IS[c];
  if (kept !== undefined) {
    folded.set(c, kept);
    return kept;
  }
  const upper = c.toUpperCase();
  f = [...upper].length === 1 ? upper.toLowerCase() : c.toLowerCase();
  const parts = f.normalize("NFD");
  if (/^[a-z]\p{M}+$/u.test(parts)) f = parts[0]!;
  else if (/^\p{M}+$/u.test(f)) f = "";
  folded.set(c, f);
  return f;
}

/** A token's folded form: lower case, Latin diacritics removed (sqlite3Fts5UnicodeFold with remove_diacritics 2). */
function fold(token: string, ascii: boolean): string {
  if (ascii) return token.toLowerCase();
  let out = "";
  for (const c of token) out += foldChar(c);
  return out;
}

/** The unicode61 tokens of `text`: their UTF-16 offsets and folded forms. */
export function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    // Separators up to the next token character.
    let c = text.codePointAt(i)!;
    if (c < 128 ? !isAsciiAlnum(c) : !TOKEN_CHAR.test(String.fromCodePoint(c))) {
      i += c > 0xffff ? 2 : 1;
      continue;
    }
    const start = i;
    let ascii = true;
    while (i < n) {
      c = text.codePointAt(i)!;
      if (c < 128) {
        if (!isAsciiAlnum(c)) break;
        i++;
        continue;
      }
      if (!isDiacritic(c) && !TOKEN_CHAR.test(String.fromCodePoint(c))) break;
      ascii = false;
      i += c > 0xffff ? 2 : 1;
    }
    out.push({ start, end: i, folded: fold(text.slice(start, i), ascii) });
  }
  return out;
}

/**
 * The phrases FTS5 would mark for wanted terms, in the order the MATCH expression holds them
 * (renderFtsQuery: wanted terms first; excluded ones match nothing in a hit). `terms` are the
 * terms the MATCH was rendered from, implied prefixes already resolved.
 */
export function snippetPhrases(terms: readonly Term[]): SnippetPhrase[] {
  return terms
    .filter((t) => !t.negated)
    .map((t) => ({ tokens: tokenize(t.words.join(" ")).map((x) => x.folded), prefix: !!t.prefix }))
    .filter((p) => p.tokens.length > 0);
}

interface Instance {
  phrase: number;
  offset: number;
}

/** Every phrase instance in the text, by position then phrase (xInst's order). */
function instances(tokens: readonly Token[], phrases: readonly SnippetPhrase[]): Instance[] {
  const out: Instance[] = [];
  for (let at = 0; at < tokens.length; at++) {
    for (let p = 0; p < phrases.length; p++) {
      const phrase = phrases[p]!;
      const n = phrase.tokens.length;
      if (at + n > tokens.length) continue;
      let ok = true;
      for (let k = 0; k < n && ok; k++) {
        const doc = tokens[at + k]!.folded;
        const want = phrase.tokens[k]!;
        ok = k === n - 1 && phrase.prefix ? doc.startsWith(want) : doc === want;
      }
      if (ok) out.push({ phrase: p, offset: at });
    }
  }
  return out;
}

/** First token of each sentence: token 0, and each token after whitespace that follows '.' or ':' (fts5SentenceFinderCb). */
function sentenceStarts(text: string, tokens: readonly Token[]): number[] {
  const out: number[] = [];
  for (let pos = 0; pos < tokens.length; pos++) {
    if (pos === 0) {
      out.push(0);
      continue;
    }
    const start = tokens[pos]!.start;
    let i = start - 1;
    let c = "";
    for (; i >= 0; i--) {
      c = text[i]!;
      if (c !== " " && c !== "\t" && c !== "\n" && c !== "\r") break;
    }
    if (i !== start - 1 && (c === "." || c === ":")) out.push(pos);
  }
  return out;
}

/**
 * fts5SnippetScore of the window of `nToken` tokens from `from`, for starts that never move back:
 * 1000 for each phrase's first instance in the window and 1 for each further one, and the start
 * moved to put the window's instances in the middle (C's integer division truncates). The
 * window's instances are a slice of `inst` (sorted by offset), kept with two pointers and a count
 * per phrase.
 */
function windowScorer(inst: readonly Instance[], phrases: number, nToken: number, nDoc: number, size: (p: number) => number) {
  const count = new Int32Array(phrases);
  let lo = 0;
  let hi = 0;
  let distinct = 0;
  let last = -Infinity;
  return (from: number): { score: number; adjusted: number } => {
    if (from < last) throw new Error("windowScorer: a window start moved back");
    last = from;
    for (; hi < inst.length && inst[hi]!.offset < from + nToken; hi++) if (count[inst[hi]!.phrase]!++ === 0) distinct++;
    for (; lo < hi && inst[lo]!.offset < from; lo++) if (--count[inst[lo]!.phrase]! === 0) distinct--;
    if (lo === hi) return { score: 0, adjusted: clampWindow(-1 - Math.trunc((nToken - 1) / 2), nToken, nDoc) };
    const first = inst[lo]!.offset;
    const end = inst[hi - 1]!.offset + size(inst[hi - 1]!.phrase);
    return { score: 1000 * distinct + (hi - lo - distinct), adjusted: clampWindow(first - Math.trunc((nToken - (end - first)) / 2), nToken, nDoc) };
  };
}

function clampWindow(start: number, nToken: number, nDoc: number): number {
  let adjusted = start;
  if (adjusted + nToken > nDoc) adjusted = nDoc - nToken;
  if (adjusted < 0) adjusted = 0;
  return adjusted;
}

/** snippet(table, column, open, close, ellipsis, tokens) for a row whose column holds `text`. */
export function fts5Snippet(text: string, phrases: readonly SnippetPhrase[], marks: SnippetMarks): string {
  const tokens = tokenize(text);
  const nDoc = tokens.length;
  const nToken = marks.tokens;
  const inst = instances(tokens, phrases);
  const size = (p: number) => phrases[p]!.tokens.length;

  // fts5SnippetScore, for the window starting at each instance, and at the start of its sentence.
  // Both starts only move forward, so each has its own sliding window: linear in the instances,
  // where scoring every window over every instance (as SQLite does) took seconds for a long text
  // full of matches.
  const atInstance = windowScorer(inst, phrases.length, nToken, nDoc, size);
  const atSentence = windowScorer(inst, phrases.length, nToken, nDoc, size);
  let best = 0;
  let bestScore = 0;
  const starts = sentenceStarts(text, tokens);
  let j = 0;
  for (const { offset } of inst) {
    const here = atInstance(offset);
    if (here.score > bestScore) {
      bestScore = here.score;
      best = here.adjusted;
    }
    // A window from the start of the instance's sentence wins ties and near-ties.
    if (starts.length && nDoc > nToken) {
      while (j < starts.length - 1 && starts[j + 1]! <= offset) j++;
      const sentence = starts[j]!;
      if (sentence < offset) {
        const s = atSentence(sentence).score + (sentence === 0 ? 120 : 100);
        if (s > bestScore) {
          bestScore = s;
          best = sentence;
        }
      }
    }
  }

  // What is copied out: the text with any mark characters of its own made plain (same offsets).
  const shown = unmarkedText(text);

  // fts5CInstIter: instances merged where they overlap.
  let nextInst = 0;
  let iterStart = -1;
  let iterEnd = -1;
  const advance = () => {
    iterStart = -1;
    iterEnd = -1;
    while (nextInst < inst.length) {
      const { phrase, offset } = inst[nextInst]!;
      const end = offset - 1 + size(phrase);
      if (iterStart < 0) {
        iterStart = offset;
        iterEnd = end;
      } else if (offset <= iterEnd) {
        if (end > iterEnd) iterEnd = end;
      } else break;
      nextInst++;
    }
  };
  advance();
  const rangeStart = best;
  const rangeEnd = best + nToken - 1;
  let out = best > 0 ? marks.ellipsis : "";
  while (iterStart >= 0 && iterStart < best) advance();

  // fts5HighlightCb over the window's tokens.
  let copied = 0;
  let open = false;
  for (let pos = rangeStart; pos <= rangeEnd && pos < nDoc; pos++) {
    const { start, end } = tokens[pos]!;
    if (rangeStart && pos === rangeStart) copied = start;
    if (open && (pos <= iterStart || iterStart < 0) && start > copied) {
      out += marks.close;
      open = false;
    }
    if (pos === iterStart && !open) {
      out += shown.slice(copied, start) + marks.open;
      copied = start;
      open = true;
    }
    if (pos === iterEnd) {
      if (!open) {
        out += marks.open;
        open = true;
      }
      out += shown.slice(copied, end);
      copied = end;
      advance();
    }
    if (pos === rangeEnd) {
      if (open) {
        if (iterStart >= 0 && pos >= iterStart) {
          out += shown.slice(copied, end);
          copied = end;
        }
        out += marks.close;
        open = false;
      }
      out += shown.slice(copied, end);
      copied = end;
    }
  }
  if (open) out += marks.close;
  return out + (rangeEnd >= nDoc - 1 ? shown.slice(copied) : marks.ellipsis);
}
