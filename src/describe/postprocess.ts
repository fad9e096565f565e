/**
 * Text after decoding: the experiment's complaints were prose cut off mid-sentence at the token
 * limit and markdown sections appended after it ("### Analysis and Description: 1. **Subjects**…").
 */
import { withoutControls } from "../text/controls.js";
import { endsWithSentence, sentenceEnds } from "../text/sentences.js";

const WORD = /[\p{L}\p{N}]+(?:['’-][\p{L}\p{N}]+)*/gu;
/** A bare list marker ("1." or "a.") ends no sentence. */
const LIST_MARKER_LINE = /(^|\n)\s*(\d{1,2}|[a-z])\.\s*$/i;

/**
 * Whether `t` up to `end` is a bare list-marker line. A marker line is short: only its last 16
 * characters are read (a text with thousands of sentence ends stays linear).
 */
function endsListMarker(t: string, end: number): boolean {
  const tail = t.slice(Math.max(0, end - 16), end);
  return LIST_MARKER_LINE.test(tail) && (end <= 16 || tail.includes("\n"));
}

export function countWords(text: string): number {
  return text.match(WORD)?.length ?? 0;
}

/** Whether the text ends a sentence (src/text/sentences.ts: "St." or "c." at the end does not). */
export function endsSentence(text: string): boolean {
  const t = text.trimEnd();
  return endsWithSentence(t) && !endsListMarker(t, t.length);
}

/**
 * Cuts `text` after its last complete sentence. Returns it unchanged when it already ends one, or
 * when it holds no complete sentence at all (there is nothing better to keep).
 */
export function trimToLastSentence(text: string): { text: string; trimmed: boolean } {
  const t = text.trimEnd();
  if (t === "" || endsSentence(t)) return { text: t, trimmed: false };
  let cut = -1;
  for (const end of sentenceEnds(t)) if (!endsListMarker(t, end)) cut = end;
  if (cut <= 0) return { text: t, trimmed: false };
  return { text: t.slice(0, cut).trimEnd(), trimmed: true };
}

const HEADING = /^\s{0,3}#{1,6}\s+/;
const NUMBERED = /^\s*\d{1,2}[.)]\s+/;
const BULLET = /^\s*[-*+•]\s+/;
/** A heading-like line that opens an appended analysis section. */
const SECTION_TITLE = /^\s{0,3}(#{1,6}\s*)?(\*\*|__)?\s*(detailed\s+)?(analysis|description|summary|breakdown|key elements)\b/i;
/** A line that is only a bold label: "**Foreground:**", "__Details__:". */
const LABEL = /^(\*\*|__)[^*_\n]+\1:?$/;
const TABLE_ROW = /^\|.*\|$/;
/** A code fence, a horizontal rule, a table's header rule or heading marks alone: lines with no words to keep. */
const NO_WORDS = /^(```|~~~)|^#{1,6}$|^([-*_])(\s*\2){2,}$|^\|?:?-{3,}:?(\s*\|\s*:?-{3,}:?)*\s*\|?$/;
const QUOTE = /^\s*>\s?/;
/** An appended section inside a line: "... the sky. ### Analysis: ..." (one # only after a sentence end: "reads # 43" is no heading). */
const INLINE_SECTION = /(?<=[.!?…:]["'”’)\]]{0,3})\s+#{1,6}\s+\p{L}|\s#{2,6}\s+\p{L}/u;
const ENDS_PHRASE = /[.!?…:;,]["'”’)\]]*$/;
/** HTML tags (the ones a model writes: "<in plain prose>" is no tag), and entities (numeric ones as long as they name a character). */
const HTML_TAG = /<\/?(a|b|i|u|s|em|strong|small|mark|sub|sup|code|pre|kbd|br|hr|p|div|span|blockquote|ul|ol|li|dl|dt|dd|h[1-6]|img|table|thead|tbody|tr|th|td|figure|figcaption|center|font)(\s[^<>]*)?\/?>/gi;
const ENTITY = /&(amp|lt|gt|quot|apos|nbsp|#\d{1,7}|#x[0-9a-f]{1,6});/gi;
const NAMED: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: " " };

function decodeEntity(whole: string, name: string): string {
  const lower = name.toLowerCase();
  if (NAMED[lower]) return NAMED[lower];
  const code = lower.startsWith("#x") ? parseInt(lower.slice(2), 16) : parseInt(lower.slice(1), 10);
  return code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff) ? String.fromCodePoint(code) : whole;
}

/**
 * Removes stray markdown (and HTML): a section appended after the prose (a heading, a bold label,
 * an "Analysis"-style title or a table, usually with a list) is dropped, as is a heading before
 * it; code fences, rules and quote marks go; list markers go and a list's items are joined with
 * commas, ending with a full stop; bold, italic, links and tags keep only their words.
 */
export function cleanMarkdown(text: string): string {
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  let content = false;
  const titles: string[] = [];
  const kept: { text: string; list: boolean }[] = [];
  for (const raw of lines) {
    const line = raw.replace(QUOTE, "");
    const bare = line.trim();
    if (NO_WORDS.test(bare)) continue;
    const table = TABLE_ROW.test(bare);
    const isSection = HEADING.test(line) || LABEL.test(bare) || table || (SECTION_TITLE.test(line) && (/[:*_]$/.test(bare) || bare.startsWith("#")));
    if (content && isSection) break;
    if (bare === "") continue;
    if (isSection && !table) {
      // A heading over the prose is no part of it ("### Description of the Painting").
      titles.push(line.replace(HEADING, ""));
      continue;
    }
    const list = table || NUMBERED.test(line) || BULLET.test(line);
    const words = table
      ? line.split("|").map((c) => c.trim()).filter(Boolean).join(", ")
      : line.replace(NUMBERED, "").replace(BULLET, "");
    kept.push({ text: words.trim(), list });
    content = true;
  }
  // Only titles: their words are all there is.
  if (kept.length === 0) for (const t of titles) kept.push({ text: t.trim(), list: false });
  // A list's items become a phrase each: a comma between items, a full stop after the last.
  let joined = kept
    .map((k, i) => {
      if (!k.list || ENDS_PHRASE.test(k.text.replace(/(\*\*|__)$/, ""))) return k.text;
      return `${k.text}${kept[i + 1]?.list ? "," : "."}`;
    })
    .join("\n");
  // An inline appended section: "...the sky. ### Analysis: 1. **Subjects**: ..."
  const inline = joined.search(INLINE_SECTION);
  if (inline > 0 && countWords(joined.slice(0, inline)) > 0) joined = joined.slice(0, inline);

  return joined
    .replace(/!\[[^[\]\n]*\]\([^()\n]*\)/g, "")
    .replace(/\[([^[\]\n]+)\]\([^()\s]*\)/g, "$1")
    // A tag that breaks a line or a block leaves a space ("one.<br>Two", "one.</p>Two" are two sentences).
    .replace(HTML_TAG, (tag: string, name: string, _attributes: string | undefined, at: number, all: string) =>
      /^(br|hr|p|div|li|dt|dd|tr|td|th|h[1-6]|blockquote|figcaption)$/i.test(name) && !/^[\s.,;:!?]/.test(all.slice(at + tag.length, at + tag.length + 1)) ? " " : "",
    )
    .replace(ENTITY, decodeEntity)
    // Spans are bounded (300 characters): an unclosed marker must not make each one scan the rest of the text.
    .replace(/(\*\*|__)([^\n]{1,300}?)\1/g, "$2")
    .replace(/(\*\*|__)/g, "")
    .replace(/(^|[\s(])\*(\S(?:[^\n]{0,300}?\S)?)\*(?=[\s).,;:!?]|$)/g, "$1$2")
    .replace(/(^|[\s(])_(\S(?:[^_\n]{0,300}?\S)?)_(?=[\s).,;:!?]|$)/g, "$1$2")
    .replace(/`([^`\n]+)`/g, "$1")
    .split("\n")
    .map((l) => l.trim())
    .join(" ")
    .replace(/[ \t]{2,}/g, " ")
    .trim();
}

export interface FinishedText {
  text: string;
  trimmed: boolean;
}

/** A chat template's role name the model wrote before its answer. */
const ROLE_PREFIX = /^\s*(assistant|user)\s*:\s*/i;
/** The model's own turn after an echoed one ("User: …\nAssistant: …"): what follows the last. */
const ASSISTANT_TURN = /(?:^|\n)[ \t]*assistant[ \t]*:[ \t]*/gi;

function withoutTurns(text: string): string {
  let after = -1;
  for (const m of text.matchAll(ASSISTANT_TURN)) after = m.index + m[0].length;
  return (after >= 0 ? text.slice(after) : text).replace(ROLE_PREFIX, "");
}

/**
 * The text with each sentence that repeats the one before it (the same words, case aside)
 * removed, and how many went: a beam that loops ("It is dark. It is dark. It is dark.") says it once.
 */
export function withoutRepeatedSentences(text: string): { text: string; removed: number } {
  const kept: string[] = [];
  let removed = 0;
  let previous = "";
  let start = 0;
  const take = (end: number) => {
    const sentence = text.slice(start, end);
    start = end;
    const key = (sentence.match(WORD) ?? []).join(" ").toLowerCase();
    if (key !== "" && key === previous) return void removed++;
    kept.push(sentence);
    if (key !== "") previous = key;
  };
  for (const end of sentenceEnds(text)) take(end);
  // What follows the last end is no sentence: kept, for the trim to remove (and say so).
  kept.push(text.slice(start));
  return { text: removed ? kept.join("").trim() : text, removed };
}

/**
 * What a model's text holds only by accident: U+FFFD (a character whose bytes the decoder got only
 * part of), and the invisible zero-width space, word joiner, byte-order mark and soft hyphen (a
 * screen reader or a search may stumble on them; "ca\u200Bt" matches no "cat"). The zero-width
 * joiner and non-joiner stay: some scripts and emoji need them.
 */
const DECODING_DEBRIS = /[\uFFFD\u200B\u2060\uFEFF\u00AD]/g;

/** The text without control characters (withoutControls) and decoding debris. */
function printable(text: string): string {
  return withoutControls(text).replace(DECODING_DEBRIS, "");
}

/**
 * The stored text: control characters, decoding debris (U+FFFD, zero-width spaces) and a leading
 * role name ("Assistant:") removed, markdown
 * cleaned (when asked; the entities it decodes are checked for controls again), a sentence that
 * repeats the one before it removed, then trimmed to its last complete sentence.
 */
export function finishText(raw: string, options: { cleanMarkdown: boolean }): FinishedText {
  const visible = withoutTurns(printable(raw));
  // Again after the cleanup: the entities it decodes may name controls or debris ("ca&#8203;t").
  const cleaned = options.cleanMarkdown ? printable(cleanMarkdown(visible)) : visible.trim();
  return trimToLastSentence(withoutRepeatedSentences(cleaned).text);
}
