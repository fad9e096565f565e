import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { staticRoute } from "../../src/web/static.js";
import { serveOnFreePort } from "../support/http.js";

/**
 * /static/ serves the files its folder held when the route was made, and nothing else: a request
 * never touches the disk, so a client asking for random names costs nothing and leaves nothing behind.
 */
let dir: string;
let base: string;
let close: () => void;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "artdesc-static-"));
  writeFileSync(join(dir, "app.js"), "console.log(1);\n");
  writeFileSync(join(dir, "style.css"), "body { margin: 0 }\n");
  writeFileSync(join(dir, "notes.txt"), "not served");
  const serve = staticRoute(dir);
  ({ base, close } = await serveOnFreePort(createServer((req, res) => void serve(req, res, new URL(req.url ?? "/", "http://local").pathname))));
});
afterAll(() => {
  close();
  rmSync(dir, { recursive: true, force: true });
});

it("serves the folder's scripts and style sheets with an ETag", async () => {
  const js = await fetch(`${base}/static/app.js`);
  expect(js.status).toBe(200);
  expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
  expect(await js.text()).toBe("console.log(1);\n");
  expect((await fetch(`${base}/static/app.js`, { headers: { "if-none-match": js.headers.get("etag")! } })).status).toBe(304);
  expect((await fetch(`${base}/static/style.css`)).headers.get("content-type")).toBe("text/css; charset=utf-8");
  expect((await fetch(`${base}/static/notes.txt`)).status).toBe(404);
});

it("the set of files is fixed when the route is made: a miss is a plain 404, never looked up again", async () => {
  // Many misses (each once, as a client inventing names would send them).
  for (let i = 0; i < 200; i++) expect((await fetch(`${base}/static/random-${i}.js`)).status).toBe(404);
  // A file that appears later is not served, and one that goes away still is (read at start).
  writeFileSync(join(dir, "random-7.js"), "late");
  writeFileSync(join(dir, "later.js"), "late");
  rmSync(join(dir, "style.css"));
  expect((await fetch(`${base}/static/random-7.js`)).status).toBe(404);
  expect((await fetch(`${base}/static/later.js`)).status).toBe(404);
  expect((await fetch(`${base}/static/style.css`)).status).toBe(200);
});
