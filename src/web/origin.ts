/**
 * Cross-site request forgery, refused by where a form POST comes from. The rule:
 * - `Sec-Fetch-Site` present and not `same-origin` (or `none`, a typed request): refused;
 * - `Origin` present: it must be this server's own origin (scheme, Host header, port);
 *   `Origin: null` (sandboxed frames, some redirects) is refused;
 * - `Origin` absent: `Referer` must be present and its origin must be this server's;
 * - both absent: refused (every browser that runs this UI sends one of them on a form POST).
 * Pure.
 */

export interface PostHeaders {
  origin?: string;
  referer?: string;
  host?: string;
  secFetchSite?: string;
}

export type OriginVerdict = { ok: true } | { ok: false; reason: string };

export function checkPostOrigin(h: PostHeaders, scheme: "http" | "https"): OriginVerdict {
  if (!h.host) return { ok: false, reason: "the request has no Host header" };
  // Normalised as Origin is: a proxy that sends "Host: example.org:443" means https://example.org.
  const own = normalOrigin(`${scheme}://${h.host}`);
  if (own === null) return { ok: false, reason: "the request's Host header is not a host name" };
  if (h.secFetchSite && h.secFetchSite !== "same-origin" && h.secFetchSite !== "none") {
    return { ok: false, reason: `the browser says the form came from another site (Sec-Fetch-Site: ${h.secFetchSite})` };
  }
  if (h.origin !== undefined) {
    return normalOrigin(h.origin) === own ? { ok: true } : { ok: false, reason: "the form was sent from another origin" };
  }
  if (h.referer !== undefined) {
    return normalOrigin(h.referer) === own ? { ok: true } : { ok: false, reason: "the form was sent from another page than this server's" };
  }
  return { ok: false, reason: "the request names neither its Origin nor its Referer" };
}

/** scheme://host[:port] of a URL, lower-cased, default ports dropped; null when it is not an http(s) URL. */
function normalOrigin(value: string): string | null {
  try {
    const u = new URL(value);
    if (u.protocol !== "http:" && u.protocol !== "https:") return null;
    return `${u.protocol}//${u.host}`.toLowerCase();
  } catch {
    return null;
  }
}

/**
 * A redirect target taken from a form: a path on this server, never another origin, also once
 * parsed as a URL. Parsing resolves dot segments and reads a backslash as a slash, so
 * `/.//evil.example/x` has the path `//evil.example/x`, another host's address wherever the path is
 * written out again (a redirect that sets ?done= does).
 */
export function localPath(value: string | undefined, fallback: string): string {
  if (!value || !value.startsWith("/") || value.startsWith("//") || value.startsWith("/\\") || /[\u0000-\u001f\u007f]/.test(value)) return fallback;
  const u = new URL(value, "http://local");
  if (/^[/\\]{2}/.test(u.pathname)) return fallback;
  // As parsed, so percent-encoded: a character outside ASCII is no longer one a header refuses.
  return `${u.pathname}${u.search}${u.hash}`;
}
