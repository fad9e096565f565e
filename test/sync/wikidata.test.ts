import { describe, expect, it } from "vitest";
import { imageHostCheck, stripHtml, thumbWidthFor } from "../../src/sync/commons.js";
import { commonsFilePageUrl, webUrl } from "../../src/text/web-url.js";
import { fileTitleOf, inventoryQuery, normalizeTime, parseArtwork, parseEntities, parseInventory, wikidataUrls } from "../../src/sync/wikidata.js";
import { BadResponseError } from "../../src/sync/http.js";
import { WorldModel } from "../support/wikidata-world/model.js";

describe("inventory query", () => {
  const q = inventoryQuery("Q5432");
  it("is standard SPARQL: every prefix used is declared, no label service", () => {
    const declared = new Set([...q.matchAll(/^PREFIX (\w+):/gm)].map((m) => m[1]));
    const used = new Set([...q.replace(/^PREFIX.*$/gm, "").matchAll(/\b([a-z]+):[A-Za-z]/g)].map((m) => m[1]).filter((p) => p !== "http"));
    expect([...used].filter((p) => !declared.has(p))).toEqual([]);
    expect(q).not.toMatch(/SERVICE/i);
  });
  it("covers every attribution qualifier and skips deprecated statements", () => {
    for (const p of ["P1773", "P1774", "P1775", "P1776", "P1777", "P1779", "P1780"]) expect(q).toContain(`pq:${p}`);
    expect(q).toContain("wikibase:DeprecatedRank");
    expect(() => inventoryQuery("Q1 } DROP")).toThrow();
  });
  it("rejects an answer that is not a complete result set", () => {
    expect(() => parseInventory({ head: { vars: [] } })).toThrow(BadResponseError);
    expect(
      parseInventory({
        head: { vars: ["item", "version", "modified", "kind"] },
        results: {
          bindings: ["CREATOR", "WORKSHOP_OF"].map((kind) => ({
            item: { type: "uri", value: "http://www.wikidata.org/entity/Q7" },
            version: { type: "literal", datatype: "http://www.w3.org/2001/XMLSchema#integer", value: "42" },
            modified: { type: "literal", datatype: "http://www.w3.org/2001/XMLSchema#dateTime", value: "2026-01-01T00:00:00Z" },
            kind: { type: "literal", value: kind },
          })),
        },
      }),
    ).toEqual([{ qid: "Q7", revision: 42, modified: new Date("2026-01-01T00:00:00Z"), attributions: ["CREATOR", "WORKSHOP_OF"] }]);
  });
});

describe("wbgetentities", () => {
  const urls = wikidataUrls("http://127.0.0.1:1/w/api.php", "http://127.0.0.1:1/sparql");
  it("builds chunks of 50 ids with maxlag", () => {
    const u = urls.entities(Array.from({ length: 120 }, (_, i) => `Q${i + 1}`), ["info"]);
    expect(u).toHaveLength(3);
    expect(u[0]).toMatch(/^http:\/\/127\.0\.0\.1:1\/w\/api\.php\?action=wbgetentities&ids=Q1%7CQ2.*&maxlag=5$/);
  });
  it("tells redirects and missing items apart", () => {
    const m = new WorldModel();
    m.items.set("Q2", { en: "x" });
    m.redirects.set("Q1", "Q2");
    const out = parseEntities(m.wbgetentities(["Q1", "Q3"], ["info"], null), ["Q1", "Q3"]);
    expect(out.get("Q1")).toEqual({ kind: "redirect", to: "Q2" });
    expect(out.get("Q3")).toEqual({ kind: "missing" });
  });
  it("reads an artwork: preferred image, ranks, time precision, units, titles", () => {
    const m = new WorldModel();
    m.addWork({
      qid: "Q10",
      labels: { en: "Label", es: "Etiqueta", fr: "Étiquette" },
      creators: [{ value: "Q5432" }],
      titles: [{ text: "Titre", language: "fr" }, { text: "Título", language: "es" }],
      inception: { time: "+1790-00-00T00:00:00Z", precision: 8 },
      images: [{ file: "a_b.jpg" }, { file: "c.jpg", rank: "preferred" }, { file: "d.jpg", rank: "deprecated" }],
      links: { P180: ["Q1", "Q1", "Q2"] },
      height: { amount: 12.5, unit: "Q174728" },
    });
    const e = (m.wbgetentities(["Q10"], ["info", "claims", "labels"], ["en", "es"]) as { entities: Record<string, never> }).entities.Q10!;
    const d = parseArtwork(e, ["en", "es"]);
    expect(d).toMatchObject({
      title: "Label",
      titles: { en: "Label", es: "Título", fr: "Titre" },
      inception: "1790-01-01T00:00:00Z",
      inceptionPrecision: 8,
      inceptionYear: 1790,
      height: 12.5,
      heightUnit: "Q174728",
      width: null,
      images: [
        { fileTitle: "File:A b.jpg", isMain: false },
        { fileTitle: "File:C.jpg", isMain: true },
      ],
      links: [
        { property: "P180", qid: "Q1" },
        { property: "P180", qid: "Q2" },
      ],
    });
  });
  it("keeps a year past a 32-bit integer as the date written, with no inceptionYear (PostgreSQL's Int would refuse the work)", () => {
    const m = new WorldModel();
    for (const [qid, time] of [["Q11", "+99999999999-00-00T00:00:00Z"], ["Q12", "-2147483647-00-00T00:00:00Z"]] as const) {
      m.addWork({ qid, labels: { en: "Vandalised" }, creators: [{ value: "Q5432" }], inception: { time, precision: 9 }, images: [{ file: "v.jpg" }] });
    }
    const parse = (qid: "Q11" | "Q12") => parseArtwork((m.wbgetentities([qid], ["info", "claims", "labels"], ["en"]) as { entities: Record<string, never> }).entities[qid]!, ["en"]);
    expect(parse("Q11")).toMatchObject({ inception: "99999999999-01-01T00:00:00Z", inceptionYear: null });
    expect(parse("Q12")).toMatchObject({ inception: "-2147483647-01-01T00:00:00Z", inceptionYear: -2147483647 });
  });
  it("normalises times and file titles", () => {
    expect(normalizeTime("+1797-03-00T00:00:00Z")).toEqual({ value: "1797-03-01T00:00:00Z", year: 1797 });
    expect(normalizeTime("-0500-00-00T00:00:00Z")).toEqual({ value: "-0500-01-01T00:00:00Z", year: -500 });
    expect(fileTitleOf("goya_-_Caprichos.jpg")).toBe("File:Goya - Caprichos.jpg");
    // Letters whose JavaScript capital is not MediaWiki's stay as they are (Commons normalises the rest).
    expect(fileTitleOf("ß_foo.jpg")).toBe("File:ß foo.jpg");
    expect(fileTitleOf("ნიკო_ფიროსმანი.jpg")).toBe("File:ნიკო ფიროსმანი.jpg");
    expect(fileTitleOf("ﬁsh.jpg")).toBe("File:ﬁsh.jpg");
  });
});

