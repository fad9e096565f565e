/**
 * Search form of a label or query: accents removed, lower case, words split on anything that is
 * not a letter or digit, joined by single spaces. "Francisco José de Goya" -> "francisco jose de goya".
 */
export function normalizeWords(text: string): string {
  return text
    .normalize("NFKD")
    .replace(/\p{M}+/gu, "")
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter(Boolean)
    .join(" ");
}

/** The stored form: padded with a space on each side, so a whole-word match is `contains " word "`. */
export function searchForm(text: string): string {
  const words = normalizeWords(text);
  return words ? ` ${words} ` : "";
}
