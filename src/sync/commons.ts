import { z } from "zod";
import { webUrl } from "../text/web-url.js";
import { abortableSleep, BadResponseError, type HttpClient } from "./http.js";
import { zodIssue } from "./wikidata.js";

/**
 * Commons imageinfo: pure URL builder and parser, and the batched fetch that follows
 * normalisation, redirects, missing files and continuation.
 * https://www.mediawiki.org/wiki/API:Imageinfo
 */

export const IMAGEINFO_BATCH = 50;

/** Where Commons serves its files (thumbnails and originals). */
export const COMMONS_UPLOAD_HOST = "upload.wikimedia.org";

/**
 * Which image URLs the sync may fetch: http(s) on a host of IMAGE_HOSTS, else on Commons' upload
 * host or COMMONS_API_URL's own host (a mirror or the tests' local Commons serves both).
 */
export function imageHostCheck(config: { IMAGE_HOSTS?: string[] | undefined; COMMONS_API_URL: string }): (url: URL) => boolean {
  // An entry with a port names that port, whatever the scheme's default ("upload.wikimedia.org:443"
  // takes https://upload.wikimedia.org/…); one without names the scheme's default port.
  const hosts = (config.IMAGE_HOSTS ?? [COMMONS_UPLOAD_HOST, new URL(config.COMMONS_API_URL).host]).map((h) => {
    const u = new URL(`http://${h}`);
    return { hostname: u.hostname.toLowerCase(), port: /:\d+$/.test(h) ? String(Number(h.slice(h.lastIndexOf(":") + 1))) : "" };
  });
  return (url) => {
    if (url.protocol !== "https:" && url.protocol !== "http:") return false;
    const effective = url.port || (url.protocol === "https:" ? "443" : "80");
    const hostname = url.hostname.toLowerCase();
    return hosts.some((h) => h.hostname === hostname && (h.port ? h.port === effective : url.port === ""));
  };
}

/** Commons renders thumbnails only in these widths; another width gets the next one up. */
export const STANDARD_THUMB_WIDTHS = [20, 40, 60, 120, 250, 330, 500, 960, 1280, 1920, 3840];

/** The smallest standard thumbnail width at least `edge` wide (the largest one if none is). */
export function thumbWidthFor(edge: number): number {
  return STANDARD_THUMB_WIDTHS.find((w) => w >= edge) ?? STANDARD_THUMB_WIDTHS[STANDARD_THUMB_WIDTHS.length - 1]!;
}

export function imageinfoUrl(apiUrl: string, titles: string[], thumbWidth: number, cont: Record<string, string> = {}): string {
  const params = new URLSearchParams({
    action: "query",
    format: "json",
    formatversion: "1",
    prop: "imageinfo",
    iiprop: "url|size|mime|sha1|extmetadata",
    iiurlwidth: String(thumbWidth),
    iiextmetadatafilter: "LicenseShortName|UsageTerms|AttributionRequired|Artist|Credit|ImageDescription",
    redirects: "1",
    maxlag: "5",
    titles: titles.join("|"),
    ...cont,
  });
  return `${apiUrl}?${params}`;
}

export interface FileInfo {
  /** The title as the caller asked for it. */
  fileTitle: string;
  missing: boolean;
  url: string | null;
  thumbUrl: string | null;
  thumbWidth: number | null;
  thumbHeight: number | null;
  width: number | null;
  height: number | null;
  bytes: number | null;
  mime: string | null;
  sha1: string | null;
  descriptionUrl: string | null;
  licenseShortName: string | null;
  usageTerms: string | null;
  attributionRequired: boolean | null;
  artist: string | null;
  credit: string | null;
}

