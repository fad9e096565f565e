import { afterAll, beforeAll, expect, it } from "vitest";
import type { Browser } from "playwright-core";
import { loadConfig } from "../../src/config.js";
import { ASSET_PREFIX } from "../../src/graphql/graphiql.js";
import { createHttpApp } from "../../src/server.js";
import { launchChromium, openOfflinePage } from "../support/browser.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { addDescription, makeArtwork, makeGoya } from "../support/factories.js";
import { serveOnFreePort } from "../support/http.js";

let t: TestDb;
let base: string;
let close: () => void;
let browser: Browser;

const TEXT = "A woman in a black mantilla stands before a dark landscape, her hands folded.";

beforeAll(async () => {
  t = await createTestDb();
  const goya = await makeGoya(t.db);
  const work = await makeArtwork(t.db, { title: "La maja", creators: [{ id: goya.id }] });
  await addDescription(t.db, work.id, TEXT);
  const { server } = createHttpApp({ db: t.db, config: loadConfig({ IMAGE_DIR: `${t.dir}/images` }) });
  ({ base, close } = await serveOnFreePort(server));
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  close();
  await t.close();
});

it("GraphiQL runs the literal query offline, every file from this server, under its CSP", async () => {
  const { page, foreignRequests, errors } = await openOfflinePage(browser, base, "graphiql-offline");
  const response = await page.goto(`${base}/graphql`);
  expect(response?.headers()["content-security-policy"]).toContain("script-src 'self'");
  expect(response?.headers()["content-security-policy"]).toContain("frame-ancestors 'none'");

  // The editor is Monaco: select what the default query holds and type the user's query.
  const editor = page.locator(".graphiql-query-editor .monaco-editor").first();
  await editor.waitFor({ timeout: 30_000 });
  await editor.click();
  await page.keyboard.press("Control+A");
  await page.keyboard.press("Delete");
  await page.keyboard.insertText('{ artworks(creator: "Goya") { description } }');
  await page.getByRole("button", { name: /execute query/i }).click();

  const result = page.locator(".graphiql-response");
  // Monaco draws spaces as no-break spaces and may wrap the long line.
  await expect.poll(async () => (await result.innerText()).replace(/\s+/g, " "), { timeout: 30_000 }).toContain(TEXT);
  expect(foreignRequests).toEqual([]);
  expect(errors.filter((e) => /Content Security Policy|Refused to/i.test(e))).toEqual([]);
});

it("serves GraphiQL's files with immutable caching and ETags, and nothing else under /graphiql/", async () => {
  const js = await fetch(`${base}${ASSET_PREFIX}graphiql.js`);
  expect(js.status).toBe(200);
  expect(js.headers.get("cache-control")).toContain("immutable");
  expect(js.headers.get("x-content-type-options")).toBe("nosniff");
  const etag = js.headers.get("etag")!;
  expect((await fetch(`${base}${ASSET_PREFIX}graphiql.js`, { headers: { "if-none-match": etag } })).status).toBe(304);
  expect((await fetch(`${base}${ASSET_PREFIX}graphiql.js`, { method: "POST" })).status).toBe(405);
  for (const path of [`${ASSET_PREFIX}../package.json`, `${ASSET_PREFIX}%2e%2e/x`, "/graphiql/0.0.0/graphiql.js", `${ASSET_PREFIX}`]) {
    expect((await fetch(`${base}${path}`)).status, path).toBe(404);
  }
});
