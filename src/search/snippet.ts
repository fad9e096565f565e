/**
 * Snippets: part of a description with the matched words marked. Private-use characters mark the
 * matches, so formatting can escape everything else and then turn them into tags; a description
 * that holds those characters itself shows them as U+FFFD (unmarkedText).
 */
export const HIT_OPEN = "\uE000";
export const HIT_CLOSE = "\uE001";

/** The text with the two mark characters replaced by U+FFFD, one for one (same length and offsets). */
export function unmarkedText(text: string): string {
  return text.replace(/[\uE000\uE001]/g, "\uFFFD");
}
/** Words in a snippet (FTS5's snippet() token count; the same window on PostgreSQL). */
export const SNIPPET_TOKENS = 32;
/** Marks a snippet cut inside the text. */
export const ELLIPSIS = "…";

/** A snippet as HTML: text escaped, matches in <mark>…</mark>. */
export function snippetHtml(snippet: string): string {
  return snippet
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(new RegExp(HIT_OPEN, "g"), "<mark>")
    .replace(new RegExp(HIT_CLOSE, "g"), "</mark>");
}

/** A snippet as plain text, matches wrapped in `open`/`close` (e.g. terminal bold). */
export function snippetText(snippet: string, open: string, close: string): string {
  return snippet.replace(new RegExp(HIT_OPEN, "g"), open).replace(new RegExp(HIT_CLOSE, "g"), close);
}

const WORD = /[\p{L}\p{N}\p{M}]+/gu;

/**
 * The `tokens`-word window of a whole marked text (PostgreSQL's ts_headline with HighlightAll)
 * that holds the most marked words (the earliest of equals, moved to put them in its middle), as
 * FTS5's snippet() picks one: from
 * the start of its first word to the end of its last (to the text's ends when the window reaches
 * them), with an ellipsis where it cuts the text. Markers cut in two are closed or reopened.
 */
export function snippetWindow(marked: string, tokens = SNIPPET_TOKENS): string {
  const words: { start: number; end: number; hit: boolean }[] = [];
  let inside = false;
  let last = 0;
  for (const m of marked.matchAll(WORD)) {
    const between = marked.slice(last, m.index);
    const open = between.lastIndexOf(HIT_OPEN);
    const close = between.lastIndexOf(HIT_CLOSE);
    if (open > close) inside = true;
    else if (close > open) inside = false;
    words.push({ start: m.index, end: m.index + m[0].length, hit: inside });
    last = m.index + m[0].length;
  }
  if (words.length <= tokens) return marked;
  let best = 0;
  let bestHits = -1;
  let hits = 0;
  for (let i = 0; i < words.length; i++) {
    if (words[i]!.hit) hits++;
    if (i >= tokens && words[i - tokens]!.hit) hits--;
    const first = i - tokens + 1;
    if (first >= 0 && hits > bestHits) {
      bestHits = hits;
      best = first;
    }
  }
  // The hits in the middle of the window, as FTS5 adjusts its start.
  if (bestHits > 0) {
    let firstHit = best;
    while (!words[firstHit]!.hit) firstHit++;
    let lastHit = best + tokens - 1;
    while (!words[lastHit]!.hit) lastHit--;
    best = Math.max(0, Math.min(words.length - tokens, firstHit - Math.floor((tokens - (lastHit - firstHit + 1)) / 2)));
  }
  const atStart = best === 0;
  const atEnd = best + tokens >= words.length;
  // A marker right before the first word or right after the last belongs to the window.
  let from = atStart ? 0 : words[best]!.start;
  if (!atStart && marked[from - 1] === HIT_OPEN) from--;
  let to = atEnd ? marked.length : words[best + tokens - 1]!.end;
  if (!atEnd && marked[to] === HIT_CLOSE) to++;
  let text = marked.slice(from, to);
  // A match cut in two: close it at the end, or reopen it at the start.
  const firstClose = text.indexOf(HIT_CLOSE);
  if (firstClose >= 0 && !text.slice(0, firstClose).includes(HIT_OPEN)) text = HIT_OPEN + text;
  if (text.lastIndexOf(HIT_OPEN) > text.lastIndexOf(HIT_CLOSE)) text += HIT_CLOSE;
  return `${atStart ? "" : ELLIPSIS}${text}${atEnd ? "" : ELLIPSIS}`;
}
