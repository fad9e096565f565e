import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { createHttpApp } from "../../src/server.js";
import { WORKBENCH_CSP } from "../../src/web/render.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { addDescription, makeArtwork, makeCreator, makeGoya } from "../support/factories.js";
import { serveOnFreePort } from "../support/http.js";
import { storePaintingImage } from "./support.js";

/** The pages over HTTP: what a browser gets, with hostile text in the data. */

const SCRIPT_TITLE = "<script>alert(1)</script>";
const HOSTILE_TEXT = `A figure "holds" <img src=x onerror=alert(2)> & a </p><script>alert(3)</script> lamp.`;
let t: TestDb;
let base: string;
let close: () => void;

beforeAll(async () => {
  t = await createTestDb();
  const imageDir = join(t.dir, "images");
  const goya = await makeGoya(t.db);
  const other = await makeCreator(t.db, { qid: "Q296", labels: { en: "Claude Monet" } });
  const hostile = await makeArtwork(t.db, { qid: "Q700001", title: SCRIPT_TITLE, creators: [{ id: goya.id }], links: [{ property: "P180", qid: "Q8441", label: "<b>man</b>" }] });
  await addDescription(t.db, hostile.id, HOSTILE_TEXT);
  await storePaintingImage(t.db, imageDir, hostile.id, 1, 400);
  const maja = await makeArtwork(t.db, { qid: "Q700002", title: "La maja", creators: [{ id: goya.id }] });
  await addDescription(t.db, maja.id, "A woman reclines on a green divan.");
  await addDescription(t.db, maja.id, "A woman reclines on a green sofa, her arms behind her head.", "HUMAN");
  await makeArtwork(t.db, { qid: "Q700003", title: "Water lilies", creators: [{ id: other.id }] });
  const merged = await makeArtwork(t.db, { qid: "Q700004", title: "Merged work", creators: [{ id: goya.id }], state: "MERGED" });
  await t.db.artwork.update({ where: { id: merged.id }, data: { mergedIntoQid: "Q700002" } });
  await makeArtwork(t.db, { qid: "Q700005", title: "Deleted work", creators: [{ id: goya.id }], state: "DELETED" });
  const { server } = createHttpApp({ db: t.db, config: loadConfig({ IMAGE_DIR: imageDir, LOG_LEVEL: "silent", USER_AGENT_CONTACT: "https://example.org/t" }) });
  ({ base, close } = await serveOnFreePort(server));
});
afterAll(async () => {
  close();
  await t.close();
});

const page = async (path: string) => {
  const r = await fetch(`${base}${path}`, { redirect: "manual" });
  return { r, html: await r.text() };
};

describe("every page", () => {
  for (const path of ["/", "/?q=woman", "/?review=UNREVIEWED", "/artworks/Q700001", "/review", "/jobs", "/status", "/sign-in", "/artworks/Q999999", "/artworks/not-a-qid"]) {
    it(`${path} carries the CSP (no inline script, not framed) and nosniff`, async () => {
      const { r, html } = await page(path);
      expect([200, 404]).toContain(r.status);
      expect(r.headers.get("content-type")).toBe("text/html; charset=utf-8");
      const csp = r.headers.get("content-security-policy")!;
      expect(csp).toBe(WORKBENCH_CSP);
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain("unsafe-inline");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(r.headers.get("x-content-type-options")).toBe("nosniff");
      expect(r.headers.get("cache-control")).toBe("no-store");
      // No inline script anywhere: every script element has a src and no body.
      for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)) {
        expect(m[1]).toMatch(/\bsrc="\/static\//);
        expect(m[2]).toBe("");
      }
      // No event-handler attribute in any tag (escaped text may say "onerror=", a tag may not).
      for (const tag of html.match(/<[a-z][^>]*>/gi) ?? []) expect(tag.replace(/"[^"]*"/g, '""')).not.toMatch(/\son[a-z]+=/i);
    });
  }
});

