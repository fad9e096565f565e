import { WBK } from "wikibase-sdk";
import { z } from "zod";
import type { AttributionKind } from "../generated/prisma/enums.js";
import { BadResponseError, type HttpClient } from "./http.js";

/**
 * Wikidata: pure SPARQL builders and response parsers. Queries are standard SPARQL 1.1 with every
 * prefix declared and no `SERVICE wikibase:label`, so they run on WDQS, QLever and oxigraph alike.
 * Shapes: https://www.mediawiki.org/wiki/Wikibase/Indexing/RDF_Dump_Format
 */

export const ATTRIBUTION_QUALIFIERS: Record<string, AttributionKind> = {
  P1773: "ATTRIBUTED_TO",
  P1774: "WORKSHOP_OF",
  P1775: "FOLLOWER_OF",
  P1776: "CIRCLE_OF",
  P1777: "MANNER_OF",
  P1779: "POSSIBLE_CREATOR",
  P1780: "SCHOOL_OF",
};

/** Item-valued statements stored as ArtworkLink rows. */
export const LINK_PROPERTIES = ["P31", "P136", "P186", "P195", "P276", "P180"] as const;

const PREFIXES = `PREFIX wd: <http://www.wikidata.org/entity/>
PREFIX p: <http://www.wikidata.org/prop/>
PREFIX ps: <http://www.wikidata.org/prop/statement/>
PREFIX pq: <http://www.wikidata.org/prop/qualifier/>
PREFIX wikibase: <http://wikiba.se/ontology#>
PREFIX schema: <http://schema.org/>`;

const QID = /^Q[1-9][0-9]*$/;

/**
 * Inventory of one creator: every item whose non-deprecated P170 statement names the creator, or
 * an unknown-value P170 with an attribution qualifier naming it, with its revision.
 */
export function inventoryQuery(creatorQid: string): string {
  if (!QID.test(creatorQid)) throw new Error(`not an item id: ${creatorQid}`);
  const qualifiers = Object.entries(ATTRIBUTION_QUALIFIERS)
    .map(([p, kind]) => `(pq:${p} "${kind}")`)
    .join(" ");
  // An unknown value is a skolem IRI on WDQS and in the dumps, a blank node on older stores.
  return `${PREFIXES}
SELECT ?item ?version ?modified ?kind WHERE {
  {
    ?item p:P170 ?st .
    ?st ps:P170 wd:${creatorQid} .
    BIND("CREATOR" AS ?kind)
  } UNION {
    VALUES (?qualifier ?kind) { ${qualifiers} }
    ?st ?qualifier wd:${creatorQid} .
    ?item p:P170 ?st .
    ?st ps:P170 ?someone .
    FILTER(isBlank(?someone) || STRSTARTS(STR(?someone), "http://www.wikidata.org/.well-known/genid/"))
  }
  ?st wikibase:rank ?rank .
  FILTER(?rank != wikibase:DeprecatedRank)
  ?item schema:version ?version ;
        schema:dateModified ?modified .
}`;
}

export interface InventoryItem {
  qid: string;
  revision: number;
  modified: Date;
  attributions: AttributionKind[];
}

const sparqlTerm = z.looseObject({ type: z.enum(["uri", "literal", "typed-literal", "bnode"]), value: z.string(), datatype: z.string().optional() });
const sparqlAnswer = z.looseObject({
  head: z.looseObject({ vars: z.array(z.string()) }),
  results: z.looseObject({ bindings: z.array(z.record(z.string(), sparqlTerm)) }),
});
const INVENTORY_VARS = ["item", "version", "modified", "kind"] as const;
const ENTITY_IRI = /^http:\/\/www\.wikidata\.org\/entity\/(Q[1-9][0-9]*)$/;
const KINDS = new Set<string>(["CREATOR", ...Object.values(ATTRIBUTION_QUALIFIERS)]);

/**
 * Parses a complete SPARQL JSON answer to the inventory query. Every row must bind what the query
 * selects, with the right types; anything else is a BadResponseError, never a partial list.
 */
