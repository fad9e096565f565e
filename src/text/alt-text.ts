import { sentenceEnds } from "./sentences.js";

/** What an artwork's alt text is made from (its descriptions' review states decide which text). */
export interface AltTextSource {
  /** The current description, or null when the work has none (then there is no alt text). */
  current: { text: string; rejected: boolean } | null;
  /** The newest description that is not rejected; needed only when the current one is. */
  newestNotRejected: string | null;
  title: string | null;
  /** Creator labels in attribution order. */
  creators: (string | null)[];
  year: number | null;
  /** The date as Wikidata gives it ("18th century", "1790s"; formatInception); else the year is used. */
  date?: string | null;
}

/**
 * An artwork's alt text, the one rule GraphQL and export share: the current description, unless
 * a person rejected it; then the newest description nobody rejected; else (or when that text has
 * no words) a text made from the title, creators and year. A work without a description has none (null).
 */
export function artworkAltText(s: AltTextSource, maxChars: number): string | null {
  if (!s.current) return null;
  // A text with no words (a model's empty answer stored before 2026-12-08) says nothing: alt=""
  // would tell a screen reader the image is decorative.
  const said = (t: string | null) => (t !== null && /[\p{L}\p{N}]/u.test(t) ? t : null);
  const text = !s.current.rejected ? said(s.current.text) : said(s.newestNotRejected);
  return altText(text ?? titleText(s), maxChars);
}

/** "The Sleep of Reason Produces Monsters by Francisco Goya, 1799"; "Untitled work" without a title. */
export function titleText(s: Pick<AltTextSource, "title" | "creators" | "year" | "date">): string {
  const names = s.creators.filter((c): c is string => !!c?.trim()).map((c) => c.trim());
  const by = names.length === 0 ? "" : ` by ${names.length === 1 ? names[0] : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`}`;
  const when = s.date ?? (s.year != null ? String(s.year) : null);
  return `${s.title?.trim() || "Untitled work"}${by}${when ? `, ${when}` : ""}`;
}

/**
 * Alt text from a description: the whole text when it fits in `maxChars`, else as many whole
 * sentences as fit, else (one long first sentence) the words that fit, ending with "…".
 * Whitespace runs become single spaces. Pure, so GraphQL and export give the same text.
 */
export function altText(text: string, maxChars: number): string {
  const clean = text.replace(/\s+/g, " ").trim();
  if (clean.length <= maxChars) return clean;
  let cut = 0;
  for (const end of sentenceEnds(clean)) {
    if (end > maxChars) break;
    cut = end;
  }
  if (cut > 0) return clean.slice(0, cut).trimEnd();
  const room = headOf(clean, Math.max(0, maxChars - 1));
  const lastSpace = room.lastIndexOf(" ");
  const words = (lastSpace > 0 ? room.slice(0, lastSpace) : room).replace(/[\s,;:–—-]+$/u, "");
  return `${words}…`;
}

/**
 * The first `max` UTF-16 units of a text, one fewer when the cut would split a character in two
 * (an emoji, a rare CJK character: half of it shows as U+FFFD).
 */
export function headOf(text: string, max: number): string {
  const head = text.slice(0, max);
  return /[\uD800-\uDBFF]$/.test(head) ? head.slice(0, -1) : head;
}
