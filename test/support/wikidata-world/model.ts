import { createHash } from "node:crypto";

/**
 * The world's data: Wikidata items and Commons files, rendered on demand as Turtle in Wikidata's
 * RDF shape (for the SPARQL store) and as wbgetentities / imageinfo JSON (for the Action API).
 * https://www.mediawiki.org/wiki/Wikibase/Indexing/RDF_Dump_Format
 */

export type Rank = "preferred" | "normal" | "deprecated";

export interface CreatorStatement {
  /** A creator QID, or "somevalue" for an unknown value. */
  value: string;
  rank?: Rank;
  /** Attribution qualifiers, e.g. { P1773: "Q5432" }. */
  qualifiers?: Record<string, string>;
}

export interface WorldWork {
  qid: string;
  revision: number;
  modified: string;
  labels: Record<string, string>;
  creators: CreatorStatement[];
  titles?: { text: string; language: string }[];
  /** JSON form, e.g. { time: "+1797-00-00T00:00:00Z", precision: 9 }. */
  inception?: { time: string; precision: number };
  links?: Record<string, string[]>;
  /** P18 values as Wikidata stores them (file names without "File:"). */
  images?: { file: string; rank?: Rank }[];
  height?: { amount: number; unit: string };
  width?: { amount: number; unit: string };
}

export interface WorldFile {
  bytes: Buffer;
  /** The original's size as imageinfo reports it (default: the length of bytes, which are thumbnail-sized). */
  size?: number;
  mime: string;
  width: number;
  height: number;
  /** Commons could not render a thumbnail (its imageinfo has thumberror and no thumburl): only the original can be had. */
  noThumbnail?: boolean;
}

interface StoredFile extends WorldFile {
  sha1: string;
  pageId: number;
}

export class WorldModel {
  readonly works = new Map<string, WorldWork>();
  /** Creators, linked items: just labels. */
  readonly items = new Map<string, Record<string, string>>();
  /** A linked item's aliases and its own P31 values (items without an entry have none). */
  readonly itemFacts = new Map<string, { aliases?: Record<string, string[]>; instanceOf?: string[] }>();
  readonly redirects = new Map<string, string>();
  readonly deleted = new Set<string>();
  /** Commons files by title ("File:A.jpg"); set them with setFile. */
  readonly files = new Map<string, StoredFile>();
  private readonly bySha1 = new Map<string, StoredFile>();
  /** Commons file redirects, title -> title. */
  readonly fileRedirects = new Map<string, string>();
  /** Bumped by every change, so the SPARQL store knows when to reload. */
  generation = 0;
  /** Wikidata's revision ids are past 2^31 (beyond GraphQL's Int and PostgreSQL's integer); so are the world's. */
  private nextRevision = 2_300_000_000;

  addWork(w: Omit<WorldWork, "revision" | "modified"> & Partial<Pick<WorldWork, "revision" | "modified">>): WorldWork {
    const work = { revision: this.nextRevision++, modified: "2026-01-01T00:00:00Z", ...w };
    this.works.set(work.qid, work);
    this.generation++;
    return work;
  }

  /** An edit: a new revision and modification date. */
  edit(qid: string, change: (w: WorldWork) => void): void {
    const w = this.works.get(qid);
    if (!w) throw new Error(`no work ${qid}`);
    change(w);
    w.revision = this.nextRevision++;
    w.modified = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    this.generation++;
  }

  /** Uploads (or re-uploads) a file under a title. */
  setFile(title: string, file: WorldFile): void {
    const sha1 = createHash("sha1").update(file.bytes).digest("hex");
    const stored = { ...file, sha1, pageId: this.files.get(title)?.pageId ?? 1000 + this.files.size };
    this.files.set(title, stored);
    this.bySha1.set(sha1, stored);
    this.generation++;
  }

  merge(from: string, into: string): void {
    this.works.delete(from);
    this.redirects.set(from, into);
    this.generation++;
  }

  delete(qid: string): void {
    this.works.delete(qid);
    this.deleted.add(qid);
    this.generation++;
  }

  // --- RDF ---

