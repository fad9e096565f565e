import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { createHttpApp } from "../../src/server.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { serveOnFreePort } from "../support/http.js";

let t: TestDb;
let base: string;
let close: () => void;

beforeAll(async () => {
  t = await createTestDb();
  const imageDir = join(t.dir, "images");
  mkdirSync(join(imageDir, "ab"), { recursive: true });
  writeFileSync(join(imageDir, "ab", "abc.jpg"), Buffer.from([0xff, 0xd8, 0xff, 0xd9]));
  const { server } = createHttpApp({ db: t.db, config: loadConfig({ IMAGE_DIR: imageDir }) });
  ({ base, close } = await serveOnFreePort(server));
});
afterAll(async () => {
  close();
  await t.close();
});

it("answers /health when the database is reachable", async () => {
  const r = await fetch(`${base}/health`);
  expect(r.status).toBe(200);
  expect(await r.json()).toEqual({ status: "ok", database: "ok" });
});

it("answers /ready after committing a write probe", async () => {
  const r = await fetch(`${base}/ready`);
  expect(r.status).toBe(200);
  expect(await r.json()).toEqual({ status: "ready", database: "ok", writer: "ok" });
});

it("serves GraphiQL with a working default query", async () => {
  const r = await fetch(`${base}/graphql`, { headers: { accept: "text/html" } });
  expect(r.status).toBe(200);
  const html = await r.text();
  expect(html).toContain("artworks(creator: \\\"Goya\\\"");
});

it("answers the literal query over HTTP", async () => {
  const r = await fetch(`${base}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query: '{ artworks(creator: "Goya") { description } }' }),
  });
  expect(await r.json()).toEqual({ data: { artworks: [] } });
});

it("serves normalised images and nothing outside IMAGE_DIR", async () => {
  const ok = await fetch(`${base}/images/ab/abc.jpg`);
  expect(ok.status).toBe(200);
  expect(ok.headers.get("content-type")).toBe("image/jpeg");
  expect(Buffer.from(await ok.arrayBuffer())).toHaveLength(4);
  expect((await fetch(`${base}/images/ab/missing.jpg`)).status).toBe(404);
  expect((await fetch(`${base}/images/..%2F..%2Ftest.db`)).status).toBe(404);
});
