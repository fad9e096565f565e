import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Config, loadConfig } from "../../src/config.js";
import { createHttpApp } from "../../src/server.js";
import { FORM_MAX_BYTES } from "../../src/web/forms.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { addDescription, makeArtwork, makeGoya, writePlaceholderImages } from "../support/factories.js";
import { serveOnFreePort } from "../support/http.js";
import { storePaintingImage } from "./support.js";

/** Sign-in, the session cookie, and every form POST's checks, as a browser and as an attacker. */

const TOKEN = "workbench-token-0123456789";
let t: TestDb;
let base: string;
let origin: string;
let close: () => void;
let hash: string;

async function serve(env: Record<string, string>): Promise<{ base: string; close: () => void }> {
  const config: Config = loadConfig({ IMAGE_DIR: join(t.dir, "images"), LOG_LEVEL: "silent", ...env });
  return serveOnFreePort(createHttpApp({ db: t.db, config }).server);
}

beforeAll(async () => {
  t = await createTestDb();
  const goya = await makeGoya(t.db);
  const a = await makeArtwork(t.db, { qid: "Q710001", title: "The parasol", creators: [{ id: goya.id }] });
  await addDescription(t.db, a.id, "A young woman sits under a parasol.");
  await makeArtwork(t.db, { qid: "Q710002", title: "The kite", creators: [{ id: goya.id }] });
  await writePlaceholderImages(t.db, join(t.dir, "images"));
  hash = await storePaintingImage(t.db, join(t.dir, "images"), a.id, 2, 400);
  ({ base, close } = await serve({ API_TOKEN: TOKEN }));
  origin = base;
});
afterAll(async () => {
  close();
  await t.close();
});

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

async function post(path: string, fields: Record<string, string>, headers: Record<string, string> = {}, at = base) {
  return fetch(`${at}${path}`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", origin: at, ...headers },
    body: form(fields),
  });
}

async function signIn(name = "Ana Curator", at = base): Promise<string> {
  const r = await post("/sign-in", { token: TOKEN, name, next: "/" }, {}, at);
  expect(r.status).toBe(303);
  return r.headers.get("set-cookie")!.split(";")[0]!;
}