describe("commons", () => {
  it("picks the smallest standard thumbnail at least IMAGE_EDGE wide", () => {
    expect(thumbWidthFor(1024)).toBe(1280);
    expect(thumbWidthFor(960)).toBe(960);
    expect(thumbWidthFor(5000)).toBe(3840);
  });
  it("IMAGE_HOSTS: an entry with a port takes that port, the scheme's default one included; one without takes only the default", () => {
    const allowed = (hosts: string[], url: string) => imageHostCheck({ IMAGE_HOSTS: hosts, COMMONS_API_URL: "https://commons.wikimedia.org/w/api.php" })(new URL(url));
    expect(allowed(["upload.wikimedia.org:443"], "https://upload.wikimedia.org/a.jpg")).toBe(true);
    expect(allowed(["upload.wikimedia.org:443"], "https://upload.wikimedia.org:443/a.jpg")).toBe(true);
    expect(allowed(["upload.wikimedia.org:443"], "http://upload.wikimedia.org/a.jpg")).toBe(false);
    expect(allowed(["Upload.Wikimedia.org"], "https://upload.wikimedia.org/a.jpg")).toBe(true);
    expect(allowed(["upload.wikimedia.org"], "https://upload.wikimedia.org:8443/a.jpg")).toBe(false);
    expect(allowed(["mirror.example:8080"], "http://mirror.example:8080/a.jpg")).toBe(true);
    expect(allowed(["mirror.example:8080"], "http://mirror.example/a.jpg")).toBe(false);
    expect(allowed(["[::1]:8080"], "http://[::1]:8080/a.jpg")).toBe(true);
    expect(allowed(["upload.wikimedia.org"], "ftp://upload.wikimedia.org/a.jpg")).toBe(false);
    // By default: Commons' upload host and the API's own host.
    expect(imageHostCheck({ COMMONS_API_URL: "http://127.0.0.1:9999/w/api.php" })(new URL("http://127.0.0.1:9999/file/x.jpg"))).toBe(true);
  });
  it("keeps only absolute http(s) URLs from an answer", () => {
    expect(webUrl("https://upload.wikimedia.org/a.jpg")).toBe("https://upload.wikimedia.org/a.jpg");
    // A file's page as Commons writes it: underscores, the namespace's colon kept, the rest encoded.
    expect(commonsFilePageUrl("File:Goya - Saturno devorando a su hijo (1819-1823).jpg")).toBe("https://commons.wikimedia.org/wiki/File:Goya_-_Saturno_devorando_a_su_hijo_(1819-1823).jpg");
    expect(commonsFilePageUrl("File:María Luisa?&#.jpg")).toBe("https://commons.wikimedia.org/wiki/File:Mar%C3%ADa_Luisa%3F%26%23.jpg");
    // As MediaWiki's wfUrlencode: these stay, an apostrophe is encoded.
    expect(commonsFilePageUrl("File:Goya, Saturno; 100% @$!*~/x.jpg")).toBe("https://commons.wikimedia.org/wiki/File:Goya,_Saturno;_100%25_@$!*~/x.jpg");
    expect(commonsFilePageUrl("File:Goya's dog.jpg")).toBe("https://commons.wikimedia.org/wiki/File:Goya%27s_dog.jpg");
    for (const bad of ["javascript:alert(1)", " JavaScript:x", "data:text/html,x", "/wiki/File:A.jpg", "//upload.wikimedia.org/a.jpg", "", null, undefined]) expect(webUrl(bad), String(bad)).toBeNull();
  });
  it("strips HTML to plain text", () => {
    expect(stripHtml('<a href="x">Francisco&nbsp;de Goya</a><br/>(1746&ndash;1828) &#169; &#x41;')).toBe("Francisco de Goya (1746–1828) © A");
    expect(stripHtml("")).toBeNull();
    // Numbers no character has: the replacement character, never a throw (it failed fifty files' imageinfo) nor a NUL.
    expect(stripHtml("a&#x110000;b&#0;c&#xD800;d&#99999999999;e")).toBe("a\ufffdb\ufffdc\ufffdd\ufffde");
    expect(stripHtml(undefined)).toBeNull();
  });
});
