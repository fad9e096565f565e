import { existsSync, mkdirSync, readdirSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { createHttpApp } from "../../src/server.js";
import { parseThumbPath, thumbDir, Thumbnails } from "../../src/web/thumbs.js";
import { createLogger } from "../../src/log.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { makeArtwork, makeGoya } from "../support/factories.js";
import { serveOnFreePort } from "../support/http.js";
import { storePaintingImage } from "./support.js";
import { capturingLogger } from "../support/log.js";

/** Thumbnails: made once, cached on disk by content hash, immutable; a page of 60 stays small. */

const WORKS = 60;
/** The budget for the images of one collection page. */
const PAGE_IMAGE_BUDGET = 600 * 1024;
let t: TestDb;
let base: string;
let close: () => void;
let imageDir: string;
let hashes: string[] = [];

beforeAll(async () => {
  t = await createTestDb();
  imageDir = join(t.dir, "images");
  const goya = await makeGoya(t.db);
  for (let i = 0; i < WORKS; i++) {
    const a = await makeArtwork(t.db, { qid: `Q${720000 + i}`, title: `Painting ${i}`, creators: [{ id: goya.id }] });
    // Copies as large as the sync keeps by default (IMAGE_EDGE 1024).
    hashes.push(await storePaintingImage(t.db, imageDir, a.id, i + 1, 1024));
  }
  const { server } = createHttpApp({ db: t.db, config: loadConfig({ IMAGE_DIR: imageDir, LOG_LEVEL: "silent" }) });
  ({ base, close } = await serveOnFreePort(server));
}, 120_000);
afterAll(async () => {
  close();
  await t.close();
});

it(`a collection page of ${WORKS} works transfers under 600 KB of images`, async () => {
  const html = await (await fetch(`${base}/`)).text();
  const imgs = [...html.matchAll(/<img\b[^>]*>/g)].map((m) => m[0]);
  expect(imgs).toHaveLength(WORKS);
  let total = 0;
  for (const img of imgs) {
    // One candidate per card, whatever the screen's density: what the browser fetches is this.
    expect(img).not.toContain("srcset");
    const src = /src="([^"]+)"/.exec(img)![1]!;
    expect(src).toMatch(/^\/thumbs\/[0-9a-f]{64}\/160\.webp$/);
    total += (await (await fetch(`${base}${src}`)).arrayBuffer()).byteLength;
  }
  console.log(`collection page images: ${Math.round(total / 1024)} KB for ${WORKS} works`);
  expect(total).toBeLessThan(PAGE_IMAGE_BUDGET);
}, 120_000);