export function parseInventory(json: unknown): InventoryItem[] {
  const j = sparqlAnswer.safeParse(json);
  if (!j.success) throw new BadResponseError(`SPARQL answer without head.vars and results.bindings (${zodIssue(j.error)})`);
  const missingVars = INVENTORY_VARS.filter((v) => !j.data.head.vars.includes(v));
  if (missingVars.length) throw new BadResponseError(`SPARQL answer without the variables ${missingVars.join(", ")}`);
  const byQid = new Map<string, InventoryItem>();
  for (const [i, row] of j.data.results.bindings.entries()) {
    const { item, version, modified, kind } = row;
    if (!item || !version || !modified || !kind) throw new BadResponseError(`SPARQL row ${i} lacks ${INVENTORY_VARS.filter((v) => !row[v]).join(", ")}`);
    const revision = Number(version.value);
    const when = new Date(modified.value);
    if (item.type !== "uri" || !Number.isSafeInteger(revision) || revision < 0 || Number.isNaN(when.getTime()) || !KINDS.has(kind.value)) {
      throw new BadResponseError(`SPARQL row ${i} has a value of the wrong type`);
    }
    // Only items are artworks (a lexeme or property with P170 is not).
    const qid = ENTITY_IRI.exec(item.value)?.[1];
    if (!qid) continue;
    let it = byQid.get(qid);
    if (!it) {
      it = { qid, revision, modified: when, attributions: [] };
      byQid.set(qid, it);
    }
    const k = kind.value as AttributionKind;
    if (!it.attributions.includes(k)) it.attributions.push(k);
  }
  for (const it of byQid.values()) it.attributions.sort(attributionOrder);
  return [...byQid.values()].sort((a, b) => qidNumber(a.qid) - qidNumber(b.qid));
}

/** The first problem zod found, as "path: message" (no values: they may be long). */
export function zodIssue(err: z.ZodError): string {
  const issue = err.issues[0];
  if (!issue) return "invalid";
  return `${issue.path.length ? issue.path.join(".") + ": " : ""}${issue.message}`;
}

const KIND_ORDER: AttributionKind[] = ["CREATOR", ...Object.values(ATTRIBUTION_QUALIFIERS)];
const attributionOrder = (a: AttributionKind, b: AttributionKind) => KIND_ORDER.indexOf(a) - KIND_ORDER.indexOf(b);

export function qidNumber(qid: string): number {
  return Number(qid.slice(1));
}

/** URL builders over the configured endpoints (wikibase-sdk), with maxlag on Action API requests. */
export interface WikidataUrls {
  sparql(query: string): { url: string; body: string };
  entities(ids: string[], props: string[], languages?: string[]): string[];
}

export function wikidataUrls(apiUrl: string, sparqlUrl: string): WikidataUrls {
  const wbk = WBK({ instance: apiUrl, sparqlEndpoint: sparqlUrl, wgScriptPath: new URL(apiUrl).pathname.replace(/\/api\.php$/, "") });
  return {
    sparql(query) {
      const full = wbk.sparqlQuery(query);
      const at = full.indexOf("?");
      return { url: full.slice(0, at), body: full.slice(at + 1) };
    },
    entities(ids, props, languages) {
      if (ids.length === 0) return [];
      return wbk.getManyEntities({ ids: ids as `Q${number}`[], props: props as never, languages, redirects: true }).map((u) => `${u}&maxlag=5`);
    },
  };
}

// --- wbgetentities ---

/** Wikibase serialises an empty map as [] in some versions: accepted as {}. */
const mapOf = <T extends z.ZodType>(v: T) =>
  z.union([z.record(z.string(), v), z.array(z.never()).max(0).transform((): Record<string, z.output<T>> => ({}))]);

