import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseImagePath, parseRange } from "../../src/api/images.js";
import { loadConfig } from "../../src/config.js";
import { createHttpApp } from "../../src/server.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { serveOnFreePort } from "../support/http.js";

let t: TestDb;
let base: string;
let port: number;
let close: () => void;
const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0xff, 0xd9]);

beforeAll(async () => {
  t = await createTestDb();
  const imageDir = join(t.dir, "images");
  mkdirSync(join(imageDir, "ab"), { recursive: true });
  writeFileSync(join(imageDir, "ab", "abc.jpg"), JPEG);
  utimesSync(join(imageDir, "ab", "abc.jpg"), new Date("2026-01-02T03:04:05Z"), new Date("2026-01-02T03:04:05Z"));
  writeFileSync(join(imageDir, "ab", "pic.png"), Buffer.from("png bytes"));
  writeFileSync(join(imageDir, "ab", "notes.txt"), "not an image");
  writeFileSync(join(imageDir, "ab", ".hidden.jpg"), JPEG);
  writeFileSync(join(imageDir, "%2e%2e.jpg"), JPEG); // a real name made of percent signs
  // Links an attacker (or a careless operator) might plant: out of the folder to the database,
  // and inside it to a real image; a linked folder.
  symlinkSync(t.file, join(imageDir, "ab", "db.jpg"));
  symlinkSync(join(imageDir, "ab", "abc.jpg"), join(imageDir, "ab", "alias.jpg"));
  symlinkSync(join(imageDir, "ab"), join(imageDir, "linked"));
  symlinkSync(t.dir, join(imageDir, "up"));
  writeFileSync(join(t.dir, "secret.jpg"), "secret");
  // Things that are not regular files but are named like images.
  mkdirSync(join(imageDir, "ab", "folder.jpg"));
  execFileSync("mkfifo", [join(imageDir, "ab", "fifo.jpg")]);
  const { server } = createHttpApp({ db: t.db, config: loadConfig({ IMAGE_DIR: imageDir }) });
  ({ base, close } = await serveOnFreePort(server));
  port = Number(new URL(base).port);
});
afterAll(async () => {
  close();
  await t.close();
});