describe("escaping", () => {
  it("prints a title and a description with markup as text, in the grid and on the work's page", async () => {
    for (const path of ["/", "/artworks/Q700001"]) {
      const { html } = await page(path);
      expect(html).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
      expect(html).not.toContain(SCRIPT_TITLE);
      expect(html).not.toContain("<img src=x");
      expect(html).not.toContain("<script>alert(3)");
    }
    const { html } = await page("/artworks/Q700001");
    expect(html).toContain("A figure &quot;holds&quot; &lt;img src=x onerror=alert(2)&gt; &amp; a &lt;/p&gt;&lt;script&gt;alert(3)&lt;/script&gt; lamp.");
    expect(html).toContain("&lt;b&gt;man&lt;/b&gt;");
  });

  it("search snippets keep their marks but never the text's markup", async () => {
    const { html } = await page("/?q=lamp");
    expect(html).toContain("<mark>lamp</mark>");
    expect(html).not.toContain("<img src=x");
    expect(html).toContain("&lt;img src=x onerror=alert(2)&gt;");
  });

  it("query-string values are echoed escaped (search box, creator, unknown filter values)", async () => {
    const evil = `"><script>alert(4)</script>`;
    const { html, r } = await page(`/?q=${encodeURIComponent(evil)}&creator=${encodeURIComponent(evil)}&flag=${encodeURIComponent(evil)}`);
    expect(r.status).toBeLessThan(500);
    expect(html).not.toContain("<script>alert(4)");
    expect(html).toContain("&quot;&gt;&lt;script&gt;alert(4)&lt;/script&gt;");
  });
});

describe("collection", () => {
  it("shows title, date, attribution, excerpt and thumbnails; filters live in the URL", async () => {
    const { html } = await page("/");
    expect(html).toContain("La maja");
    expect(html).toContain("by Francisco Goya");
    expect(html).toContain("A woman reclines on a green sofa");
    expect(html).toMatch(/<img src="\/thumbs\/[0-9a-f]{64}\/160\.webp" width="160" alt=""/);
    expect(html).not.toContain("Merged work");
    const monet = await page("/?creator=Monet");
    expect(monet.html).toContain("Water lilies");
    expect(monet.html).not.toContain("La maja");
    const merged = await page("/?state=MERGED");
    expect(merged.html).toContain("Merged work");
    const undescribed = await page("/?described=no");
    expect(undescribed.html).toContain("Water lilies");
    expect(undescribed.html).not.toContain("La maja");
  });

  it("searches with the project's search", async () => {
    const { html } = await page("/?q=sofa");
    expect(html).toContain("La maja");
    expect(html).not.toContain("Water lilies");
    expect(html).toContain("<mark>sofa</mark>");
  });

  it("says why search words cannot be searched, and keeps the page (the creator choices too)", async () => {
    for (const q of ["*", '"', "-"]) {
      const { html, r } = await page(`/?q=${encodeURIComponent(q)}`);
      // A page of problems and no cards is a 400, as for a filter value it does not know.
      expect(r.status).toBe(400);
      expect(html).toMatch(/The search query (has no words|only excludes words)/);
      expect(html).toContain("Claude Monet");
    }
  });

  it("a search that finds nothing with filters it ignores is a valid request: 200, with the note", async () => {
    const { html, r } = await page("/?q=zeppelin&state=DELETED");
    expect(r.status).toBe(200);
    expect(html).toContain("Search covers active works only");
  });

  it("names a filter value it does not know", async () => {
    const { html } = await page("/?state=GONE");
    expect(html).toContain("state &quot;GONE&quot; is not one of");
  });

  it("pages with cursors in the URL", async () => {
    // The page size is 60; make 61 active works in a fresh store to see a second page.
    const t2 = await createTestDb();
    try {
      const goya = await makeGoya(t2.db);
      for (let i = 0; i < 61; i++) await makeArtwork(t2.db, { qid: `Q${800000 + i}`, title: `Plate ${i}`, creators: [{ id: goya.id }], image: false });
      const { server } = createHttpApp({ db: t2.db, config: loadConfig({ IMAGE_DIR: join(t2.dir, "images"), LOG_LEVEL: "silent" }) });
      const s = await serveOnFreePort(server);
      try {
        const first = await (await fetch(`${s.base}/`)).text();
        expect(first.match(/class="card"/g)).toHaveLength(60);
        const next = /href="([^"]+)" rel="next"/.exec(first)![1]!.replace(/&amp;/g, "&");
        expect(next).toMatch(/^\/\?after=/);
        const second = await (await fetch(`${s.base}${next}`)).text();
        expect(second.match(/class="card"/g)).toHaveLength(1);
        const prev = /href="([^"]+)" rel="prev"/.exec(second)![1]!.replace(/&amp;/g, "&");
        const back = await (await fetch(`${s.base}${prev}`)).text();
        expect(back.match(/class="card"/g)).toHaveLength(60);
      } finally {
        s.close();
      }
    } finally {
      await t2.close();
    }
  });
});

