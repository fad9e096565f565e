import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Config, loadConfig } from "../../src/config.js";
import type { Db } from "../../src/db.js";
import { createHttpApp } from "../../src/server.js";
import { WORKBENCH_CSP } from "../../src/web/render.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { addDescription, makeArtwork, makeGoya } from "../support/factories.js";
import { serveOnFreePort } from "../support/http.js";
import { storePaintingImage } from "./support.js";

/** The review parts of the workbench over HTTP: the verdict forms, the artwork's review state, the queue page, the collection's review filters. */

const TOKEN = "review-token-0123456789";
const HOSTILE_NOTE = `wrong <script>alert(5)</script> & "dog" </li><img src=x onerror=alert(6)>`;
let t: TestDb;
let base: string;
let close: () => void;

interface Served {
  base: string;
  close: () => void;
}

async function serve(db: Db, dir: string, env: Record<string, string> = {}): Promise<Served> {
  const config: Config = loadConfig({ IMAGE_DIR: join(dir, "images"), LOG_LEVEL: "silent", API_TOKEN: TOKEN, ...env });
  return serveOnFreePort(createHttpApp({ db, config }).server);
}

/** A described work whose current text has the given risk (null: never assessed) and flags. */
async function describedWork(db: Db, qid: string, title: string, text: string, risk: number | null, flags: string[] = []) {
  const goya = (await db.creator.findFirst({ where: { qid: "Q5432" } })) ?? (await makeGoya(db));
  const a = await makeArtwork(db, { qid, title, creators: [{ id: goya.id }] });
  const d = await addDescription(db, a.id, text);
  if (risk !== null) {
    const checks = [{ name: "wordCount", value: 7, detail: `7 words <b>${qid}</b>` }];
    await db.description.update({ where: { id: d.id }, data: { qualityRisk: risk, qualityFlags: flags.join(","), qualityChecks: JSON.stringify(checks), qualityAt: new Date() } });
  }
  return { artwork: a, description: d };
}

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

async function post(path: string, fields: Record<string, string>, headers: Record<string, string> = {}, at = base) {
  return fetch(`${at}${path}`, { method: "POST", redirect: "manual", headers: { "content-type": "application/x-www-form-urlencoded", origin: at, ...headers }, body: form(fields) });
}

async function signIn(name: string, at = base): Promise<string> {
  const r = await post("/sign-in", { token: TOKEN, name, next: "/" }, {}, at);
  expect(r.status).toBe(303);
  return r.headers.get("set-cookie")!.split(";")[0]!;
}

const get = async (path: string, cookie?: string, at = base) => {
  const r = await fetch(`${at}${path}`, { redirect: "manual", headers: cookie ? { cookie } : {} });
  return { r, html: await r.text() };
};

const decode = (s: string) => s.replace(/&amp;/g, "&");
/** The review page's item: its title and the description id its forms carry. */
const itemOf = (html: string) => ({
  title: /<h2 id="item-title" dir="auto"(?: lang="[^"]+")?><a href="[^"]+">([^<]*)<\/a><\/h2>/.exec(html)?.[1] ?? null,
  description: /name="description" value="([^"]+)"/.exec(html)?.[1] ?? null,
  state: /name="state" value="([^"]+)"/.exec(html)?.[1] ?? null,
  replaces: /name="replaces" value="([^"]+)"/.exec(html)?.[1] ?? null,
  back: /name="back" value="([^"]+)"/.exec(html)?.[1] ?? null,
  next: /href="([^"]+)" rel="next"/.exec(html)?.[1] ?? null,
  prev: /href="([^"]+)" rel="prev"/.exec(html)?.[1] ?? null,
});

beforeAll(async () => {
  t = await createTestDb();
  await describedWork(t.db, "Q720001", "Low risk", "A calm harbour at dusk.", 0.1);
  const high = await describedWork(t.db, "Q720002", "High risk", "A dog on a sofa.", 0.9, ["DEPICTS_MISSING"]);
  await storePaintingImage(t.db, join(t.dir, "images"), high.artwork.id, 3, 400);
  await describedWork(t.db, "Q720003", "Middle risk", "Three women at a well.", 0.5);
  await describedWork(t.db, "Q720004", "Never assessed", "A bridge in fog.", null);
  await makeArtwork(t.db, { qid: "Q720005", title: "Not described" });
  ({ base, close } = await serve(t.db, t.dir));
});
afterAll(async () => {
  close();
  await t.close();
});