describe("serving", () => {
  it("answers WebP of the asked width with immutable caching and an ETag; If-None-Match gets 304", async () => {
    const url = `${base}/thumbs/${hashes[0]}/320.webp`;
    const r = await fetch(url);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("image/webp");
    expect(r.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(r.headers.get("x-content-type-options")).toBe("nosniff");
    const etag = r.headers.get("etag")!;
    expect(etag).toMatch(/^"[^"]+"$/);
    const bytes = Buffer.from(await r.arrayBuffer());
    expect(bytes.subarray(0, 4).toString()).toBe("RIFF");
    expect(bytes.subarray(8, 12).toString()).toBe("WEBP");
    for (const inm of [etag, `W/${etag}`, `"other", ${etag}`, "*"]) {
      const again = await fetch(url, { headers: { "if-none-match": inm } });
      expect(again.status, inm).toBe(304);
      expect(again.headers.get("cache-control")).toContain("immutable");
    }
    expect((await fetch(url, { headers: { "if-none-match": '"stale"' } })).status).toBe(200);
    // "*" on a thumbnail of no stored image: it does not exist, so 404, not 304.
    expect((await fetch(`${base}/thumbs/${"e".repeat(64)}/160.webp`, { headers: { "if-none-match": "*" } })).status).toBe(404);
    const head = await fetch(url, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get("content-length"))).toBe(bytes.length);
  });

  it("caches on disk under IMAGE_DIR/.thumbs, keyed by hash and width, hidden from /images", async () => {
    await fetch(`${base}/thumbs/${hashes[1]}/640.webp`);
    const dir = join(imageDir, ".thumbs", hashes[1]!.slice(0, 2));
    expect(readdirSync(dir)).toContain(`${hashes[1]}-640.webp`);
    expect((await fetch(`${base}/images/.thumbs/${hashes[1]!.slice(0, 2)}/${hashes[1]}-640.webp`)).status).toBe(404);
  });

  it("refuses other methods (405), bad encodings (400), other widths, names and unknown hashes (404)", async () => {
    expect((await fetch(`${base}/thumbs/${hashes[0]}/160.webp`, { method: "POST" })).status).toBe(405);
    expect((await fetch(`${base}/thumbs/%E0%A4%A`)).status).toBe(400);
    for (const p of [`/thumbs/${hashes[0]}/161.webp`, `/thumbs/${hashes[0]}/160.jpg`, `/thumbs/${hashes[0]!.toUpperCase()}/160.webp`, `/thumbs/${"0".repeat(64)}/160.webp`, "/thumbs/../images/x.jpg", `/thumbs/${hashes[0]}/%2e%2e/160.webp`, "/thumbs/"]) {
      expect((await fetch(`${base}${p}`)).status, p).toBe(404);
    }
  });

  it("never follows a symbolic link: a stored copy replaced by a link to another file gives 404", async () => {
    const fake = "f".repeat(64);
    mkdirSync(join(imageDir, "ff"), { recursive: true });
    writeFileSync(join(t.dir, "secret.jpg"), "not an image");
    symlinkSync(join(imageDir, hashes[2]!.slice(0, 2), `${hashes[2]}.jpg`), join(imageDir, "ff", `${fake}.jpg`));
    expect((await fetch(`${base}/thumbs/${fake}/160.webp`)).status).toBe(404);
    // Nothing was made for the fake hash (another work's thumbnails may share the "ff" folder).
    const ff = join(imageDir, ".thumbs", "ff");
    expect(existsSync(ff) ? readdirSync(ff).filter((f) => f.startsWith(fake)) : []).toEqual([]);
  });

  it("parses only /thumbs/<64 lowercase hex>/<160|320|640>.webp", () => {
    expect(parseThumbPath(`/thumbs/${"a".repeat(64)}/160.webp`)).toEqual({ kind: "thumb", hash: "a".repeat(64), width: 160 });
    expect(parseThumbPath(`/thumbs/${"a".repeat(64)}/1600.webp`)).toEqual({ kind: "not-found" });
    expect(parseThumbPath("/thumbs/%zz")).toEqual({ kind: "bad-encoding" });
  });
});

it("removes the temporary files a killed process left in the thumbnail folder, in the background at start", async () => {
  const config = loadConfig({ IMAGE_DIR: imageDir, THUMB_DIR: join(t.dir, "thumbs-swept"), LOG_LEVEL: "silent" });
  const folder = join(thumbDir(config), "ab");
  mkdirSync(folder, { recursive: true });
  const left = join(folder, `${"ab".padEnd(64, "0")}-160.webp.77.k1ll3d.tmp`);
  const fresh = join(folder, `${"ab".padEnd(64, "1")}-160.webp.78.n0w.tmp`);
  writeFileSync(left, "half a thumbnail");
  const hoursAgo = new Date(Date.now() - 2 * 3_600_000);
  utimesSync(left, hoursAgo, hoursAgo);
  writeFileSync(fresh, "a thumbnail being written");
  new Thumbnails(config, createLogger("silent"));
  for (let i = 0; i < 100 && existsSync(left); i++) await new Promise((r) => setTimeout(r, 20));
  expect(existsSync(left)).toBe(false);
  expect(existsSync(fresh)).toBe(true);
});

it("a damaged stored copy is decoded once, not on every request, and logged once; a THUMB_DIR it cannot write to is logged", async () => {
  const { lines, log } = capturingLogger("warn");
  const damaged = "d".repeat(64);
  mkdirSync(join(imageDir, "dd"), { recursive: true });
  writeFileSync(join(imageDir, "dd", `${damaged}.jpg`), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]));
  const thumbs = new Thumbnails(loadConfig({ IMAGE_DIR: imageDir, THUMB_DIR: join(t.dir, "thumbs-damaged"), LOG_LEVEL: "silent" }), log);
  for (let i = 0; i < 5; i++) expect(await thumbs.get(damaged, 160)).toBeNull();
  expect(lines.filter((l) => l.msg === "thumbnail could not be made from the stored image")).toHaveLength(1);

  // THUMB_DIR is a file: nothing can be stored there, the thumbnail is served all the same.
  const blocked = join(t.dir, "thumbs-blocked");
  writeFileSync(blocked, "a file where the folder should be");
  const unwritable = new Thumbnails(loadConfig({ IMAGE_DIR: imageDir, THUMB_DIR: blocked, LOG_LEVEL: "silent" }), log);
  expect((await unwritable.get(hashes[3]!, 160))?.length).toBeGreaterThan(0);
  expect(lines.some((l) => String(l.msg).startsWith("a thumbnail could not be stored"))).toBe(true);
});