/** Each datavalue type with the shape parseArtwork reads. */
const DATAVALUE_TYPES = {
  string: z.string(),
  "wikibase-entityid": z.looseObject({ id: z.string().optional() }),
  time: z.looseObject({ time: z.string(), precision: z.number().int() }),
  quantity: z.looseObject({ amount: z.string(), unit: z.string() }),
  monolingualtext: z.looseObject({ text: z.string(), language: z.string() }),
} as const;
type DatavalueType = keyof typeof DATAVALUE_TYPES;

/** The datavalue type of each property parseArtwork reads (Wikidata fixes a property's datatype). */
const PROPERTY_TYPES: Record<string, DatavalueType> = {
  P18: "string",
  P170: "wikibase-entityid",
  P571: "time",
  P1476: "monolingualtext",
  P2048: "quantity",
  P2049: "quantity",
  ...Object.fromEntries(LINK_PROPERTIES.map((p) => [p, "wikibase-entityid" as const])),
};

const snakSchema = z.looseObject({
  snaktype: z.enum(["value", "somevalue", "novalue"]),
  datavalue: z.looseObject({ value: z.unknown(), type: z.string() }).optional(),
});
const statementSchema = z.looseObject({ mainsnak: snakSchema, rank: z.enum(["preferred", "normal", "deprecated"]) });
const entitySchema = z.looseObject({
  id: z.string().optional(),
  missing: z.string().optional(),
  lastrevid: z.number().int().nonnegative().optional(),
  modified: z.string().optional(),
  labels: mapOf(z.looseObject({ language: z.string(), value: z.string() })).optional(),
  aliases: mapOf(z.array(z.looseObject({ language: z.string(), value: z.string() }))).optional(),
  claims: mapOf(z.array(statementSchema)).optional(),
  redirects: z.looseObject({ from: z.string(), to: z.string() }).optional(),
});
const entitiesAnswer = z.looseObject({ entities: z.record(z.string(), entitySchema) });

type Snak = z.infer<typeof snakSchema>;
type Statement = z.infer<typeof statementSchema>;
export type RawEntity = z.infer<typeof entitySchema> & { id: string };

export interface ArtworkDetails {
  qid: string;
  revision: number;
  modified: Date | null;
  labels: Record<string, string>;
  /** language -> title: P1476 where there is one, else the label, in SYNC_LANGUAGES order first. */
  titles: Record<string, string>;
  title: string | null;
  inception: string | null;
  inceptionPrecision: number | null;
  inceptionYear: number | null;
  height: number | null;
  heightUnit: string | null;
  width: number | null;
  widthUnit: string | null;
  /** Property -> item QIDs, in claim order. */
  links: { property: string; qid: string }[];
  /** P18 file titles ("File:..."), in claim order; `main` is the preferred one, else the first. */
  images: { fileTitle: string; isMain: boolean }[];
}

export type EntityOutcome =
  | { kind: "found"; entity: RawEntity }
  | { kind: "redirect"; to: string }
  | { kind: "missing" };

/**
 * What wbgetentities said about each requested id, checked against what was asked for: every id
 * answered, and every entity found carries the keys `props` asked for (info: lastrevid and
 * modified; labels; aliases; claims) with the right types. An entity with no label in the languages or no
 * statement is fine (the key is there, empty); an answer without the key is a BadResponseError.
 * A merged item comes back under its target's id with a `redirects` entry; a deleted one as
 * `{ id, missing: "" }`.
 */