  turtle(): string {
    const lines = [
      "@prefix wd: <http://www.wikidata.org/entity/> .",
      "@prefix wds: <http://www.wikidata.org/entity/statement/> .",
      "@prefix wdt: <http://www.wikidata.org/prop/direct/> .",
      "@prefix p: <http://www.wikidata.org/prop/> .",
      "@prefix ps: <http://www.wikidata.org/prop/statement/> .",
      "@prefix psv: <http://www.wikidata.org/prop/statement/value/> .",
      "@prefix pq: <http://www.wikidata.org/prop/qualifier/> .",
      "@prefix wdv: <http://www.wikidata.org/value/> .",
      "@prefix wikibase: <http://wikiba.se/ontology#> .",
      "@prefix schema: <http://schema.org/> .",
      "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .",
      "@prefix owl: <http://www.w3.org/2002/07/owl#> .",
      "@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .",
    ];
    const lit = (s: string) => JSON.stringify(s);
    const rankIri = (r: Rank = "normal") => `wikibase:${r[0]!.toUpperCase()}${r.slice(1)}Rank`;
    for (const [qid, labels] of this.items) {
      for (const [lang, l] of Object.entries(labels)) lines.push(`wd:${qid} rdfs:label ${lit(l)}@${lang} .`);
    }
    for (const [from, to] of this.redirects) lines.push(`wd:${from} owl:sameAs wd:${to} .`);
    for (const w of this.works.values()) {
      const q = w.qid;
      lines.push(`wd:${q} schema:version "${w.revision}"^^xsd:integer ; schema:dateModified "${w.modified}"^^xsd:dateTime .`);
      for (const [lang, l] of Object.entries(w.labels)) lines.push(`wd:${q} rdfs:label ${lit(l)}@${lang} .`);
      const best = bestRank(w.creators);
      w.creators.forEach((c, i) => {
        const st = `wds:${q}-P170-${i}`;
        const value = c.value === "somevalue" ? `<http://www.wikidata.org/.well-known/genid/${hash(`${q}-${i}`)}>` : `wd:${c.value}`;
        lines.push(`wd:${q} p:P170 ${st} .`, `${st} ps:P170 ${value} ; wikibase:rank ${rankIri(c.rank)} .`);
        if ((c.rank ?? "normal") === best) lines.push(`wd:${q} wdt:P170 ${value} .`);
        for (const [p, v] of Object.entries(c.qualifiers ?? {})) lines.push(`${st} pq:${p} wd:${v} .`);
      });
      for (const img of w.images ?? []) {
        if (img.rank === "deprecated") continue;
        lines.push(`wd:${q} wdt:P18 <http://commons.wikimedia.org/wiki/Special:FilePath/${encodeURIComponent(img.file)}> .`);
      }
      if (w.inception) {
        const v = `wdv:${hash(q + w.inception.time)}`;
        const rdfTime = w.inception.time.replace(/^\+/, "").replace(/-00/g, "-01");
        lines.push(
          `wd:${q} wdt:P571 "${rdfTime}"^^xsd:dateTime ; p:P571 wds:${q}-P571 .`,
          `wds:${q}-P571 psv:P571 ${v} ; wikibase:rank wikibase:NormalRank .`,
          `${v} wikibase:timeValue "${rdfTime}"^^xsd:dateTime ; wikibase:timePrecision ${w.inception.precision} .`,
        );
      }
      for (const [p, qids] of Object.entries(w.links ?? {})) for (const v of qids) lines.push(`wd:${q} wdt:${p} wd:${v} .`);
    }
    return lines.join("\n") + "\n";
  }

  // --- wbgetentities ---

  wbgetentities(ids: string[], props: string[], languages: string[] | null): unknown {
    const entities: Record<string, unknown> = {};
    for (const requested of ids) {
      let id = requested;
      const to = this.redirects.get(id);
      if (to) id = to;
      const work = this.works.get(id);
      const labels = work?.labels ?? this.items.get(id);
      if (!labels) {
        entities[requested] = { id: requested, missing: "" };
        continue;
      }
      const e: Record<string, unknown> = { type: "item", id };
      if (to) e.redirects = { from: requested, to };
      if (props.includes("info")) Object.assign(e, { lastrevid: work?.revision ?? 1, modified: work?.modified ?? "2026-01-01T00:00:00Z" });
      if (props.includes("labels")) {
        e.labels = Object.fromEntries(
          Object.entries(labels)
            .filter(([l]) => !languages || languages.includes(l))
            .map(([language, value]) => [language, { language, value }]),
        );
      }
      if (props.includes("aliases")) {
        // Wikibase writes an empty map as [].
        const aliases = Object.entries(this.itemFacts.get(id)?.aliases ?? {})
          .filter(([l, values]) => (!languages || languages.includes(l)) && values.length)
          .map(([language, values]) => [language, values.map((value) => ({ language, value }))]);
        e.aliases = aliases.length ? Object.fromEntries(aliases) : [];
      }
      if (props.includes("claims")) {
        if (work) e.claims = claimsOf(work);
        else {
          const p31 = this.itemFacts.get(id)?.instanceOf ?? [];
          e.claims = p31.length ? { P31: p31.map((q, i) => ({ mainsnak: itemSnak("P31", q), type: "statement", rank: "normal", id: `${id}$P31-${i + 1}` })) } : [];
        }
      }
      // Keyed by the id asked for, before redirects are resolved (Wikibase's ResultBuilder): a
      // merged item and the item it was merged into, asked for together, are two entries.
      entities[requested] = e;
    }
    return { entities, success: 1 };
  }

  // --- Commons imageinfo ---

