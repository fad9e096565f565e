import { ArtworkState, AttributionKind } from "../generated/prisma/enums.js";
import { QUALITY_FLAGS } from "../quality/types.js";
import { REVIEW_STATES } from "../review/stats.js";
import { webUrl } from "../text/web-url.js";
import { headOf } from "../text/alt-text.js";
import { ATTRIBUTION_WORDS, attributionWords, formatInception } from "../text/facts.js";
import { keepsCurrent } from "../review/verdict.js";
import type { DescriptionSource } from "../generated/prisma/enums.js";
import { type DiffPart, keptWordDiff } from "./diff.js";

export { attributionWords, formatInception };

/**
 * Pure functions from what GraphQL answered (and what the URL asked) to what the templates show.
 * Templates only loop and print; every decision is made here, where a unit test can see it.
 */

export const STATES = Object.values(ArtworkState);
export const FLAGS: readonly string[] = QUALITY_FLAGS;
export const REVIEW_FILTERS: readonly string[] = REVIEW_STATES;
/** Works per collection page. */
export const COLLECTION_PAGE = 60;
/** Thumbnail widths, in pixels, that /thumbs serves. */
export const THUMB_WIDTHS = [160, 320, 640] as const;
export type ThumbWidth = (typeof THUMB_WIDTHS)[number];


/** An ISO time as "2026-12-01 00:16 UTC" (minutes are enough on these pages). */
export function when(iso: string | null | undefined): string | null {
  if (!iso) return null;
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d)/.exec(iso);
  return m ? `${m[1]} ${m[2]} UTC` : iso;
}

export interface AttributionIn {
  attribution: string;
  creator: { qid: string; label: string | null; wikidataUrl?: string };
}

/** "by Francisco Goya", "attributed to Francisco Goya; workshop of …". */
export function attributionLine(creators: readonly AttributionIn[]): string {
  return creators.map((c) => `${ATTRIBUTION_WORDS[c.attribution] ?? c.attribution.toLowerCase()} ${c.creator.label ?? c.creator.qid}`).join("; ");
}


/** The first `max` characters of a text, cut at a word boundary, with an ellipsis when cut. */
export function excerpt(text: string | null | undefined, max = 160): string | null {
  if (!text) return null;
  const flat = text.replace(/\s+/g, " ").trim();
  if (flat.length <= max) return flat;
  const cut = headOf(flat, max);
  const space = cut.lastIndexOf(" ");
  return `${(space > max / 2 ? cut.slice(0, space) : cut).replace(/[\s,;:.]+$/, "")}…`;
}

export interface SnippetPart {
  text: string;
  mark: boolean;
}

const ENTITIES: Record<string, string> = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#39;": "'", "&#x27;": "'" };

/**
 * Search snippets arrive as HTML (text escaped, matches in <mark>). The page prints text, never
 * HTML: this splits the snippet at the marks and decodes the escapes, and the template escapes
 * each part again.
 */