describe("sign-in", () => {
  it("the page has the Token and Name fields and a Sign in button", async () => {
    const html = await (await fetch(`${base}/sign-in`)).text();
    expect(html).toMatch(/<label for="token">Token<\/label>\s*<input id="token" name="token" type="password"/);
    expect(html).toMatch(/<label for="name">Name<\/label>/);
    expect(html).toContain('<button type="submit">Sign in</button>');
  });

  it("the right token sets an HttpOnly, SameSite=Strict, signed cookie; Secure only over HTTPS", async () => {
    const r = await post("/sign-in", { token: TOKEN, name: "Ana", next: "/artworks/Q710001" });
    expect(r.status).toBe(303);
    expect(r.headers.get("location")).toBe("/artworks/Q710001?done=signed-in");
    const cookie = r.headers.get("set-cookie")!;
    expect(cookie).toMatch(/^artdesc_session=[\w-]+\.[\w-]+; /);
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("SameSite=Strict");
    expect(cookie).toContain("Path=/");
    expect(cookie).toMatch(/Max-Age=\d+/);
    expect(cookie).not.toContain("Secure");
    const behindTls = await post("/sign-in", { token: TOKEN }, { origin: base.replace("http:", "https:"), "x-forwarded-proto": "https" });
    expect(behindTls.headers.get("set-cookie")).toContain("Secure");
  });

  it("a wrong, empty, longer or shorter token is refused with no cookie", async () => {
    for (const token of ["", "x", TOKEN.slice(0, -1), `${TOKEN}x`, TOKEN.toUpperCase()]) {
      const r = await post("/sign-in", { token, name: "Eve" });
      expect(r.status, token).toBe(401);
      expect(r.headers.get("set-cookie")).toBeNull();
    }
    // The error is tied to the field (screen readers read it with the field, which has the focus) and named in the title.
    const html = await (await post("/sign-in", { token: "x", name: "Eve" })).text();
    expect(html).toContain('<p class="error" role="alert" id="sign-in-error">');
    expect(html).toMatch(/<input id="token"[^>]* aria-describedby="sign-in-error" aria-invalid="true" autofocus>/);
    expect(html).toContain("<title>Error: Sign in · artdesc</title>");
    expect(await (await fetch(`${base}/sign-in`)).text()).toContain("<title>Sign in · artdesc</title>");
  });

  it("a Name that is not one line of at most 200 characters is refused", async () => {
    expect((await post("/sign-in", { token: TOKEN, name: "a\nb" })).status).toBe(400);
    expect((await post("/sign-in", { token: TOKEN, name: "x".repeat(201) })).status).toBe(400);
  });

  it("a redirect target from the form or URL stays on this server", async () => {
    for (const next of ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"]) {
      const r = await post("/sign-in", { token: TOKEN, next });
      expect(r.headers.get("location"), next).toBe("/?done=signed-in");
      const html = await (await fetch(`${base}/sign-in?next=${encodeURIComponent(next)}`)).text();
      expect(html).toContain('name="next" value="/"');
    }
  });

  it("a signed-in page names the person and offers Sign out; signing out clears the cookie", async () => {
    const cookie = await signIn("Ana <b>Curator</b>");
    const html = await (await fetch(`${base}/`, { headers: { cookie } })).text();
    expect(html).toContain("Signed in as <strong>Ana &lt;b&gt;Curator&lt;/b&gt;</strong>");
    expect(html).toContain('<button type="submit">Sign out</button>');
    const out = await post("/sign-out", {}, { cookie });
    expect(out.status).toBe(303);
    expect(out.headers.get("set-cookie")).toMatch(/^artdesc_session=; .*Max-Age=0/);
  });

  it("a forged, altered or foreign-key cookie is no session", async () => {
    const cookie = await signIn("Ana");
    const [name, value] = cookie.split("=") as [string, string];
    const [payload, sig] = value.split(".") as [string, string];
    const forgedPayload = Buffer.from(JSON.stringify({ n: "Mallory", e: 4_000_000_000 })).toString("base64url");
    const other = await serve({ API_TOKEN: "another-token-0123456789" });
    try {
      for (const bad of [`${forgedPayload}.${sig}`, `${payload}.${sig.slice(0, -2)}AA`, `${payload}.`, payload, "x".repeat(5000)]) {
        const r = await post("/artworks/Q710001/description", { text: "forged" }, { cookie: `${name}=${bad}` });
        expect(r.status, bad.slice(0, 40)).toBe(403);
      }
      // A session of one server (another token) is nothing on another.
      const r = await post("/artworks/Q710001/description", { text: "elsewhere" }, { cookie, origin: other.base }, other.base);
      expect(r.status).toBe(403);
    } finally {
      other.close();
    }
  });

  it("without API_TOKEN nobody can sign in, and the page says why", async () => {
    const s = await serve({});
    try {
      expect(await (await fetch(`${s.base}/sign-in`)).text()).toContain("no API_TOKEN configured");
      expect((await post("/sign-in", { token: "anything-at-all-123" }, { origin: s.base }, s.base)).status).toBe(403);
    } finally {
      s.close();
    }
  });
});

