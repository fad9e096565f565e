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
}

/**
 * An artwork's alt text, the one rule GraphQL and export share: the current description, unless
 * a person rejected it; then the newest description nobody rejected; else a text made from the
 * title, creators and year. A work without a description has none (null).
 */
export function artworkAltText(s: AltTextSource, maxChars: number): string | null {
  if (!s.current) return null;
  if (!s.current.rejected) return altText(s.current.text, maxChars);
  return altText(s.newestNotRejected ?? titleText(s), maxChars);
}

/** "The Sleep of Reason Produces Monsters by Francisco Goya, 1799"; "Untitled work" without a title. */
export function titleText(s: Pick<AltTextSource, "title" | "creators" | "year">): string {
  const names = s.creators.filter((c): c is string => !!c?.trim()).map((c) => c.trim());
  const by = names.length === 0 ? "" : ` by ${names.length === 1 ? names[0] : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`}`;
  return `${s.title?.trim() || "Untitled work"}${by}${s.year != null ? `, ${s.year}` : ""}`;
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
  const room = clean.slice(0, Math.max(0, maxChars - 1));
  const lastSpace = room.lastIndexOf(" ");
  const words = (lastSpace > 0 ? room.slice(0, lastSpace) : room).replace(/[\s,;:–—-]+$/u, "");
  return `${words}…`;
}

/**
 * Offsets just after each sentence end: ".", "!", "?" or "…" (with any closing quotes or brackets)
 * followed by a space and a capital, a digit or an opening quote, or by the end of the text.
 * A single capital before the dot is an initial ("J. M. W. Turner"), not an end.
 */
function* sentenceEnds(text: string): Generator<number> {
  const re = /[.!?…]+["'”’)\]]*(?= |$)/gu;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const end = m.index + m[0].length;
    if (end < text.length && !/^ ["'“‘(\[]?[\p{Lu}\p{N}]/u.test(text.slice(end, end + 3))) continue;
    if (m[0].startsWith(".") && /(^|[\s(])\p{Lu}$/u.test(text.slice(Math.max(0, m.index - 2), m.index))) continue;
    yield end;
  }
}