export function parseEntities(json: unknown, requested: string[], props: string[] = ["info"]): Map<string, EntityOutcome> {
  const apiError = (json as { error?: { code?: unknown; info?: unknown } } | null)?.error;
  if (apiError) throw new BadResponseError(`wbgetentities: ${String(apiError.code)}: ${String(apiError.info)}`);
  const j = entitiesAnswer.safeParse(json);
  if (!j.success) throw new BadResponseError(`wbgetentities answer malformed (${zodIssue(j.error)})`);
  const out = new Map<string, EntityOutcome>();
  for (const [key, raw] of Object.entries(j.data.entities)) {
    const e = { ...raw, id: raw.id ?? key };
    if (e.missing !== undefined) {
      out.set(e.id, { kind: "missing" });
      continue;
    }
    checkEntity(e, props);
    if (e.redirects) {
      out.set(e.redirects.from, { kind: "redirect", to: e.redirects.to });
      // Wikidata keys each entity by the id asked for, so a target asked for too has its own entry;
      // a server that answers it only once, under the redirect, still answers for it.
      if (requested.includes(e.redirects.to) && !out.has(e.redirects.to)) out.set(e.redirects.to, { kind: "found", entity: e });
    } else {
      out.set(e.id, { kind: "found", entity: e });
    }
  }
  const unanswered = requested.filter((id) => !out.has(id));
  if (unanswered.length) throw new BadResponseError(`wbgetentities did not answer for ${unanswered.slice(0, 5).join(", ")}${unanswered.length > 5 ? ` and ${unanswered.length - 5} more` : ""}`);
  return out;
}

function checkEntity(e: RawEntity, props: string[]): void {
  const lacks = [
    ...(props.includes("info") && (e.lastrevid === undefined || e.modified === undefined) ? ["lastrevid/modified"] : []),
    ...(props.includes("labels") && e.labels === undefined ? ["labels"] : []),
    ...(props.includes("aliases") && e.aliases === undefined ? ["aliases"] : []),
    ...(props.includes("claims") && e.claims === undefined ? ["claims"] : []),
  ];
  if (lacks.length) throw new BadResponseError(`wbgetentities answered ${e.id} without ${lacks.join(", ")}, which was asked for`);
  if (e.modified !== undefined && Number.isNaN(Date.parse(e.modified))) throw new BadResponseError(`wbgetentities answered ${e.id} with a bad modified date`);
  for (const [p, statements] of Object.entries(e.claims ?? {})) {
    const type = PROPERTY_TYPES[p];
    if (!type) continue;
    for (const s of statements) {
      const dv = s.mainsnak.datavalue;
      if (s.mainsnak.snaktype !== "value") continue;
      if (!dv || dv.type !== type || !DATAVALUE_TYPES[type].safeParse(dv.value).success) {
        throw new BadResponseError(`wbgetentities answered ${e.id} with a ${p} value that is not a ${type}`);
      }
    }
  }
}

const activeStatements = (e: RawEntity, p: string) => (e.claims?.[p] ?? []).filter((s) => s.rank !== "deprecated");
const valued = (ss: Statement[]) => ss.filter((s) => s.mainsnak.snaktype === "value" && s.mainsnak.datavalue);
/** Preferred statements first, then normal ones, each in claim order (Wikidata's best-rank rule). */
const byRank = (ss: Statement[]) => [...ss.filter((s) => s.rank === "preferred"), ...ss.filter((s) => s.rank !== "preferred")];

function itemValues(e: RawEntity, p: string): string[] {
  const ids = valued(activeStatements(e, p))
    .map((s) => (s.mainsnak.datavalue!.value as { id?: string }).id)
    .filter((id): id is string => !!id && QID.test(id));
  return [...new Set(ids)];
}

/** Largest |inceptionYear| stored (Artwork.inceptionYear is a 32-bit integer on PostgreSQL). */
export const MAX_INCEPTION_YEAR = 2 ** 31 - 1;

/** "+1797-00-00T00:00:00Z" (JSON) -> "1797-01-01T00:00:00Z" (the RDF form WDQS returns). */
export function normalizeTime(time: string): { value: string; year: number } | null {
  const m = /^([+-])(\d+)-(\d\d)-(\d\d)T(\d\d:\d\d:\d\d)Z$/.exec(time);
  if (!m) return null;
  const [, sign, y, mo, d, t] = m as unknown as [string, string, string, string, string, string];
  const year = Number(y) * (sign === "-" ? -1 : 1);
  const yyyy = (sign === "-" ? "-" : "") + y.replace(/^0+(?=\d{4})/, "").padStart(4, "0");
  return { value: `${yyyy}-${mo === "00" ? "01" : mo}-${d === "00" ? "01" : d}T${t}Z`, year };
}