describe("form posts", () => {
  it("refuse another Origin, Origin null, a foreign Referer, no Origin nor Referer, and cross-site fetches", async () => {
    const cookie = await signIn();
    const cases: Record<string, string>[] = [
      { origin: "https://evil.example" },
      { origin: "null" },
      { origin: base.replace("127.0.0.1", "localhost") },
      { origin: base.replace("http:", "https:") },
      { origin: "", referer: "https://evil.example/page" },
      { origin: "" },
      { origin: base, "sec-fetch-site": "cross-site" },
      { origin: base, "sec-fetch-site": "same-site" },
    ];
    for (const path of ["/artworks/Q710001/description", "/artworks/Q710001/regenerate", "/jobs/1/cancel", "/review", "/sign-in", "/sign-out"]) {
      for (const h of cases) {
        const headers: Record<string, string> = { cookie, ...h };
        if (h.origin === "") delete headers.origin;
        const r = await fetch(`${base}${path}`, {
          method: "POST",
          redirect: "manual",
          headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
          body: form({ text: "csrf", token: TOKEN, description: "1", verdict: "APPROVED" }),
        });
        expect(r.status, `${path} ${JSON.stringify(h)}`).toBe(403);
        expect(r.headers.get("set-cookie"), path).toBeNull();
      }
    }
    const current = await t.db.artwork.findUniqueOrThrow({ where: { qid: "Q710001" }, include: { currentDescription: true } });
    expect(current.currentDescription!.text).not.toBe("csrf");
    expect(await t.db.review.count()).toBe(0);
  });

  it("accept a same-origin Referer when Origin is absent", async () => {
    const cookie = await signIn();
    const r = await fetch(`${base}/artworks/Q710002/description`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie, referer: `${base}/artworks/Q710002` },
      body: form({ text: "A kite over a hill." }),
    });
    expect(r.status).toBe(303);
  });

  it("refuse a write without a session, keeping what was typed and leading to sign-in and back to the page", async () => {
    const r = await post("/artworks/Q710001/description", { text: "A <b>correction</b> typed before the session ended." });
    expect(r.status).toBe(403);
    const page = await r.text();
    expect(page).toContain("Sign in first");
    expect(page).toContain('<textarea id="kept-text" readonly rows="8" class="kept">A &lt;b&gt;correction&lt;/b&gt; typed before the session ended.</textarea>');
    expect(page).toContain(`<a href="/sign-in?next=${encodeURIComponent("/artworks/Q710001")}">Sign in</a>`);
    // From the review queue: back to the queue, and a note is kept too.
    const verdict = await post("/review", { description: "1", verdict: "APPROVED", note: "The dog is a donkey.", back: "/review?after=abc" });
    const queuePage = await verdict.text();
    expect(queuePage).toContain(">The dog is a donkey.</textarea>");
    expect(queuePage).toContain(`<a href="/sign-in?next=${encodeURIComponent("/review?after=abc")}">Sign in</a>`);
  });

  it("refuse bodies over the limit, other content types and too many fields", async () => {
    const cookie = await signIn();
    const big = await post("/artworks/Q710001/description", { text: "x".repeat(FORM_MAX_BYTES + 10) }, { cookie });
    expect(big.status).toBe(413);
    // Refused before its body was read: the body is read and dropped, not parsed (src/api/refused-body.ts),
    // so that the browser gets this answer and not a reset; the connection is then kept.
    expect(big.headers.get("connection")).toBe("keep-alive");
    const json = await fetch(`${base}/artworks/Q710001/description`, { method: "POST", redirect: "manual", headers: { "content-type": "application/json", origin: base, cookie }, body: "{}" });
    expect(json.status).toBe(415);
    const multipart = await fetch(`${base}/artworks/Q710001/description`, { method: "POST", redirect: "manual", headers: { origin: base, cookie }, body: new FormData() });
    expect(multipart.status).toBe(415);
    const many = await post("/artworks/Q710001/description", Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`f${i}`, "1"])), { cookie });
    expect(many.status).toBe(413);
  });

  it("Save records the text with the Name as author, then redirects to the work", async () => {
    const cookie = await signIn("Ana Curator");
    const r = await post("/artworks/Q710001/description", { text: "A young woman in a yellow dress sits under a green parasol.", reason: "colours" }, { cookie });
    expect(r.status).toBe(303);
    expect(r.headers.get("location")).toBe("/artworks/Q710001?done=saved");
    const html = await (await fetch(`${base}${r.headers.get("location")}`, { headers: { cookie } })).text();
    expect(html).toContain("Saved: your text is the current description.");
    expect(html).toContain("written by Ana Curator");
    expect(html).toMatch(/<ins>[^<]*yellow/);
    const d = await t.db.description.findFirstOrThrow({ where: { author: "Ana Curator" }, orderBy: { id: "desc" } });
    expect(d).toMatchObject({ source: "HUMAN", reason: "colours" });
  });

  it("an empty or overlong text is GraphQL's InvalidInputError, shown as a message", async () => {
    const cookie = await signIn();
    const r = await post("/artworks/Q710001/description", { text: "   " }, { cookie });
    expect(r.status).toBe(422);
  });

  it("Regenerate queues a job with the form's parameters; a bad number is named; Cancel job cancels it", async () => {
    const cookie = await signIn("Ana");
    const html = await (await fetch(`${base}/artworks/Q710001`, { headers: { cookie } })).text();
    expect(html).toMatch(/<label for="numBeams">Beams<\/label><input id="numBeams" name="numBeams" type="number" min="1" max="8" value="4">/);
    expect(html).toContain('<button type="submit">Regenerate</button>');
    expect(html).toContain('<label for="edit-text">Edit description</label>');
    expect((await post("/artworks/Q710001/regenerate", { numBeams: "two" }, { cookie })).status).toBe(400);
    const out = await post("/artworks/Q710001/regenerate", { numBeams: "9" }, { cookie });
    expect(out.status).toBe(422);
    expect(await out.text()).toContain("numBeams");
    const r = await post("/artworks/Q710001/regenerate", { numBeams: "2", maxNewTokens: "64", earlyStopping: "NEVER", cleanMarkdown: "on" }, { cookie });
    expect(r.status).toBe(303);
    const job = await t.db.job.findFirstOrThrow({ orderBy: { id: "desc" } });
    expect(job.status).toBe("QUEUED");
    expect(job.reason).toBe("Requested in the workbench by Ana");
    expect(JSON.parse(job.params as string)).toMatchObject({ numBeams: 2, maxNewTokens: 64, earlyStopping: "never", imageSplitting: false, cleanMarkdown: true });
    const page = await (await fetch(`${base}/artworks/Q710001`, { headers: { cookie } })).text();
    expect(page).toContain(`data-job="${job.id}"`);
    const jobs = await (await fetch(`${base}/jobs`, { headers: { cookie } })).text();
    expect(jobs).toContain(`action="/jobs/${job.id}/cancel"`);
    expect(jobs).toContain("Cancel job");
    const cancel = await post(`/jobs/${job.id}/cancel`, {}, { cookie });
    expect(cancel.headers.get("location")).toBe("/jobs?done=cancelled");
    expect((await t.db.job.findUniqueOrThrow({ where: { id: job.id } })).status).toBe("CANCELLED");
    const again = await post(`/jobs/${job.id}/cancel`, {}, { cookie });
    expect(again.status).toBe(422);
    // A job or a work that is not there: 404, as for the pages.
    expect((await post(`/jobs/999999/cancel`, {}, { cookie })).status).toBe(404);
    expect((await post("/artworks/Q999999991/regenerate", { numBeams: "2" }, { cookie })).status).toBe(404);
    expect((await post("/artworks/Q999999991/description", { text: "A text for nothing." }, { cookie })).status).toBe(404);
  });
});