/** A request with the path sent exactly as given (fetch would normalise dot segments). */
function raw(path: string, method = "GET", headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("GET /images/ for what is not a regular file", () => {
  it("answers 404 at once for a folder or a FIFO named like an image, and keeps no file open", async () => {
    const openFiles = () => readdirSync("/proc/self/fd").length;
    const before = openFiles();
    for (let i = 0; i < 50; i++) {
      expect((await raw("/images/ab/folder.jpg")).status).toBe(404);
      // Without O_NONBLOCK, opening a FIFO waits for a writer and this request never ends.
      expect((await raw("/images/ab/fifo.jpg")).status).toBe(404);
    }
    expect(openFiles(), "file handles left open by refused requests").toBeLessThan(before + 10);
  });
});

describe("GET /images/", () => {
  it("serves an image with validators and byte ranges advertised", async () => {
    const r = await raw("/images/ab/abc.jpg");
    expect(r.status).toBe(200);
    expect(r.body.equals(JPEG)).toBe(true);
    expect(r.headers["content-type"]).toBe("image/jpeg");
    expect(r.headers["content-length"]).toBe(String(JPEG.length));
    expect(r.headers["accept-ranges"]).toBe("bytes");
    expect(r.headers["last-modified"]).toBe("Fri, 02 Jan 2026 03:04:05 GMT");
    expect(r.headers.etag).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
    expect(r.headers["x-content-type-options"]).toBe("nosniff");
    expect((await raw("/images/ab/pic.png")).headers["content-type"]).toBe("image/png");
    expect((await raw("/images/ab/abc.jpg?v=1")).status).toBe(200);
  });

  it("answers 400, not 500, to malformed percent-encoding", async () => {
    for (const path of ["/images/%", "/images/%E0%A4%A", "/images/ab/%zz.jpg", "/images/%C0%AF.jpg", "/images/ab/abc.jpg%", "/images/%ED%A0%80.jpg"]) {
      const r = await raw(path);
      expect(r.status, path).toBe(400);
      expect(r.body.toString(), path).not.toMatch(/at .*\.ts|Error/);
    }
  });

  it("never follows a symbolic link, out of the folder or inside it", async () => {
    for (const path of ["/images/ab/db.jpg", "/images/ab/alias.jpg", "/images/linked/abc.jpg", "/images/up/secret.jpg", "/images/up/test.db"]) {
      const r = await raw(path);
      expect(r.status, path).toBe(404);
      expect(r.body.includes(Buffer.from("SQLite format")), path).toBe(false);
    }
  });

  it("serves nothing outside IMAGE_DIR, whatever the encoding", async () => {
    const paths = [
      "/images/../test.db",
      "/images/ab/../../test.db",
      "/images/..%2Ftest.db",
      "/images/..%2F..%2Ftest.db",
      "/images/%2e%2e/test.db",
      "/images/%2E%2E%2Ftest.db",
      "/images/ab%2F..%2F..%2Fsecret.jpg",
      "/images/..%5Csecret.jpg",
      "/images/%252e%252e%252fsecret.jpg",
      "/images/%252e%252e/secret.jpg",
      "/images//etc/passwd",
      "/images/%2Fetc%2Fpasswd",
      "/images/ab/abc.jpg%00.png",
      "/images/ab/.hidden.jpg",
      "/images/ab/notes.txt",
      "/images/ab",
      "/images/",
      "/images/ab/",
    ];
    for (const path of paths) {
      const r = await raw(path);
      expect([400, 404], path).toContain(r.status);
      expect(r.body.includes(Buffer.from("SQLite format")), path).toBe(false);
      expect(r.body.toString(), path).not.toBe("secret");
    }
    // A file whose real name contains "%2e%2e" is served by its double-encoded name, and is not a way up.
    expect((await raw("/images/%252e%252e.jpg")).status).toBe(200);
  });

  it("answers GET and HEAD only; other methods get 405 with Allow", async () => {
    const head = await raw("/images/ab/abc.jpg", "HEAD");
    expect(head.status).toBe(200);
    expect(head.headers["content-length"]).toBe(String(JPEG.length));
    expect(head.body.length).toBe(0);
    for (const method of ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]) {
      const r = await raw("/images/ab/abc.jpg", method);
      expect(r.status, method).toBe(405);
      expect(r.headers.allow, method).toBe("GET, HEAD");
      expect(r.body.includes(JPEG.subarray(0, 4)), method).toBe(false);
    }
  });

  it("serves byte ranges: 206 for one satisfiable range, 416 past the end, the whole file otherwise", async () => {
    const size = JPEG.length;
    const first = await raw("/images/ab/abc.jpg", "GET", { range: "bytes=0-3" });
    expect(first.status).toBe(206);
    expect(first.headers["content-range"]).toBe(`bytes 0-3/${size}`);
    expect(first.body.equals(JPEG.subarray(0, 4))).toBe(true);
    const open = await raw("/images/ab/abc.jpg", "GET", { range: "bytes=10-" });
    expect(open.status).toBe(206);
    expect(open.body.equals(JPEG.subarray(10))).toBe(true);
    const suffix = await raw("/images/ab/abc.jpg", "GET", { range: "bytes=-2" });
    expect(suffix.status).toBe(206);
    expect(suffix.body.equals(JPEG.subarray(size - 2))).toBe(true);
    const clamped = await raw("/images/ab/abc.jpg", "GET", { range: "bytes=8-999" });
    expect(clamped.headers["content-range"]).toBe(`bytes 8-${size - 1}/${size}`);
    for (const range of [`bytes=${size}-`, "bytes=999-1000", "bytes=-0"]) {
      const r = await raw("/images/ab/abc.jpg", "GET", { range });
      expect(r.status, range).toBe(416);
      expect(r.headers["content-range"], range).toBe(`bytes */${size}`);
    }
    for (const range of ["bytes=5-2", "bytes=abc", "items=0-3", "bytes=0-1,4-5", "bytes=-", "bytes=1-2-3"]) {
      const r = await raw("/images/ab/abc.jpg", "GET", { range });
      expect(r.status, range).toBe(200);
      expect(r.body.equals(JPEG), range).toBe(true);
    }
    const etag = first.headers.etag as string;
    expect((await raw("/images/ab/abc.jpg", "GET", { range: "bytes=0-3", "if-range": etag })).status).toBe(206);
    expect((await raw("/images/ab/abc.jpg", "GET", { range: "bytes=0-3", "if-range": '"other"' })).status).toBe(200);
  });

  it("answers conditional requests with 304", async () => {
    const { headers } = await raw("/images/ab/abc.jpg");
    const etag = headers.etag as string;
    const same = await raw("/images/ab/abc.jpg", "GET", { "if-none-match": etag });
    expect(same.status).toBe(304);
    expect(same.body.length).toBe(0);
    expect(same.headers.etag).toBe(etag);
    expect((await raw("/images/ab/abc.jpg", "GET", { "if-none-match": `"x", W/${etag}` })).status).toBe(304);
    expect((await raw("/images/ab/abc.jpg", "GET", { "if-none-match": "*" })).status).toBe(304);
    expect((await raw("/images/ab/abc.jpg", "GET", { "if-none-match": '"stale"' })).status).toBe(200);
    expect((await raw("/images/ab/abc.jpg", "GET", { "if-modified-since": headers["last-modified"] as string })).status).toBe(304);
    expect((await raw("/images/ab/abc.jpg", "GET", { "if-modified-since": "Thu, 01 Jan 2026 00:00:00 GMT" })).status).toBe(200);
    expect((await raw("/images/ab/abc.jpg", "GET", { "if-modified-since": "garbage" })).status).toBe(200);
    // If-None-Match wins over If-Modified-Since.
    expect((await raw("/images/ab/abc.jpg", "GET", { "if-none-match": '"stale"', "if-modified-since": headers["last-modified"] as string })).status).toBe(200);
  });
});

describe("parseImagePath and parseRange", () => {
  it("reads segments and refuses what is not a plain image name", () => {
    expect(parseImagePath("/images/ab/abc.jpg?x")).toEqual({ kind: "file", segments: ["ab", "abc.jpg"] });
    expect(parseImagePath("/images/a%20b.JPG")).toEqual({ kind: "file", segments: ["a b.JPG"] });
    expect(parseImagePath("/images/%")).toEqual({ kind: "bad-encoding" });
    expect(parseImagePath("/images/a%2Fb.jpg")).toEqual({ kind: "not-found" });
    expect(parseImagePath("/images/..")).toEqual({ kind: "not-found" });
    expect(parseImagePath("/other/x.jpg")).toEqual({ kind: "not-found" });
  });
  it("reads one byte range", () => {
    expect(parseRange(undefined, 10)).toBeNull();
    expect(parseRange("bytes=2-4", 10)).toEqual({ start: 2, end: 4 });
    expect(parseRange("bytes=-20", 10)).toEqual({ start: 0, end: 9 });
    expect(parseRange("bytes=0-", 0)).toBe("unsatisfiable");
    expect(parseRange("bytes=4-2", 10)).toBeNull();
  });
});