describe("artwork", () => {
  it("shows alt text, licence, Wikidata links, history and a word diff", async () => {
    const { html } = await page("/artworks/Q700002");
    expect(html).toContain('id="licence"');
    expect(html).toContain("Licence: Francisco de Goya, Public domain, via Wikimedia Commons");
    expect(html).toContain('href="https://www.wikidata.org/wiki/Q5432"');
    expect(html).toContain("v1");
    expect(html).toContain("v2 (current)");
    expect(html).toMatch(/<del>divan\.?<\/del>/);
    expect(html).toMatch(/<ins>sofa[^<]*<\/ins>/);
    expect(html).toContain("A woman reclines on a green ");
    expect(html).toContain("Parameters: beams 4, max tokens 256");
    expect(html).toContain("Timings: total 10 ms");
  });

  it("a person's text kept current under more than a page of newer model texts is still shown as current; versions are numbered from the oldest", async () => {
    const kept = await makeArtwork(t.db, { qid: "Q700006", title: "Kept text" });
    const person = await addDescription(t.db, kept.id, "A person wrote this, and it stays.", "HUMAN");
    // 101 regenerations that did not replace it (written as history, as the worker does for a person's text).
    await t.db.description.createMany({
      data: Array.from({ length: 101 }, (_, i) => ({ artworkId: kept.id, text: `Model text number ${i + 1}.`, source: "MODEL" as const })),
    });
    await t.db.artwork.update({ where: { id: kept.id }, data: { currentDescriptionId: person.id } });
    try {
      const { html } = await page("/artworks/Q700006");
      expect(html).not.toContain("Not described yet");
      expect(html).toContain("A person wrote this, and it stays.");
      expect(html).toContain("earlier version (current)");
      // 102 in all: the newest is v102, the oldest shown v3.
      expect(html).toContain("<h3>v102 ");
      expect(html).toContain("<h3>v3 ");
      expect(html).not.toContain("<h3>v2 ");
    } finally {
      // The other tests count the works.
      await t.db.artwork.update({ where: { id: kept.id }, data: { currentDescriptionId: null } });
      await t.db.description.deleteMany({ where: { artworkId: kept.id } });
      await t.db.artwork.delete({ where: { id: kept.id } });
    }
  });

  it("links the Commons page only when its address is a web address (Commons' answer may be hostile)", async () => {
    const a = await makeArtwork(t.db, { qid: "Q700007", title: "Odd link" });
    try {
      await t.db.image.updateMany({ where: { artworkId: a.id }, data: { descriptionUrl: "javascript:alert(1)" } });
      const { html } = await page("/artworks/Q700007");
      expect(html).not.toContain("javascript:");
      expect(html).toContain("Odd link");
    } finally {
      await t.db.image.deleteMany({ where: { artworkId: a.id } });
      await t.db.artwork.delete({ where: { id: a.id } });
    }
  });

  it("uses the alt text for the image", async () => {
    const { html } = await page("/artworks/Q700001");
    expect(html).toMatch(/<img src="\/thumbs\/[0-9a-f]{64}\/640\.webp" srcset="[^"]*320w[^"]*640w[^"]*" sizes="[^"]+" alt="A figure &quot;holds&quot;/);
  });

  it("a merged work says so and links to its target; a deleted one says so", async () => {
    expect((await page("/artworks/Q700004")).html).toContain('merged on Wikidata into <a href="/artworks/Q700002">Q700002</a>');
    expect((await page("/artworks/Q700005")).html).toContain("deleted from Wikidata");
  });

  it("a visitor who is not signed in gets no forms, only a way to sign in", async () => {
    const { html } = await page("/artworks/Q700002");
    expect(html).not.toContain("Edit description");
    expect(html).not.toContain(">Regenerate<");
    expect(html).toContain("/sign-in?next=%2Fartworks%2FQ700002");
  });

  it("404 for unknown and malformed ids", async () => {
    expect((await page("/artworks/Q999999")).r.status).toBe(404);
    expect((await page("/artworks/%3Cscript%3E")).html).toContain("&lt;script&gt;");
  });

  it("a browser asking for a page that is not there gets a 404 page; other clients get GraphQL's plain 404", async () => {
    for (const path of ["/nope", "/artwork/Q1", "/jobs/5"]) {
      const r = await fetch(`${base}${path}`, { headers: { accept: "text/html,application/xhtml+xml" } });
      expect(r.status, path).toBe(404);
      expect(r.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(await r.text()).toContain("<h1>Page not found</h1>");
    }
    const plain = await fetch(`${base}/nope`);
    expect(plain.status).toBe(404);
    expect(plain.headers.get("content-type") ?? "").not.toContain("text/html");
    expect((await fetch(`${base}/graphql`, { headers: { accept: "text/html" } })).status).toBe(200);
  });

  it("an artwork page marks Collection as the current section, not the current page; other titles carry their language", async () => {
    await t.db.artwork.update({ where: { qid: "Q700002" }, data: { titles: JSON.stringify({ en: "La maja", es: "La maja vestida", "x bad": "Odd" }) } });
    const html = (await page("/artworks/Q700002")).html;
    expect(html).toContain('<a href="/" aria-current="true">Collection</a>');
    // A screen reader reads the Spanish title as Spanish; a code that is no language tag is not put in lang.
    expect(html).toContain('<span lang="es">La maja vestida</span> (es)');
    expect(html).toContain("Odd (x bad)");
    expect((await page("/")).html).toContain('<a href="/" aria-current="page">Collection</a>');
  });

  it("a title in another language carries its lang on the work's page and its card; descriptions read in their own direction", async () => {
    const before = await t.db.artwork.findUniqueOrThrow({ where: { qid: "Q700002" } });
    await t.db.artwork.update({ where: { qid: "Q700002" }, data: { title: "La maja vestida", titles: JSON.stringify({ es: "La maja vestida" }) } });
    try {
      const html = (await page("/artworks/Q700002")).html;
      expect(html).toContain('<h1 dir="auto" lang="es">La maja vestida</h1>');
      expect(html).toContain('<p id="current-description" class="description" dir="auto">');
      const cards = (await page("/")).html;
      expect(cards).toContain('<span class="card-title" dir="auto" lang="es">La maja vestida</span>');
      // An English title carries none: the page is English.
      expect(cards).toMatch(/<span class="card-title" dir="auto">[^<]+<\/span>/);
    } finally {
      await t.db.artwork.update({ where: { qid: "Q700002" }, data: { title: before.title, titles: before.titles } });
    }
  });

  it("a paging link this site did not make is a 400 page, not a server error", async () => {
    const b64 = (s: string) => encodeURIComponent(Buffer.from(s).toString("base64"));
    for (const path of [`/jobs?after=${b64("GPC:S:abc")}`, `/jobs?before=${b64("GPC:N:1e400")}`, "/jobs?after=x", `/?after=${b64("GPC:S:a")}`]) {
      const { r, html } = await page(path);
      expect(r.status, path).toBe(400);
      expect(html, path).toMatch(/not one this site made/);
    }
  });
});

describe("methods", () => {
  it("pages answer GET and HEAD; other methods 405; form paths POST only", async () => {
    const head = await fetch(`${base}/`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-security-policy")).toBe(WORKBENCH_CSP);
    expect((await fetch(`${base}/status`, { method: "PUT" })).status).toBe(405);
    expect((await fetch(`${base}/artworks/Q700002/description`)).status).toBe(405);
    expect((await fetch(`${base}/jobs/1/cancel`)).status).toBe(405);
  });

  it("GraphQL and GraphiQL stay where they were", async () => {
    expect((await fetch(`${base}/graphql`, { headers: { accept: "text/html" } })).status).toBe(200);
    const r = await fetch(`${base}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: "{ stats { artworks } }" }) });
    expect((await r.json()).data.stats.artworks).toBe(3);
  });

  it("serves its scripts, style sheet and icon, nothing else under /static/", async () => {
    const page = await (await fetch(`${base}/`)).text();
    expect(page).toContain('<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">');
    const icon = await fetch(`${base}/static/favicon.svg`);
    expect(icon.status).toBe(200);
    expect(icon.headers.get("content-type")).toBe("image/svg+xml");
    expect(icon.headers.get("x-content-type-options")).toBe("nosniff");
    expect(await icon.text()).not.toMatch(/<script|on[a-z]+=/i);
    const js = await fetch(`${base}/static/workbench.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect((await fetch(`${base}/static/workbench.js`, { headers: { "if-none-match": js.headers.get("etag")! } })).status).toBe(304);
    for (const p of ["/static/../package.json", "/static/%2e%2e%2fpackage.json", "/static/index.ts", "/static/", "/static/.hidden.js"]) {
      expect((await fetch(`${base}${p}`)).status, p).toBe(404);
    }
  });
});
