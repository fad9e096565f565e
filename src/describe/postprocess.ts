/**
 * Text after decoding: the experiment's complaints were prose cut off mid-sentence at the token
 * limit and markdown sections appended after it ("### Analysis and Description: 1. **Subjects**…").
 */

const WORD = /[\p{L}\p{N}]+(?:['’-][\p{L}\p{N}]+)*/gu;
/** A sentence end: . ! or ? (or an ellipsis), then optional closing quotes or brackets. */
const SENTENCE_END = /[.!?…]["'”’)\]]*/g;
/** A bare list marker ("1." or "a.") ends no sentence. */
const LIST_MARKER_LINE = /(^|\n)\s*(\d{1,2}|[a-z])\.\s*$/i;

export function countWords(text: string): number {
  return text.match(WORD)?.length ?? 0;
}

export function endsSentence(text: string): boolean {
  const t = text.trimEnd();
  if (!/[.!?…]["'”’)\]]*$/.test(t)) return false;
  return !LIST_MARKER_LINE.test(t);
}

/**
 * Cuts `text` after its last complete sentence. Returns it unchanged when it already ends one, or
 * when it holds no complete sentence at all (there is nothing better to keep).
 */
export function trimToLastSentence(text: string): { text: string; trimmed: boolean } {
  const t = text.trimEnd();
  if (t === "" || endsSentence(t)) return { text: t, trimmed: false };
  let cut = -1;
  for (const m of t.matchAll(SENTENCE_END)) {
    const end = m.index + m[0].length;
    // A sentence end is followed by whitespace (or the end); "3.5" or "e.g" are not ends.
    if (end < t.length && !/\s/.test(t[end]!)) continue;
    if (LIST_MARKER_LINE.test(t.slice(0, end))) continue;
    cut = end;
  }
  if (cut <= 0) return { text: t, trimmed: false };
  return { text: t.slice(0, cut).trimEnd(), trimmed: true };
}

const HEADING = /^\s{0,3}#{1,6}\s+/;
const NUMBERED = /^\s*\d{1,2}[.)]\s+/;
const BULLET = /^\s*[-*+]\s+/;
/** A heading-like line that opens an appended analysis section. */
const SECTION_TITLE = /^\s{0,3}(#{1,6}\s*)?(\*\*|__)?\s*(detailed\s+)?(analysis|description|summary|breakdown|key elements)\b/i;

/**
 * Removes stray markdown: a section appended after the prose (a heading or an "Analysis"-style
 * title, usually with a numbered list) is dropped; remaining heading marks, list markers, bold and
 * italic markers are removed and lines are joined into prose.
 */
export function cleanMarkdown(text: string): string {
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  let prose = false;
  const kept: string[] = [];
  for (const line of lines) {
    const isSection = HEADING.test(line) || (SECTION_TITLE.test(line) && (/[:*_]\s*$/.test(line) || /^\s*#/.test(line)));
    const isList = NUMBERED.test(line) || BULLET.test(line);
    if (prose && isSection) break;
    kept.push(line);
    if (!isSection && !isList && line.trim() !== "") prose = true;
  }
  // An inline appended section: "...the sky. ### Analysis: 1. **Subjects**: ..."
  let joined = kept.join("\n");
  const inline = joined.search(/\s#{1,6}\s+\S/);
  if (inline > 0 && countWords(joined.slice(0, inline)) > 0) joined = joined.slice(0, inline);

  return joined
    .split("\n")
    .map((l) => l.replace(HEADING, "").replace(NUMBERED, "").replace(BULLET, ""))
    .join("\n")
    .replace(/(\*\*|__)(.+?)\1/g, "$2")
    .replace(/(\*\*|__)/g, "")
    .replace(/(^|[\s(])\*(\S(?:.*?\S)?)\*(?=[\s).,;:!?]|$)/g, "$1$2")
    .replace(/[ \t]*\n[ \t]*/g, " ")
    .replace(/[ \t]{2,}/g, " ")
    .trim();
}

export interface FinishedText {
  text: string;
  trimmed: boolean;
}

/** Line breaks other than LF: CR (alone or before LF), VT, FF, NEL, and the line and paragraph separators. */
const OTHER_BREAK = /\r\n?|[\u000B\u000C\u0085\u2028\u2029]/g;
/** C0 controls but tab and line feed, DEL, C1 controls, and the bidirectional overrides and isolates (as checkText refuses in a person's text). */
const CONTROL = /[\u0000-\u0008\u000E-\u001F\u007F-\u0084\u0086-\u009F\u202A-\u202E\u2066-\u2069]/g;

/**
 * The text without control characters: other line breaks made LF, the rest removed. A model's
 * tokens can decode to any byte (a small or synthetic model writes them); a person's text with
 * them is refused (checkText), so a stored description never holds them, whoever wrote it.
 */
export function withoutControls(text: string): string {
  return text.replace(OTHER_BREAK, "\n").replace(CONTROL, "");
}

/** The stored text: control characters removed, markdown cleaned (when asked), then trimmed to its last complete sentence. */
export function finishText(raw: string, options: { cleanMarkdown: boolean }): FinishedText {
  const visible = withoutControls(raw);
  const cleaned = options.cleanMarkdown ? cleanMarkdown(visible) : visible.trim();
  return trimToLastSentence(cleaned);
}