function quantity(e: RawEntity, p: string): { amount: number; unit: string | null } | null {
  const s = byRank(valued(activeStatements(e, p)))[0];
  if (!s) return null;
  const v = s.mainsnak.datavalue!.value as { amount: string; unit: string };
  const amount = Number(v.amount);
  if (!Number.isFinite(amount)) return null;
  const unit = v.unit && v.unit !== "1" ? v.unit.replace(/^https?:\/\/www\.wikidata\.org\/entity\//, "") : null;
  return { amount, unit };
}

/**
 * The creators an entity's statements credit, as the inventory query reads them: every
 * non-deprecated P170 value, and every attribution qualifier (P1773–P1780) on an unknown-value P170.
 * Pure; `claims` must have been asked for.
 */
export function creditedCreators(e: RawEntity): Set<string> {
  const out = new Set(itemValues(e, "P170"));
  for (const s of activeStatements(e, "P170")) {
    if (s.mainsnak.snaktype !== "somevalue") continue;
    const qualifiers = (s as { qualifiers?: Record<string, { datavalue?: { value?: { id?: unknown } } }[]> }).qualifiers ?? {};
    for (const p of Object.keys(ATTRIBUTION_QUALIFIERS)) {
      for (const q of qualifiers[p] ?? []) {
        const id = q.datavalue?.value?.id;
        if (typeof id === "string" && QID.test(id)) out.add(id);
      }
    }
  }
  return out;
}

/** Details of one artwork from a wbgetentities entity (props info|claims|labels). */
export function parseArtwork(e: RawEntity, languages: string[]): ArtworkDetails {
  const labels: Record<string, string> = {};
  for (const lang of languages) {
    const l = e.labels?.[lang]?.value;
    if (l) labels[lang] = l;
  }
  const p1476: Record<string, string> = {};
  for (const s of byRank(valued(activeStatements(e, "P1476")))) {
    const v = s.mainsnak.datavalue!.value as { text: string; language: string };
    if (v.text && v.language && !(v.language in p1476)) p1476[v.language] = v.text;
  }
  const titles: Record<string, string> = {};
  for (const lang of languages) {
    const t = p1476[lang] ?? labels[lang];
    if (t) titles[lang] = t;
  }
  for (const [lang, t] of Object.entries(p1476)) if (!(lang in titles)) titles[lang] = t;
  const title = languages.map((l) => titles[l]).find(Boolean) ?? Object.values(titles)[0] ?? null;

  let inception: string | null = null;
  let inceptionPrecision: number | null = null;
  let inceptionYear: number | null = null;
  const p571 = byRank(valued(activeStatements(e, "P571")))[0];
  if (p571) {
    const v = p571.mainsnak.datavalue!.value as { time: string; precision: number };
    const t = normalizeTime(v.time);
    if (t) {
      inception = t.value;
      inceptionPrecision = v.precision;
      // A vandalised year past a 32-bit integer (Wikidata takes +99999999999) would fail the whole
      // work's write on PostgreSQL: the date is kept as written, without a year to filter on.
      inceptionYear = Math.abs(t.year) <= MAX_INCEPTION_YEAR ? t.year : null;
    }
  }
  const height = quantity(e, "P2048");
  const width = quantity(e, "P2049");

  const links: { property: string; qid: string }[] = [];
  for (const p of LINK_PROPERTIES) for (const qid of itemValues(e, p)) links.push({ property: p, qid });

  const p18 = valued(activeStatements(e, "P18"));
  const files: { fileTitle: string; preferred: boolean }[] = [];
  for (const s of p18) {
    const name = String(s.mainsnak.datavalue!.value);
    const fileTitle = fileTitleOf(name);
    if (!files.some((f) => f.fileTitle === fileTitle)) files.push({ fileTitle, preferred: s.rank === "preferred" });
  }
  const mainIndex = Math.max(0, files.findIndex((f) => f.preferred));
  const images = files.map((f, i) => ({ fileTitle: f.fileTitle, isMain: i === mainIndex }));

  return {
    qid: e.id,
    revision: e.lastrevid ?? 0,
    modified: e.modified ? new Date(e.modified) : null,
    labels,
    titles,
    title,
    inception,
    inceptionPrecision,
    inceptionYear,
    height: height?.amount ?? null,
    heightUnit: height?.unit ?? null,
    width: width?.amount ?? null,
    widthUnit: width?.unit ?? null,
    links,
    images,
  };
}

/** Labels of an entity in the given languages (for creators and linked items). */
export function parseLabels(e: RawEntity, languages: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const lang of languages) {
    const l = e.labels?.[lang]?.value;
    if (l) out[lang] = l;
  }
  return out;
}