export function snippetParts(html: string | null | undefined): SnippetPart[] {
  if (!html) return [];
  const out: SnippetPart[] = [];
  const decode = (s: string) => s.replace(/&(?:amp|lt|gt|quot|#39|#x27);/g, (e) => ENTITIES[e]!);
  let mark = false;
  for (const piece of html.split(/(<\/?mark>)/)) {
    if (piece === "<mark>") mark = true;
    else if (piece === "</mark>") mark = false;
    else if (piece) out.push({ text: decode(piece), mark });
  }
  return out;
}

export interface Thumb {
  src: string;
  srcset: string;
}

export const thumbUrl = (hash: string, width: ThumbWidth) => `/thumbs/${hash}/${width}.webp`;

/** The thumbnail set of an image with a local copy (named by its content hash), or null. */
export function thumbFor(localHash: string | null | undefined, widths: readonly ThumbWidth[], src: ThumbWidth): Thumb | null {
  if (!localHash || !/^[0-9a-f]{64}$/.test(localHash)) return null;
  return { src: thumbUrl(localHash, src), srcset: widths.map((w) => `${thumbUrl(localHash, w)} ${w}w`).join(", ") };
}

// ---------------------------------------------------------------- collection

export interface CollectionRequest {
  q: string;
  creator: string;
  state: string;
  described: "" | "yes" | "no";
  flag: string;
  /** A review state (UNREVIEWED, APPROVED, REJECTED, NEEDS_WORK) or "". */
  review: string;
  /** Only works every fallback step failed for. */
  needsPerson: boolean;
  /** How to search the words: "" (the API's default: words and meaning once works are embedded), or one mode. */
  mode: "" | SearchModeWord;
  after: string;
  before: string;
  /** Values the URL held that mean nothing here (shown, then ignored). */
  problems: string[];
}

/** The search modes as the collection's URL names them (GraphQL's SearchMode, lower case). */
export const SEARCH_MODE_WORDS = ["text", "semantic", "hybrid"] as const;
export type SearchModeWord = (typeof SEARCH_MODE_WORDS)[number];

/** What the collection's count line says a search ran as. */
export function searchModeLine(mode: string | null | undefined): string | null {
  switch (mode) {
    case "TEXT":
      return "by words";
    case "SEMANTIC":
      return "by meaning";
    case "HYBRID":
      return "by words and meaning";
    default:
      return null;
  }
}

/** The collection's view as the URL says it; unknown values are named in `problems` and ignored. */
/**
 * Reads a page's URL parameters, trimmed: `get` a text of at most `max` characters, `oneOf` a value
 * from a list; a value that does not fit is named in `problems` and read as "".
 */
function paramReader(params: URLSearchParams, problems: string[]) {
  const get = (k: string, max: number) => {
    const v = (params.get(k) ?? "").trim();
    if (v.length > max) {
      problems.push(`${k} is longer than ${max} characters`);
      return "";
    }
    return v;
  };
  const oneOf = (k: string, allowed: readonly string[]) => {
    const v = get(k, 40);
    if (v && !allowed.includes(v)) {
      problems.push(`${k} "${v}" is not one of ${allowed.join(", ")}`);
      return "";
    }
    return v;
  };
  return { get, oneOf };
}

export function readCollectionRequest(params: URLSearchParams): CollectionRequest {
  const problems: string[] = [];
  const { get, oneOf } = paramReader(params, problems);
  return {
    q: get("q", 500),
    creator: get("creator", 200),
    state: oneOf("state", STATES) || "ACTIVE",
    described: oneOf("described", ["yes", "no"]) as CollectionRequest["described"],
    flag: oneOf("flag", FLAGS),
    review: oneOf("review", REVIEW_FILTERS),
    needsPerson: oneOf("needsPerson", ["yes"]) === "yes",
    mode: oneOf("mode", SEARCH_MODE_WORDS) as CollectionRequest["mode"],
    after: get("after", 200),
    before: get("before", 200),
    problems,
  };
}

/** The URL of the collection with `r`'s view, `change` applied (paging cursors reset unless given). */
export function collectionHref(r: CollectionRequest, change: Partial<Pick<CollectionRequest, "after" | "before" | "q" | "creator" | "state" | "described" | "flag" | "review" | "needsPerson" | "mode">> = {}): string {
  const v = { ...r, after: "", before: "", ...change };
  const params = new URLSearchParams();
  if (v.q) params.set("q", v.q);
  if (v.creator) params.set("creator", v.creator);
  if (v.state && v.state !== "ACTIVE") params.set("state", v.state);
  if (v.described) params.set("described", v.described);
  if (v.flag) params.set("flag", v.flag);
  if (v.review) params.set("review", v.review);
  if (v.needsPerson) params.set("needsPerson", "yes");
  if (v.q && v.mode) params.set("mode", v.mode);
  if (v.after) params.set("after", v.after);
  if (v.before) params.set("before", v.before);
  const qs = params.toString();
  return qs ? `/?${qs}` : "/";
}

/** The collection's review filters: GraphQL's ArtworkFilter has none, so the workbench applies them to the cards. */
export function filtersByReview(r: CollectionRequest): boolean {
  return r.review !== "" || r.needsPerson;
}

/** Variables of the COLLECTION query (or, with words to search, of SEARCH) for a request. */
export function collectionVariables(r: CollectionRequest): Record<string, unknown> {
  const paging = r.before ? { last: COLLECTION_PAGE, before: r.before } : { first: COLLECTION_PAGE, after: r.after || null };
  const hasDescription = r.described === "yes" ? true : r.described === "no" ? false : null;
  if (r.q) return { query: r.q, filter: { creator: r.creator || null, hasDescription }, mode: r.mode ? r.mode.toUpperCase() : null, ...paging };
  return {
    filter: {
      creator: r.creator || null,
      state: [r.state],
      hasDescription,
      flag: r.flag || null,
      reviewState: r.review ? [r.review] : null,
      needsPerson: r.needsPerson ? true : null,
    },
    ...paging,
  };
}

export interface CardIn {
  qid: string;
  title: string | null;
  titles?: { language: string; text: string }[];
  inception: string | null;
  inceptionPrecision: number | null;
  state: string;
  creators: AttributionIn[];
  image: { localHash: string | null } | null;
  currentDescription: { text: string; source: string; quality: { flags: string[] } | null } | null;
  review?: ReviewIn | null;
}

export interface Card {
  qid: string;
  href: string;
  title: string;
  /** The title's language when it is not the page's (English): its `lang`. */
  titleLang: string | null;
  date: string | null;
  attribution: string;
  excerpt: string | null;
  snippet: SnippetPart[];
  source: string | null;
  flags: string[];
  state: string;
  thumb: Thumb | null;
  review: ReviewStatus | null;
  /** A search hit found by meaning alone (no word of the query in it). */
  byMeaningOnly: boolean;
}

export function card(a: CardIn, snippetHtml?: string | null, matchedBy?: readonly string[]): Card {
  return {
    // A search hit that shares no word with the query: said, so it is not read as a word match.
    byMeaningOnly: !!matchedBy && matchedBy.length > 0 && !matchedBy.includes("TEXT"),
    qid: a.qid,
    href: `/artworks/${a.qid}`,
    title: a.title ?? a.qid,
    titleLang: titleLanguage(a.title, a.titles),
    date: formatInception(a.inception, a.inceptionPrecision),
    attribution: attributionLine(a.creators),
    excerpt: excerpt(a.currentDescription?.text),
    snippet: snippetParts(snippetHtml),
    source: a.currentDescription?.source ?? null,
    flags: a.currentDescription?.quality?.flags ?? [],
    state: a.state,
    // 160 px only, whatever the screen's density: 60 of them stay far under 600 KB (320 px ones would not).
    thumb: thumbFor(a.image?.localHash, [160], 160),
    review: a.review ? reviewStatus(a.review, a.currentDescription !== null) : null,
  };
}

// ---------------------------------------------------------------- first run

export interface FirstRunIn {
  stats: { artworks: number; withImage: number; described: number };
  status: {
    lastSync: { status: string; seen: number; created: number; updated: number; imagesDownloaded: number; failed: number; startedAt: string; error: string | null } | null;
    nextSyncAt: string | null;
    workerAlive: boolean;
    backlog: number;
    heartbeats: { role: string; alive: boolean; modelStatus: string | null; modelError: string | null }[];
  };
}

export interface Notice {
  title: string;
  text: string;
  /** A command to run, shown as code. */
  command?: string;
}

export interface LocalFacts {
  /** USER_AGENT_CONTACT is set in this process. */
  contactSet: boolean;
  /** The configured model's files are missing here: the command that fetches them. */
  modelPullCommand: string | null;
}

/**
 * Why a page is empty and what to do: the sync is off, the first sync is running (with its
 * progress), the model files are missing (with the exact command), or nothing is described yet.
 */
export function firstRunNotices(f: FirstRunIn, local: LocalFacts): Notice[] {
  const out: Notice[] = [];
  const sync = f.status.lastSync;
  if (!local.contactSet) {
    out.push({
      title: "The sync is off",
      text: "USER_AGENT_CONTACT is not set. Wikimedia asks every client to name a contact, so artdesc does not sync without one. Set it to a URL or an e-mail address where you can be reached, and restart.",
      command: "export USER_AGENT_CONTACT=you@example.org",
    });
  }
  if (sync?.status === "RUNNING") {
    out.push({
      title: f.stats.artworks === 0 ? "The first sync is running" : "A sync is running",
      text: `Started ${sync.startedAt}: ${sync.seen} works seen, ${sync.created} written, ${sync.imagesDownloaded} images downloaded, ${sync.failed} failed so far. Works appear here as they are written.`,
    });
  } else if (!sync && local.contactSet) {
    out.push({ title: "Nothing synced yet", text: `No sync has run.${f.status.nextSyncAt ? ` The next one is due ${f.status.nextSyncAt}.` : ""} Run one now:`, command: "artdesc sync" });
  } else if (sync && f.stats.artworks === 0) {
    out.push({ title: `The last sync ended ${sync.status.toLowerCase()}`, text: sync.error ?? "It wrote no works. The Status page lists its failures." });
  }
  const missing = f.status.heartbeats.find((h) => h.alive && h.modelStatus === "missing");
  if (missing) {
    out.push({ title: "The model files are missing", text: missing.modelError ?? "The describe worker has no model.", command: pullCommandIn(missing.modelError) ?? local.modelPullCommand ?? undefined });
  } else if (local.modelPullCommand && !f.status.heartbeats.some((h) => h.alive && h.modelStatus === "loaded")) {
    out.push({ title: "The model files are missing", text: "Nothing can be described until the model is in MODEL_DIR. Fetch it with:", command: local.modelPullCommand });
  }
  if (f.stats.withImage > 0 && f.stats.described === 0 && !f.status.workerAlive) {
    out.push({ title: "No describe worker is running", text: `${f.status.backlog} jobs wait for one. Start the worker (or artdesc start, which includes it):`, command: "artdesc worker" });
  }
  return out;
}

/**
 * Why live workers describe nothing: none has its model loaded, and one says it is missing or failed
 * to load (its message, and the command that fetches it when the message names one). Null when a
 * worker has the model, one is still loading it, or none is alive (the "no worker" notice says that).
 */
export function workerModelProblem(heartbeats: FirstRunIn["status"]["heartbeats"]): { text: string; command: string | null } | null {
  const alive = heartbeats.filter((h) => h.alive);
  if (alive.some((h) => h.modelStatus === "loaded" || h.modelStatus === "loading")) return null;
  const broken = alive.find((h) => h.modelStatus === "missing" || h.modelStatus === "error");
  if (!broken) return null;
  return { text: broken.modelError ?? `The describe worker's model is ${broken.modelStatus}.`, command: pullCommandIn(broken.modelError) };
}

/** The command in a worker's "model missing" message ("... Fetch them with: artdesc models pull ..."). */
export function pullCommandIn(message: string | null): string | null {
  const m = /Fetch them with: (.+)$/s.exec(message ?? "");
  return m ? m[1]!.trim() : null;
}

// ---------------------------------------------------------------- artwork

export interface ItemIn {
  qid: string;
  label: string | null;
  wikidataUrl: string;
}

export interface DescriptionIn {
  id: string;
  text: string;
  language: string;
  source: string;
  author: string | null;
  reason: string | null;
  createdAt: string;
  generation: Record<string, unknown> & { modelId: string | null; modelRevision: string | null; device: string | null; prompt: string | null } | null;
  outcome: { generatedTokens: number | null; finishReason: string | null; trimmed: boolean; timings: Record<string, number | null> | null } | null;
  /** Null for a person's text; cleanMarkdown null for texts written before it was recorded. */
  reproduction?: { cleanMarkdown: boolean | null } | null;
  quality: { flags: string[]; risk: number } | null;
  reviewState?: string;
  reviews?: VerdictIn[];
  /** The Commons file it describes, as recorded when it was written. */
  imageFile?: string | null;
}

export interface JobIn {
  id: string;
  number: number;
  status: string;
  progress: number;
  progressTotal: number | null;
  error: string | null;
  force: boolean;
  /** With force: the Description id it may replace though a person wrote or approved it. */
  forcesOver: string | null;
  createdAt: string;
}

export interface ArtworkIn {
  qid: string;
  title: string | null;
  inception: string | null;
  inceptionPrecision: number | null;
  state: string;
  mergedIntoQid: string | null;
  wikidataUrl: string;
  commonsUrl: string | null;
  altText: string | null;
  titles: { language: string; text: string }[];
  creators: AttributionIn[];
  instanceOf: ItemIn[];
  genres: ItemIn[];
  materials: ItemIn[];
  collections: ItemIn[];
  locations: ItemIn[];
  depicts: ItemIn[];
  dimensions: { height: number | null; heightUnit: string | null; width: number | null; widthUnit: string | null } | null;
  image: {
    fileTitle: string;
    url: string | null;
    localHash: string | null;
    localWidth: number | null;
    localHeight: number | null;
    licenseShortName: string | null;
    usageTerms: string | null;
    attributionRequired: boolean | null;
    artist: string | null;
    credit: string | null;
    descriptionUrl: string | null;
  } | null;
  currentDescription: DescriptionIn | null;
  review: ReviewIn;
  descriptions: DescriptionIn[];
  descriptionsConnection: { totalCount: number };
  jobs: { edges: { node: JobIn }[] };
}

export interface Fact {
  label: string;
  /** `lang`: the item's language (a title in Spanish), for screen readers' pronunciation. */
  items: { text: string; href?: string; lang?: string; note?: string }[];
}

const UNITS: Record<string, string> = { Q174728: "cm", Q11573: "m", Q174789: "mm", Q218593: "in" };

function unitWord(unit: string | null): string {
  if (!unit) return "";
  const qid = unit.split("/").pop() ?? unit;
  return (Object.hasOwn(UNITS, qid) ? UNITS[qid] : undefined) ?? qid;
}

/** A BCP 47 language tag as Wikidata's language codes are ("es", "pt-br", "zh-hant"). */
const LANGUAGE_TAG = /^[a-z]{2,3}(-[a-z0-9]{2,8})*$/i;

/**
 * The language of a work's preferred title, for its `lang` (a screen reader reads "El sueño de la
 * razón" with Spanish sounds): the language whose title it is, when that is a tag and not the
 * pages' own (English); null otherwise, and for an untitled work. "mul" (every language) is none.
 */
export function titleLanguage(title: string | null, titles: readonly { language: string; text: string }[] | undefined): string | null {
  if (!title || !titles) return null;
  const language = titles.find((t) => t.text === title)?.language;
  return language && LANGUAGE_TAG.test(language) && !/^(en|mul)(-|$)/i.test(language) ? language : null;
}

export function artworkFacts(a: ArtworkIn): Fact[] {
  const items = (list: ItemIn[]) => list.map((i) => ({ text: i.label ?? i.qid, href: i.wikidataUrl }));
  const facts: Fact[] = [
    { label: "Wikidata item", items: [{ text: a.qid, href: a.wikidataUrl }] },
    { label: "Date", items: a.inception ? [{ text: formatInception(a.inception, a.inceptionPrecision)!, href: a.wikidataUrl }] : [] },
    { label: "Attribution", items: a.creators.map((c) => ({ text: `${attributionWords(c.attribution)} ${c.creator.label ?? c.creator.qid}`, href: c.creator.wikidataUrl })) },
    { label: "Instance of", items: items(a.instanceOf) },
    { label: "Medium", items: items(a.materials) },
    { label: "Genre", items: items(a.genres) },
    { label: "Depicts", items: items(a.depicts) },
    { label: "Collection", items: items(a.collections) },
    { label: "Location", items: items(a.locations) },
  ];
  const d = a.dimensions;
  if (d && (d.height != null || d.width != null)) {
    const part = (v: number | null, u: string | null) => (v == null ? "?" : `${v} ${unitWord(u)}`.trim());
    facts.push({ label: "Dimensions", items: [{ text: `${part(d.height, d.heightUnit)} × ${part(d.width, d.widthUnit)}`, href: a.wikidataUrl }] });
  }
  const otherTitles = a.titles.filter((t) => t.text !== a.title);
  if (otherTitles.length) facts.push({ label: "Other titles", items: otherTitles.map((t) => ({ text: t.text, ...(LANGUAGE_TAG.test(t.language) ? { lang: t.language } : {}), note: ` (${t.language})` })) });
  return facts.filter((f) => f.items.length > 0);
}

export interface Licence {
  /** "Francisco de Goya, Public domain, via Wikimedia Commons", the form Commons asks reusers for. */
  line: string;
  fileTitle: string;
  fileHref: string | null;
  licence: string | null;
  usageTerms: string | null;
  credit: string | null;
}


export function licenceOf(image: ArtworkIn["image"]): Licence | null {
  if (!image) return null;
  const licence = image.licenseShortName ?? image.usageTerms;
  const line = [image.artist, licence ?? "licence unknown", "via Wikimedia Commons"].filter(Boolean).join(", ");
  return {
    line,
    fileTitle: image.fileTitle,
    // From Commons' answer (COMMONS_API_URL may be any server): a web address only, never javascript: or data:.
    fileHref: webUrl(image.descriptionUrl),
    licence,
    usageTerms: image.usageTerms && image.usageTerms !== licence ? image.usageTerms : null,
    credit: image.credit,
  };
}

export interface Version {
  id: string;
  /** v1 is the oldest. */
  label: string;
  current: boolean;
  text: string;
  createdAt: string;
  source: string;
  author: string | null;
  reason: string | null;
  model: string | null;
  params: string | null;
  prompt: string | null;
  timings: string | null;
  outcome: string | null;
  flags: string[];
  risk: number | null;
  /** "approved", "unreviewed", ... */
  reviewState: string | null;
  /** The ReviewState as the API names it ("UNREVIEWED", "APPROVED", ...): what a verdict form says it saw. */
  state: string;
  /** Newest first. */
  verdicts: VerdictView[];
  /** The file it describes when that is no longer the work's image (Wikidata shows another now), else null. */
  otherImage: string | null;
}

const PARAM_NAMES: [string, string][] = [
  ["numBeams", "beams"],
  ["maxNewTokens", "max tokens"],
  ["minNewTokens", "min tokens"],
  ["targetWords", "target words"],
  ["lengthPenalty", "length penalty"],
  ["earlyStopping", "early stopping"],
  ["noRepeatNgramSize", "no-repeat n-gram"],
  ["repetitionPenalty", "repetition penalty"],
  ["imageSplitting", "image splitting"],
];

/** "beams 4, max tokens 200, …, clean markdown true": the parameters a model text was written with. */
function paramsLine(g: Record<string, unknown>, cleanMarkdown: boolean | null): string {
  const parts = PARAM_NAMES.filter(([k]) => g[k] != null).map(([k, name]) => `${name} ${String(g[k])}`);
  if (cleanMarkdown != null) parts.push(`clean markdown ${String(cleanMarkdown)}`);
  return parts.join(", ");
}

const ms = (v: number | null | undefined) => (v == null ? null : v >= 1000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`);

/**
 * The newest `descriptions` (newest first) of `total`, numbered from the oldest (v1). The current
 * text may be older than all of them (a person's text kept while many regenerations came after it):
 * it is then shown after them, as "earlier". `currentFile`: the work's image now (its Commons file
 * title), null when it has none.
 */
export function versions(descriptions: DescriptionIn[], current: DescriptionIn | null, total: number, currentFile: string | null): Version[] {
  const n = Math.max(total, descriptions.length);
  const shown = current && !descriptions.some((d) => d.id === current.id) ? [...descriptions, current] : descriptions;
  const currentId = current?.id ?? null;
  return shown.map((d, i) => {
    const g = d.generation;
    const t = d.outcome?.timings;
    const timingParts = t ? (["preprocess", "vision", "prefill", "decode"] as const).map((k) => (t[`${k}Ms`] != null ? `${k} ${ms(t[`${k}Ms`])}` : null)).filter(Boolean) : [];
    return {
      id: d.id,
      label: i < descriptions.length ? `v${n - i}` : "earlier version",
      current: d.id === currentId,
      text: d.text,
      createdAt: when(d.createdAt)!,
      source: d.source,
      author: d.author,
      reason: d.reason,
      model: g?.modelId ? `${g.modelId}@${g.modelRevision ?? "?"}${g.device ? ` on ${g.device}` : ""}` : null,
      params: g ? paramsLine(g, d.reproduction?.cleanMarkdown ?? null) : null,
      prompt: g?.prompt ?? null,
      timings: t?.totalMs != null ? `total ${ms(t.totalMs)}${timingParts.length ? ` (${timingParts.join(", ")})` : ""}` : null,
      outcome: d.outcome?.generatedTokens != null ? `${d.outcome.generatedTokens} tokens, ended by ${d.outcome.finishReason ?? "?"}${d.outcome.trimmed ? ", trimmed" : ""}` : null,
      flags: d.quality?.flags ?? [],
      risk: d.quality?.risk ?? null,
      reviewState: d.reviewState ? reviewWord(d.reviewState) : null,
      state: d.reviewState ?? "UNREVIEWED",
      verdicts: (d.reviews ?? []).map(verdictView),
      otherImage: d.imageFile && d.imageFile !== currentFile ? d.imageFile : null,
    };
  });
}

export interface DiffView {
  from: Version;
  to: Version;
  parts: DiffPart[] | null;
}

/** The diff the URL asks for (`from`, `to` are description ids), else the previous version against the newest. */
export function chooseDiff(vs: Version[], fromId: string | null, toId: string | null): DiffView | null {
  if (vs.length < 2) return null;
  const byId = (id: string | null) => (id ? vs.find((v) => v.id === id) : undefined);
  const to = byId(toId) ?? vs[0]!;
  const from = byId(fromId) ?? vs.find((v) => v !== to && vs.indexOf(v) > vs.indexOf(to)) ?? vs.find((v) => v !== to)!;
  return { from, to, parts: keptWordDiff(from.id, from.text, to.id, to.text) };
}

export interface JobView {
  number: number;
  status: string;
  progress: number;
  total: number | null;
  error: string | null;
  live: boolean;
  /** When it succeeds its text becomes the current description (no person's text stands in the way, or forced). */
  replacesCurrent: boolean;
}

/** What a job's progress bar needs of the work's current text. */
export type CurrentText = Pick<Version, "id" | "source" | "state">;

/**
 * `current`: the work's current text, when the page knows it. A job's text replaces it unless a
 * person wrote or approved it (keepsCurrent), or the job was forced over that very text.
 */
export function jobView(
  j: Pick<JobIn, "number" | "status" | "progress" | "progressTotal" | "error"> & { force?: boolean; forcesOver?: string | null },
  current: CurrentText | null = null,
): JobView {
  const kept = current !== null && keepsCurrent({ source: current.source as DescriptionSource, reviewState: current.state === "APPROVED" ? "APPROVED" : null });
  return {
    number: j.number,
    status: j.status,
    progress: j.progress,
    total: j.progressTotal,
    error: j.error,
    live: j.status === "QUEUED" || j.status === "RUNNING",
    replacesCurrent: !kept || (j.force === true && j.forcesOver === current!.id),
  };
}

// ---------------------------------------------------------------- review

/** Artwork.review as the pages ask for it (queries.ts, fragment ReviewState). */
export interface ReviewIn {
  state: string;
  reviewedAt?: string | null;
  reviewedBy?: string | null;
  needsPerson: boolean;
  fallbackStep: number | null;
  fallbackSteps: number;
  /** The collection asks for its number and status only. */
  fallbackJob: (Pick<JobIn, "number" | "status"> & Partial<JobIn>) | null;
}

const STATE_WORDS: Record<string, string> = { UNREVIEWED: "unreviewed", APPROVED: "approved", REJECTED: "rejected", NEEDS_WORK: "needs work" };

/** "approved", "needs work": a review state or verdict in words. */
export const reviewWord = (state: string): string => STATE_WORDS[state] ?? state.toLowerCase();

export interface ReviewStatus {
  state: string;
  /** "approved by Ana · 2026-12-01 10:00 UTC", "unreviewed"; null when there is no text to review. */
  line: string | null;
  needsPerson: boolean;
  /** The rejection's new attempt while it waits or runs: "fallback step 2 of 3", with its job. */
  regenerating: { step: number; steps: number; job: JobView } | null;
  /** The last attempt that ended (succeeded, failed, cancelled); null while one runs or after a settle. */
  lastAttempt: { step: number; steps: number; job: JobView } | null;
}

export function reviewStatus(r: ReviewIn, described: boolean, current: CurrentText | null = null): ReviewStatus {
  const by = r.reviewedBy ? ` by ${r.reviewedBy}` : "";
  const at = r.reviewedAt ? ` · ${when(r.reviewedAt)}` : "";
  const j = r.fallbackJob;
  const job = j
    ? jobView({ number: j.number, status: j.status, progress: j.progress ?? 0, progressTotal: j.progressTotal ?? null, error: j.error ?? null, force: j.force, forcesOver: j.forcesOver ?? null }, current)
    : null;
  const attempt = r.fallbackStep != null && job ? { step: r.fallbackStep, steps: r.fallbackSteps, job } : null;
  return {
    state: r.state,
    line: described ? (r.state === "UNREVIEWED" ? "unreviewed" : `${reviewWord(r.state)}${by}${at}`) : null,
    needsPerson: r.needsPerson,
    regenerating: attempt?.job.live ? attempt : null,
    lastAttempt: attempt && !attempt.job.live ? attempt : null,
  };
}

export interface VerdictIn {
  verdict: string;
  note: string | null;
  reviewer: string;
  createdAt: string;
  fallbackStep: number | null;
  exhausted: boolean;
}

export interface VerdictView {
  verdict: string;
  word: string;
  reviewer: string;
  at: string;
  note: string | null;
  /** What the verdict set off: "queued fallback step 1", "nothing left to try: needs a person". */
  effect: string | null;
}

export function verdictView(v: VerdictIn): VerdictView {
  return {
    verdict: v.verdict,
    word: reviewWord(v.verdict),
    reviewer: v.reviewer,
    at: when(v.createdAt)!,
    note: v.note,
    effect: v.exhausted ? "nothing left to try: the work needs a person" : v.fallbackStep != null ? `queued fallback step ${v.fallbackStep}` : null,
  };
}

export interface QueueItemIn {
  id: string;
  text: string;
  reviewState: string;
  source: string;
  author: string | null;
  createdAt: string;
  quality: { flags: string[]; risk: number; checks: { name: string; value: number; detail: string }[] } | null;
  artwork: {
    qid: string;
    title: string | null;
    titles?: { language: string; text: string }[];
    inception: string | null;
    inceptionPrecision: number | null;
    altText: string | null;
    creators: AttributionIn[];
    image: { localHash: string | null; localWidth: number | null; localHeight: number | null } | null;
  };
}

export interface QueueItem {
  descriptionId: string;
  /** The ReviewState the page showed (the queue holds unreviewed texts): sent back with a verdict. */
  state: string;
  qid: string;
  href: string;
  title: string;
  titleLang: string | null;
  date: string | null;
  attribution: string;
  text: string;
  /** "written by the model · 2026-12-01 10:00 UTC". */
  meta: string;
  flags: string[];
  /** "0.62"; null when the text was never assessed. */
  risk: string | null;
  checks: { name: string; value: string; detail: string }[];
  image: (Thumb & { width: number | null; height: number | null }) | null;
  alt: string;
}

export function queueItem(d: QueueItemIn): QueueItem {
  const a = d.artwork;
  const title = a.title ?? a.qid;
  const thumb = thumbFor(a.image?.localHash, [320, 640], 640);
  return {
    descriptionId: d.id,
    state: d.reviewState,
    qid: a.qid,
    href: `/artworks/${a.qid}`,
    title,
    titleLang: titleLanguage(a.title, a.titles),
    date: formatInception(a.inception, a.inceptionPrecision),
    attribution: attributionLine(a.creators),
    text: d.text,
    meta: `${d.source === "HUMAN" ? `written by ${d.author || "a person"}` : "written by the model"} · ${when(d.createdAt)}`,
    flags: d.quality?.flags ?? [],
    risk: d.quality ? d.quality.risk.toFixed(2) : null,
    checks: (d.quality?.checks ?? []).map((c) => ({ name: c.name, value: Number.isInteger(c.value) ? String(c.value) : c.value.toFixed(2), detail: c.detail })),
    image: thumb ? { ...thumb, width: a.image?.localWidth ?? null, height: a.image?.localHeight ?? null } : null,
    alt: a.altText ?? `Image of ${title}`,
  };
}

/** Why the review queue is empty. */
export function emptyQueueReason(described: number): string {
  return described === 0
    ? "Nothing is described yet: descriptions appear here once the describe worker has written them."
    : `All ${described} current ${described === 1 ? "description has" : "descriptions have"} been reviewed. New ones appear here as they are written.`;
}

/** The review queue's filter as the URL says it (flag, risk: the least risk, creator); unknown values are named in `problems` and ignored. */
export interface QueueFilter {
  flag: string;
  risk: string;
  creator: string;
  problems: string[];
}

/** A least risk as a person types it: 0 to 1, at most three decimals ("0.5", ".75", "1"). */
const RISK = /^(0?\.\d{1,3}|[01](\.\d{0,3})?)$/;

export function readQueueFilter(params: URLSearchParams): QueueFilter {
  const problems: string[] = [];
  const { get, oneOf } = paramReader(params, problems);
  const flag = oneOf("flag", FLAGS);
  let risk = get("risk", 40);
  if (risk && !(RISK.test(risk) && Number(risk) <= 1)) {
    problems.push(`risk "${risk}" is not a number from 0 to 1`);
    risk = "";
  }
  return { flag, risk, creator: get("creator", 200), problems };
}

/** The reviewQueue's filter, and the same works as an artworksConnection filter (to count them); both null without a filter. */
export function queueFilterVariables(f: QueueFilter): { filter: Record<string, unknown> | null; matching: Record<string, unknown> | null } {
  if (!(f.flag || f.risk || f.creator)) return { filter: null, matching: null };
  const filter = { flag: f.flag || null, minRisk: f.risk ? Number(f.risk) : null, creator: f.creator || null };
  return { filter, matching: { ...filter, reviewState: ["UNREVIEWED"] } };
}

/** The queue's URL with the filter, at a place (after or before a cursor) if given. */
export function queueHref(f: QueueFilter, place: { after?: string; before?: string } = {}): string {
  const params = new URLSearchParams();
  if (place.before) params.set("before", place.before);
  else if (place.after) params.set("after", place.after);
  if (f.flag) params.set("flag", f.flag);
  if (f.risk) params.set("risk", f.risk);
  if (f.creator) params.set("creator", f.creator);
  const qs = params.toString();
  return qs ? `/review?${qs}` : "/review";
}