  /** Pages for titles as Commons answers them (normalised, redirected, missing). */
  imageinfo(titles: string[], thumbWidth: number, baseUrl: string): { normalized: unknown[]; redirects: unknown[]; pages: [string, unknown][] } {
    const normalized: { from: string; to: string }[] = [];
    const redirects: { from: string; to: string }[] = [];
    const pages: [string, unknown][] = [];
    let missingKey = -1;
    for (const asked of titles) {
      let t = normalizeTitle(asked);
      if (t !== asked) normalized.push({ from: asked, to: t });
      const r = this.fileRedirects.get(t);
      if (r) {
        redirects.push({ from: t, to: r });
        t = r;
      }
      const f = this.files.get(t);
      if (!f) {
        pages.push([String(missingKey--), { ns: 6, title: t, missing: "", known: undefined }]);
        continue;
      }
      const sha1 = f.sha1;
      const name = encodeURIComponent(t.slice(5).replace(/ /g, "_"));
      const tw = Math.min(thumbWidth, f.width);
      pages.push([
        String(f.pageId),
        {
          ns: 6,
          title: t,
          imagerepository: "local",
          imageinfo: [
            {
              size: f.size ?? f.bytes.length,
              width: f.width,
              height: f.height,
              // Content-addressed URLs: a new upload gets a new URL, as on upload.wikimedia.org.
              ...(f.noThumbnail
                ? { thumberror: "Error creating thumbnail: File with dimensions greater than 12.5 MP" }
                : { thumburl: `${baseUrl}/thumb/${sha1}/${tw}px-${name}`, thumbwidth: tw, thumbheight: Math.round((f.height * tw) / f.width) }),
              url: `${baseUrl}/file/${sha1}/${name}`,
              descriptionurl: `https://commons.wikimedia.org/wiki/File:${name}`,
              sha1,
              mime: f.mime,
              extmetadata: {
                LicenseShortName: { value: "Public domain", source: "commons-desc-page" },
                UsageTerms: { value: "Public domain", source: "commons-desc-page" },
                AttributionRequired: { value: "false", source: "commons-desc-page" },
                Artist: { value: '<a href="https://en.wikipedia.org/wiki/Goya" title="Goya">Francisco de Goya</a>&nbsp;(1746&ndash;1828)', source: "commons-desc-page" },
                Credit: { value: "<span class=\"int-own-work\">Museo del Prado</span>", source: "commons-desc-page" },
              },
            },
          ],
        },
      ]);
    }
    return { normalized, redirects, pages };
  }

  /** The bytes served for a sha1 (original or thumbnail: the fixtures are already thumbnail-sized). */
  fileBySha1(sha1: string): WorldFile | undefined {
    return this.bySha1.get(sha1);
  }
}

function normalizeTitle(t: string): string {
  const bare = t.replace(/^(file|image):/i, "").replace(/_/g, " ");
  return `File:${bare.charAt(0).toUpperCase()}${bare.slice(1)}`;
}

function hash(s: string): string {
  return createHash("md5").update(s).digest("hex");
}

function bestRank(ss: { rank?: Rank }[]): Rank {
  return ss.some((s) => s.rank === "preferred") ? "preferred" : "normal";
}

function itemSnak(p: string, qid: string) {
  return { snaktype: "value", property: p, datavalue: { value: { "entity-type": "item", "numeric-id": Number(qid.slice(1)), id: qid }, type: "wikibase-entityid" } };
}

function claimsOf(w: WorldWork): Record<string, unknown[]> {
  const claims: Record<string, unknown[]> = {};
  const add = (p: string, mainsnak: unknown, rank: Rank = "normal", qualifiers?: Record<string, unknown[]>) =>
    (claims[p] ??= []).push({ mainsnak, type: "statement", rank, id: `${w.qid}$${p}-${(claims[p]?.length ?? 0) + 1}`, ...(qualifiers ? { qualifiers } : {}) });
  for (const c of w.creators) {
    const snak = c.value === "somevalue" ? { snaktype: "somevalue", property: "P170" } : itemSnak("P170", c.value);
    const qualifiers = c.qualifiers
      ? Object.fromEntries(Object.entries(c.qualifiers).map(([p, v]) => [p, [itemSnak(p, v)]]))
      : undefined;
    add("P170", snak, c.rank, qualifiers);
  }
  for (const img of w.images ?? []) add("P18", { snaktype: "value", property: "P18", datavalue: { value: img.file, type: "string" } }, img.rank);
  if (w.inception) {
    add("P571", {
      snaktype: "value",
      property: "P571",
      datavalue: {
        value: { time: w.inception.time, timezone: 0, before: 0, after: 0, precision: w.inception.precision, calendarmodel: "http://www.wikidata.org/entity/Q1985727" },
        type: "time",
      },
    });
  }
  for (const [p, qids] of Object.entries(w.links ?? {})) for (const q of qids) add(p, itemSnak(p, q));
  for (const t of w.titles ?? []) add("P1476", { snaktype: "value", property: "P1476", datavalue: { value: t, type: "monolingualtext" } });
  for (const [p, v] of [["P2048", w.height], ["P2049", w.width]] as const) {
    if (v) {
      add(p, {
        snaktype: "value",
        property: p,
        datavalue: { value: { amount: `+${v.amount}`, unit: `http://www.wikidata.org/entity/${v.unit}` }, type: "quantity" },
      });
    }
  }
  return claims;
}
