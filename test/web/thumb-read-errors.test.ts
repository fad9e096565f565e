import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { localPathFor } from "../../src/sync/images.js";
import { capturingLogger } from "../support/log.js";
import { serveOnFreePort } from "../support/http.js";

// Running out of file descriptors or a failing disk cannot be made to happen here (the tests may run
// as root, whom permissions do not stop): fs's realpath fails with that code for the named files.
const SOURCE_FAILS = "e".repeat(64);
const CACHE_FAILS = "d".repeat(64);
vi.mock("node:fs/promises", async (importOriginal) => {
  const fs = await importOriginal<typeof import("node:fs/promises")>();
  return {
    ...fs,
    realpath: vi.fn(async (path: string) => {
      if (String(path).endsWith(`${"e".repeat(64)}.jpg`) || String(path).endsWith(`${"d".repeat(64)}-160.webp`)) {
        throw Object.assign(new Error("EMFILE: too many open files"), { code: "EMFILE" });
      }
      return fs.realpath(path);
    }),
  };
});

const { serveThumb, Thumbnails } = await import("../../src/web/thumbs.js");

let dir: string;
let base: string;
let close: () => void;
const captured = capturingLogger();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "artdesc-thumb-errors-"));
  for (const hash of [SOURCE_FAILS, CACHE_FAILS]) {
    mkdirSync(join(dir, "images", hash.slice(0, 2)), { recursive: true });
    await sharp({ create: { width: 64, height: 48, channels: 3, background: "#884422" } }).jpeg().toFile(join(dir, "images", localPathFor(hash)));
  }
  const thumbs = new Thumbnails({ IMAGE_DIR: join(dir, "images"), THUMB_DIR: join(dir, "thumbs") }, captured.log);
  ({ base, close } = await serveOnFreePort(createServer((req, res) => void serveThumb(req, res, thumbs))));
});
afterAll(() => {
  close();
  rmSync(dir, { recursive: true, force: true });
});

it("a stored image that cannot be read now is the server's failure (503, not kept by caches, logged), not a 404", async () => {
  const r = await fetch(`${base}/thumbs/${SOURCE_FAILS}/160.webp`);
  expect(r.status).toBe(503);
  expect(r.headers.get("cache-control")).toBe("no-store");
  expect(r.headers.get("retry-after")).toBe("30");
  expect(captured.lines.some((l) => l.msg === "a stored image could not be read for its thumbnail: answering 503")).toBe(true);
  // An image that is not there: 404 as before.
  expect((await fetch(`${base}/thumbs/${"f".repeat(64)}/160.webp`)).status).toBe(404);
});

it("a kept thumbnail that cannot be read now is made again from the stored image, and the trouble logged", async () => {
  const r = await fetch(`${base}/thumbs/${CACHE_FAILS}/160.webp`);
  expect(r.status).toBe(200);
  expect(r.headers.get("content-type")).toBe("image/webp");
  expect(captured.lines.some((l) => l.msg === "a stored thumbnail could not be read (THUMB_DIR): making it again")).toBe(true);
});