describe("the review queue page", () => {
  it("is linked from the navigation, carries the CSP and loads its key script from /static", async () => {
    const { r, html } = await get("/review");
    expect(r.status).toBe(200);
    expect(r.headers.get("content-security-policy")).toBe(WORKBENCH_CSP);
    expect(html).toContain('<a href="/review" aria-current="page">Review</a>');
    expect(html).toContain('<script src="/static/review-keys.js" defer></script>');
    for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)) expect(m[2]).toBe("");
    const js = await fetch(`${base}/static/review-keys.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect((await get("/")).html).toContain('<a href="/review">Review</a>');
  });

  it("shows one description at a time, riskiest first, unassessed last; Next and Previous walk the queue", async () => {
    const cookie = await signIn("Ana");
    let { html } = await get("/review", cookie);
    expect(html).toContain("4 descriptions wait for review, riskiest first.");
    const seen: string[] = [];
    let item = itemOf(html);
    expect(item.prev).toBeNull();
    for (;;) {
      seen.push(item.title!);
      expect(html.match(/id="item-title"/g)).toHaveLength(1);
      if (!item.next) break;
      ({ html } = await get(decode(item.next), cookie));
      item = itemOf(html);
    }
    expect(seen).toEqual(["High risk", "Middle risk", "Low risk", "Never assessed"]);
    // And back again.
    const back: string[] = [item.title!];
    while (item.prev) {
      ({ html } = await get(decode(item.prev), cookie));
      item = itemOf(html);
      back.push(item.title!);
    }
    expect(back).toEqual(["Never assessed", "Low risk", "Middle risk", "High risk"]);
  });

  it("shows the image, the text, its flags, risk and checks (escaped), the keys, and the four forms", async () => {
    const cookie = await signIn("Ana");
    const { html } = await get("/review", cookie);
    expect(html).toMatch(/<img src="\/thumbs\/[0-9a-f]{64}\/640\.webp" srcset="[^"]+" sizes="[^"]+" alt="[^"]+"/);
    expect(html).toContain('<p class="description" id="review-text" dir="auto">A dog on a sofa.</p>');
    expect(html).toContain('<li class="flag">DEPICTS_MISSING</li>');
    expect(html).toContain("risk 0.90");
    expect(html).toContain("<td>wordCount</td><td>7</td><td>7 words &lt;b&gt;Q720002&lt;/b&gt;</td>");
    expect(html).toMatch(/<kbd>a<\/kbd> approve, <kbd>r<\/kbd> reject, <kbd>e<\/kbd> edit the text, <kbd>j<\/kbd> next, <kbd>k<\/kbd> previous/);
    expect(html).toContain('<button type="submit" name="verdict" value="APPROVED" id="verdict-approve">Approve</button>');
    expect(html).toContain(">Reject</button>");
    expect(html).toContain(">Needs work</button>");
    expect(html).toContain('<label for="verdict-note">Review note (optional)</label>');
    expect(html).toContain('<label for="edit-text">Edit description</label>');
    expect(html).toContain('action="/artworks/Q720002/description"');
  });

  it("signed out, it shows the item and the paging links, no forms, and a way to sign in", async () => {
    const { html } = await get("/review");
    expect(itemOf(html).title).toBe("High risk");
    expect(html).not.toContain(">Approve</button>");
    expect(html).not.toContain("Edit description");
    expect(html).toContain("/sign-in?next=%2Freview");
    expect(html).toContain("<kbd>j</kbd> next");
    expect(html).not.toContain("<kbd>a</kbd>");
  });

  it("a cursor it did not make is named and the riskiest item shown", async () => {
    for (const bad of ["garbage", "x".repeat(300), Buffer.from("ReviewQueue:[1,\"x\"]").toString("base64url"), "%3Cscript%3E"]) {
      const { r, html } = await get(`/review?after=${bad}`);
      expect(r.status, bad).toBe(200);
      expect(html).toContain("not one this page made");
      expect(itemOf(html).title).toBe("High risk");
      expect(html).not.toContain("<script>");
    }
  });
});

describe("verdicts", () => {
  it("Approve on the queue records the signed-in Name as reviewer, then the next item shows", async () => {
    const t2 = await createTestDb();
    const s = await serve(t2.db, t2.dir);
    try {
      const first = await describedWork(t2.db, "Q730001", "First", "A ship.", 0.8);
      await describedWork(t2.db, "Q730002", "Second", "A horse.", 0.6);
      await describedWork(t2.db, "Q730003", "Third", "A tree.", 0.4);
      const cookie = await signIn("Rita Reviewer", s.base);
      const item = itemOf((await get("/review", cookie, s.base)).html);
      expect(item.title).toBe("First");
      const r = await post("/review", { description: item.description!, verdict: "APPROVED", note: "fine", back: decode(item.back!) }, { cookie }, s.base);
      expect(r.status).toBe(303);
      const location = r.headers.get("location")!;
      expect(location).toMatch(/^\/review\?after=[\w-]+&done=approved$/);
      const stored = await t2.db.review.findFirstOrThrow({ where: { descriptionId: first.description.id } });
      expect(stored).toMatchObject({ verdict: "APPROVED", reviewer: "Rita Reviewer", note: "fine" });
      const after = await get(location, cookie, s.base);
      expect(after.html).toContain("Approved.");
      expect(itemOf(after.html).title).toBe("Second");
      expect(after.html).toContain("2 descriptions wait for review");
      // Needs work and Reject from the queue: the reviewed one leaves, the queue moves on.
      const second = itemOf(after.html);
      const nw = await post("/review", { description: second.description!, verdict: "NEEDS_WORK", back: decode(second.back!) }, { cookie }, s.base);
      expect(nw.headers.get("location")).toMatch(/done=needs-work$/);
      const third = itemOf((await get(nw.headers.get("location")!, cookie, s.base)).html);
      expect(third.title).toBe("Third");
      const rj = await post("/review", { description: third.description!, verdict: "REJECTED", note: "", back: decode(third.back!) }, { cookie }, s.base);
      expect(rj.headers.get("location")).toMatch(/done=rejected$/);
      const empty = await get(rj.headers.get("location")!, cookie, s.base);
      expect(empty.html).toContain("Nothing to review");
      expect(empty.html).toContain("All 3 current descriptions have been reviewed.");
      expect(itemOf(empty.html).title).toBeNull();
    } finally {
      s.close();
      await t2.close();
    }
  });

  it("two reviewers on one item: the later verdict or edit is refused (409) and changes nothing", async () => {
    const t2 = await createTestDb();
    const s = await serve(t2.db, t2.dir);
    try {
      const w = await describedWork(t2.db, "Q735001", "Shared", "A ship in a storm.", 0.8);
      const ana = await signIn("Ana", s.base);
      const bea = await signIn("Bea", s.base);
      // Both open the queue and see the same unreviewed text.
      const seenByAna = itemOf((await get("/review", ana, s.base)).html);
      const seenByBea = itemOf((await get("/review", bea, s.base)).html);
      const globalId = (id: number) => Buffer.from(`Description:${id}`).toString("base64");
      expect(seenByAna).toMatchObject({ title: "Shared", state: "UNREVIEWED", replaces: globalId(w.description.id) });
      expect(seenByBea.description).toBe(seenByAna.description);
      const first = await post("/review", { description: seenByAna.description!, state: seenByAna.state!, verdict: "APPROVED", back: "/review" }, { cookie: ana }, s.base);
      expect(first.status).toBe(303);
      const late = await post("/review", { description: seenByBea.description!, state: seenByBea.state!, verdict: "REJECTED", note: "The <ship> is a boat.", back: "/review" }, { cookie: bea }, s.base);
      expect(late.status).toBe(409);
      const page = await late.text();
      expect(page).toContain("Someone reviewed this description first");
      // Bea's note is on the page to copy, not lost.
      expect(page).toContain('<textarea id="kept-text" readonly rows="8" class="kept">The &lt;ship&gt; is a boat.</textarea>');
      expect(page).toContain("it is now APPROVED (by Ana)");
      expect(await t2.db.review.count({ where: { descriptionId: w.description.id } })).toBe(1);
      expect(await t2.db.job.count()).toBe(0);
      // Ana saves an edit; Bea's edit of the text she saw would overwrite it unseen.
      expect((await post(`/artworks/Q735001/description`, { text: "Ana's text.", replaces: seenByAna.replaces!, back: "/review" }, { cookie: ana }, s.base)).status).toBe(303);
      const edit = await post(`/artworks/Q735001/description`, { text: "Bea's <b>text</b>.", replaces: seenByBea.replaces!, back: "/review" }, { cookie: bea }, s.base);
      expect(edit.status).toBe(409);
      const refusedEdit = await edit.text();
      expect(refusedEdit).toContain("Someone changed this description first");
      // What Bea typed is on the page to copy (escaped), not lost.
      expect(refusedEdit).toContain('<textarea id="kept-text" readonly rows="8" class="kept">Bea&#39;s &lt;b&gt;text&lt;/b&gt;.</textarea>');
      const work = await t2.db.artwork.findUniqueOrThrow({ where: { id: w.artwork.id }, include: { currentDescription: true } });
      expect(work.currentDescription?.text).toBe("Ana's text.");
      expect(await t2.db.description.count({ where: { artworkId: w.artwork.id } })).toBe(2);
      // The artwork page's forms carry the current text's id and state too.
      const artworkPage = (await get("/artworks/Q735001", bea, s.base)).html;
      expect(artworkPage).toContain(`<input type="hidden" name="replaces" value="${globalId(work.currentDescriptionId!)}">`);
      expect(artworkPage).toContain('<input type="hidden" name="state" value="UNREVIEWED">');
      for (const state of ["PERHAPS", "", "unreviewed", "<script>".repeat(5_000)]) {
        const bad = await post("/review", { description: String(work.currentDescriptionId), state, verdict: "APPROVED" }, { cookie: bea }, s.base);
        expect(bad.status, state.slice(0, 20)).toBe(400);
        const page = await bad.text();
        expect(page).toContain("The review state must be one of UNREVIEWED, APPROVED, REJECTED, NEEDS_WORK.");
        expect(page).not.toContain("<script>");
      }
      // An edit naming something that is not a description id: the form's page says so (422), nothing is saved.
      const badEdit = await post(`/artworks/Q735001/description`, { text: "Bea's text.", replaces: "not-an-id" }, { cookie: bea }, s.base);
      expect(badEdit.status).toBe(422);
      expect(await badEdit.text()).toContain("not a valid id");
      // From the queue, a text that cannot be saved (blank) leads back to the queue, not the work's page.
      const blank = await post(`/artworks/Q735001/description`, { text: "   ", back: "/review?after=x" }, { cookie: bea }, s.base);
      expect(blank.status).toBe(422);
      expect(await blank.text()).toContain('<a href="/review?after=x">Go back</a>');
      expect(await t2.db.description.count({ where: { artworkId: w.artwork.id } })).toBe(2);
    } finally {
      s.close();
      await t2.close();
    }
  });

  it("filters the queue by flag, least risk and creator; paging, verdicts and edits keep the filter", async () => {
    const t2 = await createTestDb();
    const s = await serve(t2.db, t2.dir);
    try {
      await describedWork(t2.db, "Q750001", "Spanish one", "Un perro.", 0.7, ["WRONG_LANGUAGE"]);
      await describedWork(t2.db, "Q750002", "Unflagged", "A dog.", 0.95);
      await describedWork(t2.db, "Q750003", "Spanish two", "Un gato.", 0.6, ["WRONG_LANGUAGE", "TOO_SHORT"]);
      await describedWork(t2.db, "Q750004", "Spanish low", "Un burro.", 0.2, ["WRONG_LANGUAGE"]);
      const cookie = await signIn("Ana", s.base);
      const first = await get("/review?flag=WRONG_LANGUAGE&risk=0.5", cookie, s.base);
      expect(first.html).toContain("4 descriptions wait for review, riskiest first. 2 match these filters.");
      expect(first.html).toContain('<option value="WRONG_LANGUAGE" selected>');
      expect(first.html).toContain('value="0.5"');
      const item = itemOf(first.html);
      expect(item.title).toBe("Spanish one");
      expect(item.prev).toBeNull();
      expect(decode(item.next!)).toMatch(/^\/review\?after=[^&]+&flag=WRONG_LANGUAGE&risk=0.5$/);
      expect(decode(item.back!)).toMatch(/^\/review\?after=[^&]+&flag=WRONG_LANGUAGE&risk=0.5$/);
      // Going back before the first item (nothing there) shows the first, and is no wrap.
      const firstCursor = new URL(decode(item.next!), s.base).searchParams.get("after")!;
      const beforeFirst = (await get(`/review?before=${encodeURIComponent(firstCursor)}&flag=WRONG_LANGUAGE&risk=0.5`, cookie, s.base)).html;
      expect(itemOf(beforeFirst).title).toBe("Spanish one");
      expect(beforeFirst).not.toContain("That was the end of the queue");
      const second = itemOf((await get(decode(item.next!), cookie, s.base)).html);
      expect(second.title).toBe("Spanish two");
      expect(second.next).toBeNull();
      // A verdict comes back to the filtered queue: the only match left shows, and no unflagged item.
      const r = await post("/review", { description: second.description!, verdict: "APPROVED", back: decode(second.back!) }, { cookie }, s.base);
      expect(decode(r.headers.get("location")!)).toMatch(/flag=WRONG_LANGUAGE&risk=0.5&done=approved$/);
      const after = (await get(r.headers.get("location")!, cookie, s.base)).html;
      expect(itemOf(after).title).toBe("Spanish one");
      expect(after).toContain("1 matches these filters.");
      // By creator, and a filter nothing matches.
      expect(itemOf((await get("/review?creator=goya", cookie, s.base)).html).title).toBe("Unflagged");
      const none = (await get("/review?creator=Q1&flag=MARKDOWN", cookie, s.base)).html;
      expect(itemOf(none).title).toBeNull();
      expect(none).toContain("No description waiting for review matches these filters.");
      // Values the page did not offer are named and ignored.
      const bad = (await get("/review?flag=BAD_VIBES&risk=2&creator=" + "x".repeat(201), cookie, s.base)).html;
      expect(bad).toContain("flag &quot;BAD_VIBES&quot; is not one of");
      expect(bad).toContain("risk &quot;2&quot; is not a number from 0 to 1");
      expect(bad).toContain("creator is longer than 200 characters");
      expect(itemOf(bad).title).toBe("Unflagged");
    } finally {
      s.close();
      await t2.close();
    }
  });

  it("a verdict after the last item was skipped to shows the first again", async () => {
    const t2 = await createTestDb();
    const s = await serve(t2.db, t2.dir);
    try {
      await describedWork(t2.db, "Q740001", "Skipped", "A mill.", 0.8);
      await describedWork(t2.db, "Q740002", "Last", "A lake.", 0.2);
      const cookie = await signIn("Ana", s.base);
      const last = itemOf((await get(decode(itemOf((await get("/review", cookie, s.base)).html).next!), cookie, s.base)).html);
      expect(last.title).toBe("Last");
      expect(last.next).toBeNull();
      const r = await post("/review", { description: last.description!, verdict: "APPROVED", back: decode(last.back!) }, { cookie }, s.base);
      const again = (await get(r.headers.get("location")!, cookie, s.base)).html;
      expect(itemOf(again).title).toBe("Skipped");
      // Said, so the reviewer knows the queue came round rather than moved on.
      expect(again).toContain("That was the end of the queue: it starts again from the riskiest.");
      expect((await get("/review", cookie, s.base)).html).not.toContain("That was the end of the queue");

    } finally {
      s.close();
      await t2.close();
    }
  });

  it("the artwork page: verdict forms on the current text, the review state, and each version's verdicts with escaped notes", async () => {
    const cookie = await signIn("Nina <i>Notes</i>");
    const page = await get("/artworks/Q720003", cookie);
    expect(page.html).toContain("Review: <strong class=\"review-unreviewed\">unreviewed</strong>");
    expect(page.html).toContain('<button type="submit" name="verdict" value="NEEDS_WORK" id="verdict-needs-work" class="secondary">Needs work</button>');
    expect(page.html).toContain('name="back" value="/artworks/Q720003"');
    const description = /name="description" value="([^"]+)"/.exec(page.html)![1]!;
    const r = await post("/review", { description, verdict: "NEEDS_WORK", note: HOSTILE_NOTE, back: "/artworks/Q720003" }, { cookie });
    expect(r.status).toBe(303);
    expect(r.headers.get("location")).toBe("/artworks/Q720003?done=needs-work");
    const { html } = await get(r.headers.get("location")!, cookie);
    expect(html).toContain("Marked as needing work.");
    expect(html).toMatch(/Review: <strong class="review-needs-work">needs work by Nina &lt;i&gt;Notes&lt;\/i&gt; · \d{4}-\d\d-\d\d \d\d:\d\d UTC<\/strong>/);
    expect(html).toContain('<ul class="verdicts" aria-label="Review verdicts on v1">');
    expect(html).toContain("Note: wrong &lt;script&gt;alert(5)&lt;/script&gt; &amp; &quot;dog&quot; &lt;/li&gt;&lt;img src=x onerror=alert(6)&gt;");
    expect(html).not.toContain("<script>alert(5)");
    expect(html).not.toContain("<img src=x");
    // Signed out: the state and history, no forms.
    const out = await get("/artworks/Q720003");
    expect(out.html).toContain("needs work by Nina");
    expect(out.html).not.toContain(">Approve</button>");
    expect(out.html).toContain("to review, edit or regenerate");
  });

  it("Reject of the current model text: the page says it regenerates with fallback step 1 of 3 and shows that job's bar", async () => {
    const cookie = await signIn("Ana");
    const page = await get("/artworks/Q720001", cookie);
    const description = /name="description" value="([^"]+)"/.exec(page.html)![1]!;
    expect((await post("/review", { description, verdict: "REJECTED", back: "/artworks/Q720001" }, { cookie })).status).toBe(303);
    const job = await t.db.job.findFirstOrThrow({ orderBy: { id: "desc" } });
    expect(job.status).toBe("QUEUED");
    const { html } = await get("/artworks/Q720001?done=rejected", cookie);
    expect(html).toContain(`Regenerating with fallback step 1 of 3: <a href="#job-${job.id}">job ${job.id}</a> (queued)`);
    expect(html).toContain(`<div class="job" id="job-${job.id}" data-job="${job.id}" data-replaces-current="true">`);
    expect(html).toMatch(/<strong class="review-rejected">rejected by Ana/);
    expect(html).toContain("queued fallback step 1");
    const grid = await get("/?review=REJECTED");
    expect(grid.html).toContain("Regenerating: fallback step 1 of 3");
    await t.db.job.update({ where: { id: job.id }, data: { status: "CANCELLED" } });
    expect((await get("/artworks/Q720001")).html).toContain(`Fallback step 1 of 3: job ${job.id} cancelled.`);
  });

  it("with an empty ladder, a rejection leaves the work needing a person: said on its page and its card, and filterable", async () => {
    const t2 = await createTestDb();
    const s = await serve(t2.db, t2.dir, { REVIEW_FALLBACK_LADDER: "none" });
    try {
      const w = await describedWork(t2.db, "Q750001", "Hopeless", "A cat.", 0.7);
      await describedWork(t2.db, "Q750002", "Fine", "A lamp.", 0.3);
      const cookie = await signIn("Ana", s.base);
      await post("/review", { description: String(w.description.id), verdict: "REJECTED", back: "/artworks/Q750001" }, { cookie }, s.base);
      const { html } = await get("/artworks/Q750001", undefined, s.base);
      expect(html).toContain("<strong>Needs a person:</strong>");
      const grid = await get("/?needsPerson=yes", undefined, s.base);
      expect(grid.html).toContain("Hopeless");
      expect(grid.html).not.toContain("Fine");
      expect(grid.html).toContain('<p class="needs-person">Needs a person</p>');
      expect(grid.html).toMatch(/<input id="needsPerson" name="needsPerson" type="checkbox" value="yes" checked>/);
      expect((await get("/", undefined, s.base)).html).toContain('<p class="needs-person">Needs a person</p>');
    } finally {
      s.close();
      await t2.close();
    }
  });

  it("refuse a bad verdict, a missing or unknown description, an overlong note, and a visitor without a session", async () => {
    const cookie = await signIn("Ana");
    const d = await t.db.description.findFirstOrThrow({ where: { artwork: { qid: "Q720004" } } });
    expect((await post("/review", { description: String(d.id), verdict: "MAYBE" }, { cookie })).status).toBe(400);
    expect((await post("/review", { description: String(d.id) }, { cookie })).status).toBe(400);
    expect((await post("/review", { verdict: "APPROVED" }, { cookie })).status).toBe(400);
    expect((await post("/review", { description: "999999", verdict: "APPROVED" }, { cookie })).status).toBe(404);
    expect((await post("/review", { description: "not-an-id", verdict: "APPROVED" }, { cookie })).status).toBe(404);
    const long = await post("/review", { description: String(d.id), verdict: "APPROVED", note: "x".repeat(2001) }, { cookie });
    expect(long.status).toBe(422);
    expect(await long.text()).toContain("note");
    const anonymous = await post("/review", { description: String(d.id), verdict: "APPROVED" });
    expect(anonymous.status).toBe(403);
    expect(await anonymous.text()).toContain("Sign in first");
    expect(await t.db.review.count({ where: { descriptionId: d.id } })).toBe(0);
  });

  it("refuse a verdict from another origin, Origin null, a foreign Referer or a cross-site fetch", async () => {
    const cookie = await signIn("Ana");
    const d = await t.db.description.findFirstOrThrow({ where: { artwork: { qid: "Q720004" } } });
    const cases: Record<string, string>[] = [{ origin: "https://evil.example" }, { origin: "null" }, { origin: "", referer: "https://evil.example/x" }, { origin: "" }, { origin: base, "sec-fetch-site": "cross-site" }];
    for (const h of cases) {
      const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded", cookie, ...h };
      if (h.origin === "") delete headers.origin;
      const r = await fetch(`${base}/review`, { method: "POST", redirect: "manual", headers, body: form({ description: String(d.id), verdict: "APPROVED" }) });
      expect(r.status, JSON.stringify(h)).toBe(403);
    }
    expect(await t.db.review.count({ where: { descriptionId: d.id } })).toBe(0);
  });

  it("the redirect after a verdict or an edit stays on this server", async () => {
    const cookie = await signIn("Ana");
    const d = await t.db.description.findFirstOrThrow({ where: { artwork: { qid: "Q720004" } } });
    for (const back of ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"]) {
      const r = await post("/review", { description: String(d.id), verdict: "NEEDS_WORK", back }, { cookie });
      expect(r.headers.get("location"), back).toBe("/review?done=needs-work");
      const e = await post("/artworks/Q720004/description", { text: "A bridge in thick fog.", back }, { cookie });
      expect(e.headers.get("location"), back).toBe("/artworks/Q720004?done=saved");
    }
  });

  it("Save from the queue's Edit form comes back to the queue", async () => {
    const cookie = await signIn("Ana");
    const item = itemOf((await get("/review", cookie)).html);
    const r = await post("/artworks/Q720002/description", { text: "A brown dog asleep on a red sofa.", back: decode(item.back!) }, { cookie });
    expect(r.status).toBe(303);
    expect(r.headers.get("location")).toMatch(/^\/review\?after=[\w-]+&done=saved$/);
    const d = await t.db.artwork.findUniqueOrThrow({ where: { qid: "Q720002" }, include: { currentDescription: true } });
    expect(d.currentDescription).toMatchObject({ text: "A brown dog asleep on a red sofa.", source: "HUMAN", author: "Ana" });
  });

  it("GET and HEAD read /review; PUT is refused with the methods it allows", async () => {
    expect((await fetch(`${base}/review`, { method: "HEAD" })).status).toBe(200);
    const put = await fetch(`${base}/review`, { method: "PUT" });
    expect(put.status).toBe(405);
    expect(put.headers.get("allow")).toBe("GET, HEAD, POST");
  });
});

describe("empty queue", () => {
  it("says nothing is described yet, in a store with works but no descriptions", async () => {
    const t2 = await createTestDb();
    const s = await serve(t2.db, t2.dir);
    try {
      await makeArtwork(t2.db, { qid: "Q760001" });
      const { r, html } = await get("/review", undefined, s.base);
      expect(r.status).toBe(200);
      expect(html).toContain("0 descriptions wait for review");
      expect(html).toContain("Nothing is described yet");
      expect(html).not.toContain('rel="next"');
    } finally {
      s.close();
      await t2.close();
    }
  });
});

describe("collection review filters", () => {
  it("the review state select keeps its value in the URL; each card says its state; unreviewed never means undescribed", async () => {
    const t2 = await createTestDb();
    const s = await serve(t2.db, t2.dir);
    try {
      const a = await describedWork(t2.db, "Q770001", "Approved one", "A rose.", 0.2);
      await describedWork(t2.db, "Q770002", "Open one", "A vase.", 0.2);
      await makeArtwork(t2.db, { qid: "Q770003", title: "Blank one" });
      const cookie = await signIn("Ana", s.base);
      await post("/review", { description: String(a.description.id), verdict: "APPROVED" }, { cookie }, s.base);
      const approved = await get("/?review=APPROVED", undefined, s.base);
      expect(approved.html).toContain("Approved one");
      expect(approved.html).not.toContain("Open one");
      expect(approved.html).toContain('<option value="APPROVED" selected>approved</option>');
      // GraphQL filters (ArtworkFilter.reviewState), so the page has a total.
      expect(approved.html).toContain('<p class="count" role="status">1 work</p>');
      const open = await get("/?review=UNREVIEWED", undefined, s.base);
      expect(open.html).toContain("Open one");
      expect(open.html).not.toContain("Approved one");
      expect(open.html).not.toContain("Blank one");
      const all = await get("/", undefined, s.base);
      expect(all.html).toContain('Review: <span class="review-approved">approved</span>');
      expect(all.html).toContain('Review: <span class="review-unreviewed">unreviewed</span>');
      // Search has no review filter: the page says so rather than filtering part of the way.
      const search = await get("/?q=rose&review=APPROVED", undefined, s.base);
      expect(search.html).toContain("Approved one");
      expect(search.html).toContain("without the state, flag and review filters");
      const bad = await get("/?review=<b>MAYBE</b>", undefined, s.base);
      expect(bad.html).toContain("review &quot;&lt;b&gt;MAYBE&lt;/b&gt;&quot; is not one of UNREVIEWED, APPROVED, REJECTED, NEEDS_WORK");
    } finally {
      s.close();
      await t2.close();
    }
  });

  it("finds a rare state across works that span several pages, with its total and no scan limit", async () => {
    const t2 = await createTestDb();
    const s = await serve(t2.db, t2.dir);
    try {
      const goya = await makeGoya(t2.db);
      // 130 works in inception order; every 20th one approved: 7 matches spread over 3 GraphQL pages of 60.
      const approvedIds: number[] = [];
      for (let i = 0; i < 130; i++) {
        const w = await makeArtwork(t2.db, { qid: `Q${780000 + i}`, title: `Plate ${i}`, creators: [{ id: goya.id }], inception: `${1700 + i}-01-01T00:00:00Z`, image: false });
        const d = await addDescription(t2.db, w.id, `Plate number ${i}.`);
        if (i % 20 === 0) approvedIds.push(d.id);
      }
      await t2.db.description.updateMany({ where: { id: { in: approvedIds } }, data: { reviewState: "APPROVED", reviewedAt: new Date(), reviewedBy: "Ana" } });
      const { html } = await get("/?review=APPROVED", undefined, s.base);
      expect([...html.matchAll(/class="card-title" dir="auto">Plate (\d+)</g)].map((m) => Number(m[1]))).toEqual([0, 20, 40, 60, 80, 100, 120]);
      expect(html).toContain('<p class="count" role="status">7 works</p>');
      expect(html).not.toContain('rel="next"');
    } finally {
      s.close();
      await t2.close();
    }
  });
});