const imageinfoSchema = z.looseObject({
  url: z.string().optional(),
  thumburl: z.string().optional(),
  thumbwidth: z.number().optional(),
  thumbheight: z.number().optional(),
  width: z.number().int().nonnegative().optional(),
  height: z.number().int().nonnegative().optional(),
  size: z.number().int().nonnegative().optional(),
  mime: z.string().optional(),
  sha1: z.string().optional(),
  descriptionurl: z.string().optional(),
  // PHP's empty map is [].
  extmetadata: z.union([z.record(z.string(), z.looseObject({ value: z.unknown().optional() })), z.array(z.never()).max(0)]).optional(),
  /** A revision hidden by an administrator carries no url: the file counts as missing. */
  filehidden: z.string().optional(),
});
/** What iiprop asks for (url|size|mime|sha1); the thumbnail is optional (not every file has one). */
const REQUIRED_IMAGEINFO = ["url", "size", "width", "height", "mime", "sha1"] as const;
const pageSchema = z.looseObject({
  title: z.string(),
  missing: z.string().optional(),
  invalid: z.string().optional(),
  /** "" for a File: page with no file (MediaWiki's "no such file"), "local" or "shared" for one with a file. */
  imagerepository: z.string().optional(),
  imageinfo: z.array(imageinfoSchema).optional(),
});
const aliasList = z.array(z.looseObject({ from: z.string(), to: z.string() })).optional();
const imageinfoAnswer = z.looseObject({
  continue: z.record(z.string(), z.string()).optional(),
  query: z.looseObject({
    normalized: aliasList,
    redirects: aliasList,
    pages: z.record(z.string(), pageSchema),
  }),
});

type Page = z.infer<typeof pageSchema>;

/** Plain text from extmetadata HTML: tags dropped, entities decoded, whitespace collapsed. */
export function stripHtml(html: unknown): string | null {
  if (html == null) return null;
  const text = String(html)
    .replace(/<br\s*\/?>/gi, " ")
    .replace(/<[^>]*>/g, "")
    .replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, code: string) => {
      if (code[0] === "#") {
        const n = code[1] === "x" || code[1] === "X" ? parseInt(code.slice(2), 16) : parseInt(code.slice(1), 10);
        // As a browser does: NUL (which PostgreSQL's text refuses), a surrogate or past U+10FFFF (which
        // fromCodePoint throws on, failing the whole batch's imageinfo) is U+FFFD.
        return n > 0 && n <= 0x10ffff && !(n >= 0xd800 && n <= 0xdfff) ? String.fromCodePoint(n) : "\ufffd";
      }
      return ENTITIES[code.toLowerCase()] ?? m;
    })
    .replace(/\s+/g, " ")
    .trim();
  return text || null;
}
const ENTITIES: Record<string, string> = {
  amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: " ", ndash: "–", mdash: "—", hellip: "…", copy: "©", reg: "®",
  laquo: "«", raquo: "»", lsquo: "‘", rsquo: "’", ldquo: "“", rdquo: "”", middot: "·", times: "×",
};

function fileInfo(fileTitle: string, page: Page | undefined): FileInfo {
  const first = page?.imageinfo?.[0];
  const ii = first?.filehidden === undefined ? first : undefined;
  const meta = Array.isArray(ii?.extmetadata) ? {} : (ii?.extmetadata ?? {});
  const m = (k: string) => stripHtml(meta[k]?.value);
  const attribution = m("AttributionRequired");
  return {
    fileTitle,
    missing: !page || page.missing !== undefined || page.invalid !== undefined || !ii,
    // Commons answers absolute https URLs; a broken or hostile mirror's other schemes are never stored
    // (they would reach the workbench's links, GraphQL and the export).
    url: webUrl(ii?.url),
    thumbUrl: webUrl(ii?.thumburl) ?? webUrl(ii?.url),
    thumbWidth: ii?.thumbwidth ?? null,
    thumbHeight: ii?.thumbheight ?? null,
    width: ii?.width ?? null,
    height: ii?.height ?? null,
    bytes: ii?.size ?? null,
    mime: ii?.mime ?? null,
    sha1: ii?.sha1 ?? null,
    descriptionUrl: webUrl(ii?.descriptionurl),
    licenseShortName: m("LicenseShortName"),
    usageTerms: m("UsageTerms"),
    attributionRequired: attribution == null ? null : attribution === "true",
    artist: m("Artist"),
    credit: m("Credit"),
  };
}

/**
 * Pages of one answer keyed by final title, and how each asked-for title maps onto them. An answer
 * that is not an imageinfo answer at all is a BadResponseError (the whole batch). One page's fault is
 * that file's alone (one odd file must not fail the fifty beside it, every run): a page whose record
 * lacks what iiprop asked for is left out of `pages` and named in `broken`.
 */
