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
