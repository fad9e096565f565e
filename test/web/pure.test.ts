import { describe, expect, it } from "vitest";
import { wordDiff } from "../../src/web/diff.js";
import { FormError, parseForm } from "../../src/web/forms.js";
import { checkPostOrigin, localPath } from "../../src/web/origin.js";
import { readRegenerateForm } from "../../src/web/params-form.js";
import { cleanName, readCookie, sessionCookie, sessionKey, signSession, verifySession } from "../../src/web/session.js";
import {
  card,
  collectionHref,
  collectionVariables,
  emptyQueueReason,
  excerpt,
  titleLanguage,
  firstRunNotices,
  formatInception,
  jobView,
  pullCommandIn,
  queueItem,
  readCollectionRequest,
  reviewStatus,
  snippetParts,
  thumbFor,
  verdictView,
  versions,
  workerModelProblem,
} from "../../src/web/view-models.js";
import { escapeForPage } from "../../src/web/render.js";

describe("view models", () => {
  it("formats Wikidata times at their precision", () => {
    expect(formatInception("1797-03-12T00:00:00Z", 11)).toBe("12 March 1797");
    expect(formatInception("1797-03-00T00:00:00Z", 10)).toBe("March 1797");
    expect(formatInception("1797-01-01T00:00:00Z", 9)).toBe("1797");
    expect(formatInception("1795-01-01T00:00:00Z", 8)).toBe("1790s");
    expect(formatInception("1701-01-01T00:00:00Z", 7)).toBe("18th century");
    expect(formatInception("-0300-01-01T00:00:00Z", 9)).toBe("300 BCE");
    expect(formatInception(null, 9)).toBeNull();
  });

  it("names a title's language when it is not English", () => {
    expect(titleLanguage("La maja vestida", [{ language: "en", text: "The clothed maja" }, { language: "es", text: "La maja vestida" }])).toBe("es");
    expect(titleLanguage("The clothed maja", [{ language: "en", text: "The clothed maja" }])).toBeNull();
    expect(titleLanguage("Goya", [{ language: "mul", text: "Goya" }])).toBeNull();
    expect(titleLanguage("Odd", [{ language: "x bad", text: "Odd" }])).toBeNull();
    expect(titleLanguage(null, [])).toBeNull();
    expect(titleLanguage("Saturno", [{ language: "pt-br", text: "Saturno" }])).toBe("pt-br");
  });

  it("cuts excerpts at a word", () => {
    expect(excerpt("short")).toBe("short");
    expect(excerpt("word ".repeat(100), 20)).toBe("word word word word…");
    // A text without spaces is cut where the limit falls, but never inside a character.
    expect(excerpt(`${"马".repeat(159)}🐕${"狗".repeat(40)}`)).toBe(`${"马".repeat(159)}…`);
  });

  it("splits search snippets into text and marks, decoding the escapes (templates escape again)", () => {
    expect(snippetParts("a &lt;b&gt; <mark>lamp</mark> &amp; &quot;x&quot;")).toEqual([
      { text: "a <b> ", mark: false },
      { text: "lamp", mark: true },
      { text: ' & "x"', mark: false },
    ]);
  });

  it("reads the collection's URL, naming unknown values", () => {
    const r = readCollectionRequest(new URLSearchParams("state=GONE&flag=TRUNCATED&described=maybe&q=%20sofa%20"));
    expect(r).toMatchObject({ state: "ACTIVE", flag: "TRUNCATED", described: "", q: "sofa" });
    expect(r.problems).toHaveLength(2);
    expect(collectionHref(r, { after: "c1" })).toBe("/?q=sofa&flag=TRUNCATED&after=c1");
  });

  it("makes thumbnail URLs only from a sha256", () => {
    expect(thumbFor("../x", [160], 160)).toBeNull();
    expect(thumbFor("a".repeat(64), [160, 320], 160)!.srcset).toBe(`/thumbs/${"a".repeat(64)}/160.webp 160w, /thumbs/${"a".repeat(64)}/320.webp 320w`);
  });

  it("first-run notices: sync off, missing model with the worker's command, no worker", () => {
    const notices = firstRunNotices(
      {
        stats: { artworks: 3, withImage: 3, described: 0 },
        status: { lastSync: null, nextSyncAt: null, workerAlive: false, backlog: 3, heartbeats: [{ role: "worker", alive: true, modelStatus: "missing", modelError: "Model files missing in m: x. Fetch them with: artdesc models pull --model a/b" }] },
      },
      { contactSet: false, modelPullCommand: null },
    );
    expect(notices.map((n) => n.title)).toEqual(["The sync is off", "The model files are missing", "No describe worker is running"]);
    expect(notices[1]!.command).toBe("artdesc models pull --model a/b");
    expect(pullCommandIn("nothing here")).toBeNull();
  });

  it("diffs words, or gives up on texts too different to compare quickly", () => {
    expect(wordDiff("a dark dress", "a black dress")).toEqual([
      { kind: "same", text: "a " },
      { kind: "removed", text: "dark" },
      { kind: "added", text: "black" },
      { kind: "same", text: " dress" },
    ]);
  });
});