export function parseImageinfo(json: unknown): { pages: Map<string, Page>; aliases: Map<string, string>; broken: Map<string, string>; cont?: Record<string, string> } {
  const apiError = (json as { error?: { code?: unknown; info?: unknown } } | null)?.error;
  if (apiError) throw new BadResponseError(`imageinfo: ${String(apiError.code)}: ${String(apiError.info)}`);
  const j = imageinfoAnswer.safeParse(json);
  if (!j.success) throw new BadResponseError(`imageinfo answer malformed (${zodIssue(j.error)})`);
  const { query } = j.data;
  const pages = new Map<string, Page>();
  const broken = new Map<string, string>();
  for (const p of Object.values(query.pages)) {
    const ii = p.imageinfo?.[0];
    const lacks = ii && ii.filehidden === undefined ? REQUIRED_IMAGEINFO.filter((k) => ii[k] === undefined) : [];
    if (lacks.length) broken.set(p.title, `Commons' record of the file lacks ${lacks.join(", ")}, which was asked for`);
    else pages.set(p.title, p);
  }
  const aliases = new Map<string, string>();
  for (const n of [...(query.normalized ?? []), ...(query.redirects ?? [])]) aliases.set(n.from, n.to);
  return { pages, aliases, broken, cont: j.data.continue };
}

/** Follows normalisation then redirects (possibly chained) to the page's final title. */
function resolveTitle(title: string, aliases: Map<string, string>): string {
  let t = title;
  for (let i = 0; i < 5 && aliases.has(t); i++) t = aliases.get(t)!;
  return t;
}

/**
 * Imageinfo for any number of titles, 50 per request, following `continue`. Returns one entry per
 * asked-for title (a missing file has `missing: true`, as has a File: page with no file), or, for a
 * title whose record could not be read (not answered, answered without its record, a record lacking
 * what was asked for), why not in `unreadable`: that file's failure, not its batch's. Only those
 * titles are asked again, `retries` times, after a pause that starts at `retryDelayMs` and doubles.
 */
export async function fetchImageinfo(
  http: HttpClient,
  apiUrl: string,
  titles: string[],
  thumbWidth: number,
  signal?: AbortSignal,
  retries = 2,
  retryDelayMs = 1_000,
): Promise<{ infos: Map<string, FileInfo>; unreadable: Map<string, string> }> {
  const infos = new Map<string, FileInfo>();
  const unreadable = new Map<string, string>();
  for (let i = 0; i < titles.length; i += IMAGEINFO_BATCH) {
    const batch = titles.slice(i, i + IMAGEINFO_BATCH);
    const pages = new Map<string, Page>();
    const aliases = new Map<string, string>();
    const broken = new Map<string, string>();
    let unread = new Map<string, string>();
    // A page missing from an answer, or one without what was asked for, may be a passing glitch:
    // those titles are asked again (what the batch already gave is kept), `retries` times, before
    // those files fail.
    let ask = batch;
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) await abortableSleep(retryDelayMs * 2 ** (attempt - 1), signal);
      let cont: Record<string, string> | undefined = {};
      for (let guard = 0; cont && guard < 100; guard++) {
        const parsed: ReturnType<typeof parseImageinfo> = await http.json(imageinfoUrl(apiUrl, ask, thumbWidth, cont), { signal, parse: parseImageinfo });
        for (const [t, p] of parsed.pages) {
          const prev = pages.get(t);
          // A continued answer repeats pages; keep the one that carries imageinfo.
          if (!prev?.imageinfo) pages.set(t, p);
          if (p.imageinfo?.length) broken.delete(t);
        }
        for (const [t, why] of parsed.broken) if (!pages.get(t)?.imageinfo) broken.set(t, why);
        for (const [a, b] of parsed.aliases) aliases.set(a, b);
        cont = parsed.cont;
      }
      unread = new Map();
      for (const t of batch) {
        const final = resolveTitle(t, aliases);
        const page = pages.get(final);
        if (broken.has(final) && !page?.imageinfo?.length) unread.set(t, broken.get(final)!);
        else if (!page) unread.set(t, `Commons did not answer for ${t}`);
        // Once `continue` is done, a file that exists has had its imageinfo in one of the answers.
        // A File: page with no file (imagerepository "") has none: MediaWiki's "no such file".
        else if (page.missing === undefined && page.invalid === undefined && page.imagerepository !== "" && !page.imageinfo?.length) {
          unread.set(t, `Commons never answered with the record of ${t}`);
        }
      }
      if (unread.size === 0) break;
      ask = batch.filter((t) => unread.has(t));
    }
    for (const t of batch) {
      const why = unread.get(t);
      if (why !== undefined) unreadable.set(t, why);
      else infos.set(t, fileInfo(t, pages.get(resolveTitle(t, aliases))));
    }
  }
  return { infos, unreadable };
}
