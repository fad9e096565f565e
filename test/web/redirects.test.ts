import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { createHttpApp } from "../../src/server.js";
import { withDone } from "../../src/web/index.js";
import { localPath } from "../../src/web/origin.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { addDescription, makeArtwork, makeGoya } from "../support/factories.js";
import { serveOnFreePort } from "../support/http.js";

/**
 * A form's `back` goes through localPath, and then through URL parsing to set ?done=: parsing
 * resolves dot segments, so `/.//evil.example/x` would come out as `//evil.example/x`, a
 * Location a browser follows to another site. Every redirect must stay on this server.
 */
const HOSTILE = [
  "/.//evil.example/x",
  "/./\\evil.example/x",
  "/.\\/evil.example/x",
  "/..//evil.example/x",
  "/a/..//evil.example/x",
  "/%2e//evil.example/x",
  "/%2E%2E//evil.example/x?y=1#z",
];

/** Resolved against this server the way a browser resolves a Location. */
const originOf = (location: string) => new URL(location, "http://workbench.local").origin;

describe("localPath, then withDone", () => {
  it.each(HOSTILE)("%s stays on this server", (back) => {
    const location = withDone(localPath(back, "/artworks/Q1"), "saved");
    expect(originOf(location), location).toBe("http://workbench.local");
    expect(location).toMatch(/^\/(?![/\\])/);
    expect(new URL(location, "http://workbench.local").searchParams.get("done")).toBe("saved");
  });

  it("keeps a local path's query and fragment", () => {
    expect(withDone(localPath("/review?after=abc&done=old#item", "/review"), "approved")).toBe("/review?after=abc&done=approved#item");
    expect(withDone(localPath("/.//evil.example/x", "/review"), "approved")).toBe("/review?done=approved");
    // An encoded slash stays encoded: a local path, kept.
    expect(withDone(localPath("/./%2f/evil.example", "/"), "saved")).toBe("/%2f/evil.example?done=saved");
  });
});

describe("over HTTP", () => {
  const TOKEN = "redirect-token-0123456789";
  let t: TestDb;
  let base: string;
  let close = () => {};
  let cookie = "";
  const post = (path: string, fields: Record<string, string>) =>
    fetch(`${base}${path}`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: base, cookie },
      body: new URLSearchParams(fields).toString(),
    });

  beforeAll(async () => {
    t = await createTestDb();
    const goya = await makeGoya(t.db);
    const a = await makeArtwork(t.db, { qid: "Q702001", title: "Redirected", creators: [{ id: goya.id }] });
    await addDescription(t.db, a.id, "A calm harbour at dusk.");
    ({ base, close } = await serveOnFreePort(createHttpApp({ db: t.db, config: loadConfig({ LOG_LEVEL: "silent", API_TOKEN: TOKEN }) }).server));
    const r = await post("/sign-in", { token: TOKEN, name: "Ana", next: "/" });
    expect(r.status).toBe(303);
    cookie = r.headers.get("set-cookie")!.split(";")[0]!;
  });
  afterAll(async () => {
    close();
    await t.close();
  });

  it("saving a description with a hostile `back` comes back to the work's page", async () => {
    for (const [i, back] of HOSTILE.entries()) {
      const r = await post("/artworks/Q702001/description", { text: `Text ${i}.`, back });
      expect(r.status, back).toBe(303);
      expect(r.headers.get("location"), back).toBe("/artworks/Q702001?done=saved");
    }
  });

  it("sign-in with a `next` outside ASCII (or with DEL) goes there, encoded, instead of failing on the header", async () => {
    for (const [next, location] of [
      ["/artworks/Q702001?q=\u0100", "/artworks/Q702001?q=%C4%80&done=signed-in"],
      ["/%C4%80", "/%C4%80?done=signed-in"],
      ["/jobs\u007f", "/?done=signed-in"],
    ]) {
      const r = await post("/sign-in", { token: TOKEN, name: "Ana", next: next! });
      expect(r.status, next).toBe(303);
      expect(r.headers.get("location"), next).toBe(location);
      expect(r.headers.get("set-cookie")).toMatch(/^artdesc_session=/);
    }
  });

  it("a paging link with a cursor this site did not make is a 400 that says so, not a 500", async () => {
    for (const path of ["/?after=x", `/?before=${Buffer.from("GPC:S:a").toString("base64")}`, "/jobs?before=x", "/jobs?after=x"]) {
      const r = await fetch(`${base}${path}`, { headers: { cookie } });
      expect(r.status, path).toBe(400);
      expect(await r.text(), path).toMatch(/not one this site made/);
    }
  });

  it("a banner or verdict key that is an Object prototype name is unknown, not a function's text or a 500", async () => {
    for (const key of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
      const page = await fetch(`${base}/?done=${key}`, { headers: { cookie } });
      expect(page.status).toBe(200);
      expect(await page.text()).not.toMatch(/native code|function /);
      const r = await post("/review", { description: "1", verdict: key, back: "/review" });
      expect(r.status, key).toBe(400);
    }
  });

  it("a verdict with a hostile `back` comes back to the review queue", async () => {
    const html = await (await fetch(`${base}/artworks/Q702001`, { headers: { cookie } })).text();
    const description = /name="description" value="([^"]+)"/.exec(html)![1]!;
    for (const back of HOSTILE) {
      const r = await post("/review", { description, verdict: "NEEDS_WORK", back });
      expect(r.status, back).toBe(303);
      expect(r.headers.get("location"), back).toBe("/review?done=needs-work");
    }
  });
});