describe("review view models", () => {
  const job = (status: string) => ({ id: "j", number: 7, status, progress: 3, progressTotal: 24, error: null, force: false, createdAt: "2026-12-01T10:00:00Z" });
  const review = { state: "REJECTED", reviewedAt: "2026-12-01T10:05:09Z", reviewedBy: "Ana", needsPerson: false, fallbackStep: 2, fallbackSteps: 3, fallbackJob: job("RUNNING") };

  it("says who reviewed and when, and whether a fallback step runs or ended", () => {
    const running = reviewStatus(review, true);
    expect(running.line).toBe("rejected by Ana · 2026-12-01 10:05 UTC");
    expect(running.regenerating).toMatchObject({ step: 2, steps: 3, job: { number: 7, live: true, progress: 3, total: 24 } });
    expect(running.lastAttempt).toBeNull();
    const ended = reviewStatus({ ...review, fallbackJob: job("FAILED") }, true);
    expect(ended.regenerating).toBeNull();
    expect(ended.lastAttempt).toMatchObject({ step: 2, job: { status: "FAILED" } });
    expect(reviewStatus({ ...review, state: "UNREVIEWED", fallbackStep: null }, true)).toMatchObject({ line: "unreviewed", regenerating: null, lastAttempt: null });
    expect(reviewStatus({ ...review, state: "UNREVIEWED", fallbackStep: null, fallbackJob: null }, false).line).toBeNull();
    expect(reviewStatus({ ...review, state: "NEEDS_WORK", reviewedBy: null, reviewedAt: null }, true).line).toBe("needs work");
  });

  it("a verdict says what it set off", () => {
    const v = { verdict: "REJECTED", note: null, reviewer: "Ana", createdAt: "2026-12-01T10:05:00Z", fallbackStep: 1, exhausted: false };
    expect(verdictView(v)).toMatchObject({ word: "rejected", at: "2026-12-01 10:05 UTC", effect: "queued fallback step 1" });
    expect(verdictView({ ...v, fallbackStep: null, exhausted: true }).effect).toBe("nothing left to try: the work needs a person");
    expect(verdictView({ ...v, verdict: "APPROVED", fallbackStep: null }).effect).toBeNull();
  });

  it("the review filters keep matching cards; a review state needs a description", () => {
    const base = { qid: "Q1", title: "T", inception: null, inceptionPrecision: null, state: "ACTIVE", creators: [], image: null };
    const described = card({ ...base, currentDescription: { text: "x", source: "MODEL", quality: null }, review: { ...review, state: "UNREVIEWED", needsPerson: true } });
    const blank = card({ ...base, currentDescription: null, review: { ...review, state: "UNREVIEWED", fallbackStep: null, fallbackJob: null } });
    const req = (q: string) => readCollectionRequest(new URLSearchParams(q));
    expect(collectionHref(req("review=NEEDS_WORK&needsPerson=yes&after=abc"))).toBe("/?review=NEEDS_WORK&needsPerson=yes");
    expect(req("review=MAYBE&needsPerson=1").problems).toEqual(['review "MAYBE" is not one of UNREVIEWED, APPROVED, REJECTED, NEEDS_WORK', 'needsPerson "1" is not one of yes']);
    // The review filters go to GraphQL's ArtworkFilter (a work without a description has no review state there).
    expect(collectionVariables(req("review=APPROVED")).filter).toMatchObject({ reviewState: ["APPROVED"], needsPerson: null, hasDescription: null });
    expect(collectionVariables(req("review=APPROVED&described=no")).filter).toMatchObject({ reviewState: ["APPROVED"], hasDescription: false });
    expect(collectionVariables(req("needsPerson=yes")).filter).toMatchObject({ reviewState: null, needsPerson: true });
    void described;
    void blank;
  });

  it("a queue item shows its risk, checks and image; the empty queue says why", () => {
    const item = queueItem({
      id: "RGVzY3JpcHRpb246MQ==",
      text: "A dog.",
      reviewState: "UNREVIEWED",
      source: "MODEL",
      author: null,
      createdAt: "2026-12-01T10:00:00Z",
      quality: { flags: ["DEPICTS_MISSING"], risk: 0.456, checks: [{ name: "words", value: 2, detail: "2 words" }, { name: "ratio", value: 0.3333, detail: "a third" }] },
      artwork: { qid: "Q5", title: null, inception: null, inceptionPrecision: null, altText: null, creators: [], image: { localHash: "a".repeat(64), localWidth: 800, localHeight: 600 } },
    });
    expect(item).toMatchObject({ state: "UNREVIEWED", title: "Q5", risk: "0.46", meta: "written by the model · 2026-12-01 10:00 UTC", alt: "Image of Q5", image: { width: 800 } });
    expect(item.checks.map((c) => c.value)).toEqual(["2", "0.33"]);
    expect(emptyQueueReason(0)).toMatch(/^Nothing is described yet/);
    expect(emptyQueueReason(1)).toMatch(/^All 1 current description has been reviewed/);
  });
});