describe("UI_REQUIRE_SIGN_IN=true", () => {
  it("closes the pages and thumbnails, not GraphQL nor /images; sign-in opens them", async () => {
    const s = await serve({ API_TOKEN: TOKEN, UI_REQUIRE_SIGN_IN: "true" });
    try {
      for (const path of ["/", "/artworks/Q710001", "/review", "/jobs", "/status", "/?q=parasol"]) {
        const r = await fetch(`${s.base}${path}`, { redirect: "manual" });
        expect(r.status, path).toBe(303);
        expect(r.headers.get("location")).toBe(`/sign-in?next=${encodeURIComponent(path)}`);
      }
      expect((await fetch(`${s.base}/thumbs/${hash}/160.webp`)).status).toBe(401);
      expect((await fetch(`${s.base}/sign-in`)).status).toBe(200);
      expect((await fetch(`${s.base}/static/workbench.css`)).status).toBe(200);
      const gql = await fetch(`${s.base}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: "{ stats { artworks } }" }) });
      expect(gql.status).toBe(200);
      const cookie = await signIn("Ana", s.base);
      expect((await fetch(`${s.base}/`, { headers: { cookie } })).status).toBe(200);
      const thumb = await fetch(`${s.base}/thumbs/${hash}/160.webp`, { headers: { cookie } });
      expect(thumb.status).toBe(200);
      // Only the signed-in browser may keep it, not a shared cache in front.
      expect(thumb.headers.get("cache-control")).toBe("private, max-age=31536000, immutable");
      // Signing out goes to the sign-in page with its word, not through the closed collection (which would drop it).
      const out = await post("/sign-out", {}, { cookie }, s.base);
      expect(out.headers.get("location")).toBe("/sign-in?done=signed-out");
      expect(await (await fetch(`${s.base}/sign-in?done=signed-out`)).text()).toContain("Signed out.");
    } finally {
      s.close();
    }
  });

  it("is a configuration error without API_TOKEN", () => {
    expect(() => loadConfig({ UI_REQUIRE_SIGN_IN: "true" })).toThrow(/UI_REQUIRE_SIGN_IN=true: needs API_TOKEN/);
  });
});
