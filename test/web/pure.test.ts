import { describe, expect, it } from "vitest";
import { wordDiff } from "../../src/web/diff.js";
import { FormError, parseForm } from "../../src/web/forms.js";
import { checkPostOrigin, localPath } from "../../src/web/origin.js";
import { readRegenerateForm } from "../../src/web/params-form.js";
import { cleanName, readCookie, sessionCookie, sessionKey, signSession, verifySession } from "../../src/web/session.js";
import { collectionHref, excerpt, firstRunNotices, formatInception, pullCommandIn, readCollectionRequest, snippetParts, thumbFor } from "../../src/web/view-models.js";

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

  it("cuts excerpts at a word", () => {
    expect(excerpt("short")).toBe("short");
    expect(excerpt("word ".repeat(100), 20)).toBe("word word word word…");
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
  });
});

describe("origin rule", () => {
  const host = "example.org:4000";
  it("accepts this origin, or a same-origin Referer without Origin", () => {
    expect(checkPostOrigin({ host, origin: "http://example.org:4000" }, "http")).toEqual({ ok: true });
    expect(checkPostOrigin({ host, referer: "http://example.org:4000/jobs" }, "http")).toEqual({ ok: true });
    expect(checkPostOrigin({ host, origin: "http://EXAMPLE.org:4000", secFetchSite: "same-origin" }, "http")).toEqual({ ok: true });
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