describe("a job's text replaces the current one", () => {
  const job = { number: 7, status: "QUEUED", progress: 0, progressTotal: 200, error: null };
  it("unless a person wrote or approved it; a forced job only over the text it was asked to replace", () => {
    const human = { id: "D1", source: "HUMAN", state: "UNREVIEWED" };
    const approved = { id: "D2", source: "MODEL", state: "APPROVED" };
    const model = { id: "D3", source: "MODEL", state: "REJECTED" };
    expect(jobView(job).replacesCurrent).toBe(true);
    expect(jobView(job, model).replacesCurrent).toBe(true);
    expect(jobView(job, human).replacesCurrent).toBe(false);
    expect(jobView(job, approved).replacesCurrent).toBe(false);
    expect(jobView({ ...job, force: true, forcesOver: "D2" }, approved).replacesCurrent).toBe(true);
    // A person's text that came after the forced request is kept.
    expect(jobView({ ...job, force: true, forcesOver: "D2" }, human).replacesCurrent).toBe(false);
    expect(jobView({ ...job, force: true, forcesOver: null }, human).replacesCurrent).toBe(false);
  });
});

describe("session", () => {
  const key = sessionKey("token-0123456789abcdef", undefined)!;
  it("signs and verifies; expiry, tampering and another key fail", () => {
    const value = signSession({ name: "Ana", expiresAt: 2000 }, key);
    expect(verifySession(value, key, 1000)).toEqual({ name: "Ana", expiresAt: 2000 });
    expect(verifySession(value, key, 2000)).toBeNull();
    expect(verifySession(value.replace(/.$/, (c) => (c === "A" ? "B" : "A")), key, 1000)).toBeNull();
    expect(verifySession(value, sessionKey("token-0123456789abcdeX", undefined), 1000)).toBeNull();
    expect(verifySession(value, sessionKey("token-0123456789abcdef", "a-session-secret-of-at-least-32-chars"), 1000)).toBeNull();
    expect(sessionKey(undefined, "a-session-secret-of-at-least-32-chars")).toBeNull();
  });
  it("cookies and names", () => {
    expect(readCookie("a=1; artdesc_session=xyz; b=2", "artdesc_session")).toBe("xyz");
    expect(sessionCookie("v", true)).toBe("artdesc_session=v; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200; Secure");
    expect(cleanName("  Ana  ")).toEqual({ name: "Ana" });
    expect(cleanName("")).toEqual({ name: null });
    expect(cleanName("a\u0007")).toHaveProperty("problem");
    // What every write checks its author with: a Name that passes sign-in passes it.
    expect(cleanName("Ana\u202e")).toEqual({ problem: "Name must not contain control characters (found U+202E)" });
    expect(cleanName("Ana\u0085")).toHaveProperty("problem");
    expect(cleanName("Ana \ud800")).toHaveProperty("problem");
    expect(cleanName("Ana María")).toEqual({ name: "Ana María" });
  });
});

describe("origin rule", () => {
  const host = "example.org:4000";
  it("accepts this origin, or a same-origin Referer without Origin", () => {
    expect(checkPostOrigin({ host, origin: "http://example.org:4000" }, "http")).toEqual({ ok: true });
    expect(checkPostOrigin({ host, referer: "http://example.org:4000/jobs" }, "http")).toEqual({ ok: true });
    expect(checkPostOrigin({ host, origin: "http://EXAMPLE.org:4000", secFetchSite: "same-origin" }, "http")).toEqual({ ok: true });
    // A proxy that names the default port in Host (nginx's `$host:$server_port`): the same origin.
    expect(checkPostOrigin({ host: "example.org:443", origin: "https://example.org" }, "https")).toEqual({ ok: true });
    expect(checkPostOrigin({ host: "example.org:80", referer: "http://example.org/jobs" }, "http")).toEqual({ ok: true });
    expect(checkPostOrigin({ host: "example.org:443", origin: "http://example.org" }, "http").ok).toBe(false);
  });
  it("refuses everything else", () => {
    for (const h of [
      { host, origin: "http://example.org:4001" },
      { host, origin: "https://example.org:4000" },
      { host, origin: "null" },
      { host },
      { host, referer: "http://evil.example/" },
      { host, referer: "not a url" },
      { host, origin: "http://example.org:4000", secFetchSite: "cross-site" },
      { origin: "http://example.org:4000" },
      { host: "example.org:4000 x", origin: "http://example.org:4000" },
    ]) {
      expect(checkPostOrigin(h, "http").ok, JSON.stringify(h)).toBe(false);
    }
  });
  it("keeps redirects local", () => {
    expect(localPath("/jobs?x=1", "/")).toBe("/jobs?x=1");
    for (const bad of ["//evil", "/\\evil", "http://evil", "", "/\nx"]) expect(localPath(bad, "/")).toBe("/");
  });
});

