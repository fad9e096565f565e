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
 * The Commons page of a file, as Commons writes it (`https://commons.wikimedia.org/wiki/File:Goya,_Saturno.jpg`):
 * spaces as underscores, then MediaWiki's wfUrlencode (PHP's urlencode, with `; @ $ ! * ( ) , / ~ :`
 * left as they are and `'` as `%27`), so that the address joins with the ones Commons gave
 * (descriptionUrl).
 */
export function commonsFilePageUrl(fileTitle: string): string {
  const encoded = encodeURIComponent(fileTitle.replace(/ /g, "_"))
    .replace(/'/g, "%27")
    .replace(/%3B|%40|%24|%2C|%2F|%3A/gi, (c) => decodeURIComponent(c));
  return `https://commons.wikimedia.org/wiki/${encoded}`;
}