/** What wbgetentities asks for a linked item: its labels, aliases and P31 (the quality checks match them). */
export const LINKED_ITEM_PROPS = ["labels", "aliases", "claims"];

/** A linked item's labels and aliases in the given languages, and its own P31 values. */
export function parseLinkedItem(
  e: RawEntity,
  languages: string[],
): { labels: Record<string, string>; aliases: Record<string, string[]>; instanceOf: string[] } {
  const aliases: Record<string, string[]> = {};
  for (const lang of languages) {
    const values = [...new Set((e.aliases?.[lang] ?? []).map((a) => a.value).filter(Boolean))];
    if (values.length) aliases[lang] = values;
  }
  return { labels: parseLabels(e, languages), aliases, instanceOf: itemValues(e, "P31") };
}

/**
 * "Goya - Caprichos.jpg", "File:Goya_-_Caprichos.jpg" -> "File:Goya - Caprichos.jpg". Only an ASCII
 * first letter is capitalised here: JavaScript's case mapping differs from MediaWiki's for others
 * ("ß" -> "SS", Georgian letters to Mtavruli), which would ask Commons for a file that does not
 * exist. P18 values are Commons' own names already, and Commons' `normalized` answer covers the rest.
 */
export function fileTitleOf(name: string): string {
  const bare = name.replace(/^(File|Image):/i, "").replace(/_/g, " ").trim();
  return `File:${/^[a-z]/.test(bare) ? bare[0]!.toUpperCase() + bare.slice(1) : bare}`;
}

// --- requests (through the polite client) ---

/** WDQS asks for one query at a time per client; every SPARQL request goes through this queue. */
let sparqlQueue: Promise<unknown> = Promise.resolve();

export async function fetchInventory(http: HttpClient, urls: WikidataUrls, creatorQid: string, signal?: AbortSignal): Promise<InventoryItem[]> {
  const { url, body } = urls.sparql(inventoryQuery(creatorQid));
  const run = sparqlQueue.then(() =>
    http.json(url, {
      method: "POST",
      body,
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/sparql-results+json" },
      signal,
      parse: parseInventory,
    }),
  );
  sparqlQueue = run.catch(() => undefined);
  try {
    return await run;
  } catch (err) {
    if (err instanceof BadResponseError) throw new BadResponseError(`inventory of ${creatorQid}: ${err.message}`);
    throw err;
  }
}

/** wbgetentities for any number of ids (50 per request), merged into one outcome map. */
export async function fetchEntities(
  http: HttpClient,
  urls: WikidataUrls,
  ids: string[],
  props: string[],
  languages?: string[],
  signal?: AbortSignal,
): Promise<Map<string, EntityOutcome>> {
  const out = new Map<string, EntityOutcome>();
  const chunks = urls.entities(ids, props, languages);
  for (const [i, url] of chunks.entries()) {
    const requested = ids.slice(i * 50, i * 50 + 50);
    const answer = await http.json(url, { signal, parse: (json) => parseEntities(json, requested, props) });
    for (const [k, v] of answer) out.set(k, v);
  }
  return out;
}