describe("forms", () => {
  it("keeps the first of repeated fields and refuses too many", () => {
    expect(parseForm("a=1&a=2&b=%3Cx%3E").get("a")).toBe("1");
    expect(() => parseForm(Array.from({ length: 65 }, (_, i) => `f${i}=1`).join("&"))).toThrow(FormError);
  });
  it("reads the Regenerate form: empty fields left to the defaults, checkboxes as booleans, bad numbers named", () => {
    const ok = readRegenerateForm(new Map([["numBeams", "2"], ["maxNewTokens", ""], ["lengthPenalty", "1.5"], ["earlyStopping", "NEVER"], ["force", "on"]]));
    expect(ok).toEqual({ ok: { params: { numBeams: 2, lengthPenalty: 1.5, earlyStopping: "NEVER", imageSplitting: false, cleanMarkdown: false }, reason: null, force: true } });
    const bad = readRegenerateForm(new Map([["numBeams", "1e3"], ["lengthPenalty", "Infinity"], ["earlyStopping", "maybe"]]));
    expect(bad).toHaveProperty("problems");
    expect((bad as { problems: string[] }).problems).toHaveLength(3);
  });
});

describe("what pages write", () => {
  it("escapes HTML and leaves out bidirectional embeddings, overrides and isolates, not direction marks", () => {
    expect(escapeForPage(`<a href="x">'&'</a>`)).toBe("&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    // "Retrato \u202Egnp.exe" would show as "Retrato exe.png".
    expect(escapeForPage("Retrato \u202Egnp.exe")).toBe("Retrato gnp.exe");
    expect(escapeForPage("a\u202Ab\u202Bc\u202Cd\u202De\u2066f\u2067g\u2068h\u2069i")).toBe("abcdefghi");
    expect(escapeForPage("\u200Fمرحبا\u200E 1799")).toBe("\u200Fمرحبا\u200E 1799");
    expect(escapeForPage(42)).toBe("42");
  });

  it("names why live workers describe nothing: a missing or broken model, not one still loading", () => {
    const hb = (alive: boolean, modelStatus: string | null, modelError: string | null = null) => ({ role: "worker", alive, modelStatus, modelError });
    const missing = "The model files are missing from models/x. Fetch them with: artdesc models pull --dtype fp32";
    expect(workerModelProblem([hb(true, "missing", missing)])).toEqual({ text: missing, command: "artdesc models pull --dtype fp32" });
    expect(workerModelProblem([hb(true, "error", "Protobuf parsing failed")])).toEqual({ text: "Protobuf parsing failed", command: null });
    expect(workerModelProblem([hb(true, "error")])).toEqual({ text: "The describe worker's model is error.", command: null });
    expect(workerModelProblem([hb(true, "missing", missing), hb(true, "loaded")])).toBeNull();
    expect(workerModelProblem([hb(true, "missing", missing), hb(true, "loading")])).toBeNull();
    // A dead worker's last word does not count; no live worker is the other notice's business.
    expect(workerModelProblem([hb(false, "missing", missing)])).toBeNull();
    expect(workerModelProblem([])).toBeNull();
  });

  it("a version's parameters say whether markdown was cleaned, and its prompt is kept for the page", () => {
    const generation = { modelId: "m", modelRevision: "r", device: "cpu", prompt: "Describe the print.", numBeams: 4, maxNewTokens: 200 };
    const d = (id: string, cleanMarkdown: boolean | null) => ({
      id, text: "t", language: "en", source: "MODEL", author: null, reason: null, createdAt: "2026-12-07T10:00:00Z",
      generation, outcome: null, quality: null, reproduction: { cleanMarkdown },
    });
    const [cleaned, old] = versions([d("D2", true), d("D1", null)], null, 2, null);
    expect(cleaned!.params).toBe("beams 4, max tokens 200, clean markdown true");
    expect(old!.params).toBe("beams 4, max tokens 200");
    expect(cleaned!.prompt).toBe("Describe the print.");
  });
});
