/**
 * `value` when it is an absolute http(s) URL, else null: anything else (`javascript:`, `data:`, a bare
 * path, a malformed address) is dropped. For URLs from an upstream answer, before they are stored or
 * become a link.
 */
export function webUrl(value: string | null | undefined): string | null {
  if (!value || !URL.canParse(value)) return null;
  const protocol = new URL(value).protocol;
  return protocol === "https:" || protocol === "http:" ? value : null;
}

/**
 * The Commons page of a file, as Commons writes it (`https://commons.wikimedia.org/wiki/File:Goya_x.jpg`):
 * spaces as underscores, every other character that needs it percent-encoded, but the namespace's
 * colon kept, so that the address joins with the ones Commons gave (descriptionUrl).
 */
export function commonsFilePageUrl(fileTitle: string): string {
  return `https://commons.wikimedia.org/wiki/${encodeURIComponent(fileTitle.replace(/ /g, "_")).replace(/%3A/gi, ":")}`;
}
