import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import {
  folderSource,
  httpSource,
  ImageFetchError,
  ImageHashMismatchError,
  ImageMissingError,
  ImageNotFoundError,
  ImageRecordError,
  type ImageSource,
  ImageSourceError,
  imageSourceFor,
  ImageTooLargeError,
  type StoredImage,
} from "../../src/images/source.js";
import { localPathFor } from "../../src/sync/images.js";
import { type FaultServer, imageApiWithFaults, storeByHash } from "./remote-worker-faults.js";

/**
 * The HTTP image source against a hostile stand-in of the API: the real /images/ route
 * (src/api/images.ts) over a folder, with faults in front of it. Every answer that is not the
 * stored image's exact bytes ends in a typed ImageSourceError; nothing half-written is left in the
 * worker's IMAGE_DIR; transient failures are tried again, others are not.
 */
let root: string;
let apiDir: string;
let server: FaultServer;
const images: StoredImage[] = [];

async function storeJpeg(i: number): Promise<StoredImage> {
  const data = await sharp({ create: { width: 120 + i, height: 90, channels: 3, background: { r: 40 * i, g: 100, b: 200 - 10 * i } } }).jpeg().toBuffer();
  return storeByHash(apiDir, data);
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "artdesc-remote-source-"));
  apiDir = join(root, "api-images");
  for (let i = 0; i < 4; i++) images.push(await storeJpeg(i));
  server = await imageApiWithFaults(apiDir);
});
afterAll(async () => {
  await server?.close();
  rmSync(root, { recursive: true, force: true });
});

let workerDir: string;
let n = 0;
beforeEach(() => {
  server.clear();
  server.requests.clear();
  workerDir = join(root, `worker-${n++}`);
});

function source(o: { timeoutMs?: number; maxRetries?: number } = {}): ImageSource {
  return httpSource({
    baseUrl: `${server.base}/images/`,
    imageDir: workerDir,
    timeoutMs: o.timeoutMs ?? 2_000,
    maxRetries: o.maxRetries ?? 2,
    maxWaitMs: 50,
    backoffBaseMs: 10,
  });
}

/** Every file under the worker's IMAGE_DIR (a leftover temporary file would show here). */
function filesIn(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .filter((f) => !f.startsWith(".write-check"))
    .sort();
}

async function failure(p: Promise<unknown>): Promise<ImageSourceError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ImageSourceError);
  const e = err as ImageSourceError;
  // A job's error is public: it names the image, never a local path or the source's address.
  expect(e.message).not.toContain(root);
  expect(e.message).not.toContain(server.base);
  return e;
}

describe("the HTTP image source (IMAGE_SOURCE_URL)", () => {
  it("fetches the stored bytes through the real /images/ route, keeps them under the same name, and fetches them only once", async () => {
    const img = images[0]!;
    const s = source();
    await s.ready();
    const file = await s.localFile(img);
    expect(file).toBe(join(workerDir, img.localPath));
    expect(createHash("sha256").update(readFileSync(file)).digest("hex")).toBe(img.localHash);
    expect(await s.localFile(img)).toBe(file);
    expect(server.requests.get(img.localPath)).toBe(1);
    expect(filesIn(workerDir)).toEqual([img.localPath]);
  });

  it("at start, removes the temporary files a worker killed mid-fetch left (older than an hour), and only those", async () => {
    const img = images[2]!;
    const stale = join(workerDir, `${img.localPath}.4242.abc123.tmp`);
    const fresh = join(workerDir, `${img.localPath}.4243.def456.tmp`);
    mkdirSync(dirname(stale), { recursive: true });
    writeFileSync(stale, "half an image");
    writeFileSync(fresh, "another worker's fetch in progress");
    const twoHoursAgo = new Date(Date.now() - 7_200_000);
    utimesSync(stale, twoHoursAgo, twoHoursAgo);
    await source().ready();
    expect([existsSync(stale), existsSync(fresh)]).toEqual([false, true]);
    rmSync(fresh);
  });

  it("corrupted bytes: a hash mismatch, not retried, nothing kept", async () => {
    const img = images[1]!;
    server.fault(img.localPath, { kind: "corrupt" });
    const e = await failure(source().localFile(img));
    expect(e).toBeInstanceOf(ImageHashMismatchError);
    expect(e.permanent).toBe(false);
    expect(e.message).toContain(img.localPath);
    expect(e.message).toMatch(/not the stored/);
    expect(server.requests.get(img.localPath)).toBe(1);
    expect(filesIn(workerDir)).toEqual([]);
  });

  it("a whole answer with too few bytes (a matching Content-Length): a hash mismatch", async () => {
    const img = images[1]!;
    server.fault(img.localPath, { kind: "short" });
    expect(await failure(source().localFile(img))).toBeInstanceOf(ImageHashMismatchError);
    expect(filesIn(workerDir)).toEqual([]);
  });

  it("an answer cut short on the way: tried again, and the image is had once the network behaves", async () => {
    const img = images[2]!;
    server.fault(img.localPath, { kind: "cut" }, 2);
    const file = await source({ maxRetries: 2 }).localFile(img);
    expect(readFileSync(file).length).toBe(img.localBytes);
    expect(server.requests.get(img.localPath)).toBe(3);
    expect(filesIn(workerDir)).toEqual([img.localPath]);
  });

  it("cut short every time: ImageFetchError after HTTP_MAX_RETRIES + 1 attempts, nothing half-written left", async () => {
    const img = images[2]!;
    server.fault(img.localPath, { kind: "cut" });
    const e = await failure(source({ maxRetries: 2 }).localFile(img));
    expect(e).toBeInstanceOf(ImageFetchError);
    expect(e.message).toMatch(/cut short .* after 3 attempt\(s\)/);
    expect(server.requests.get(img.localPath)).toBe(3);
    expect(filesIn(workerDir)).toEqual([]);
  });

  it("404 and 410: ImageNotFoundError at once, no retry", async () => {
    for (const status of [404, 410]) {
      server.requests.clear();
      const img = images[3]!;
      server.clear();
      server.fault(img.localPath, { kind: "status", status });
      const e = await failure(source().localFile(img));
      expect(e).toBeInstanceOf(ImageNotFoundError);
      expect(server.requests.get(img.localPath)).toBe(1);
    }
    // And a file the API really does not have (the real route's 404).
    const ghost = { localPath: localPathFor("f".repeat(64)), localHash: "f".repeat(64), localBytes: 10 };
    expect(await failure(source().localFile(ghost))).toBeInstanceOf(ImageNotFoundError);
  });

  it("other refusals (401, 403, 400, a 304 or 206 nobody asked for): ImageFetchError, no retry", async () => {
    const img = images[3]!;
    for (const status of [401, 403, 400, 304, 206]) {
      server.clear();
      server.requests.clear();
      server.fault(img.localPath, { kind: "status", status });
      const e = await failure(source().localFile(img));
      expect(e).toBeInstanceOf(ImageFetchError);
      expect(e.message).toContain(`HTTP ${status}`);
      expect(server.requests.get(img.localPath)).toBe(1);
    }
  });

  it("503 and 429 (with Retry-After) twice, then the image: had after retries", async () => {
    const img = images[3]!;
    server.fault(img.localPath, { kind: "status", status: 503 }, 1);
    server.fault(img.localPath, { kind: "status", status: 429, headers: { "retry-after": "1" } }, 1);
    const started = Date.now();
    await source({ maxRetries: 3 }).localFile(img);
    // Retry-After is capped by maxWaitMs (RETRY_AFTER_MAX_S): 50 ms here, not a second.
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(server.requests.get(img.localPath)).toBe(3);
  });

  it("5xx every time: ImageFetchError naming the status and the attempts", async () => {
    const img = images[3]!;
    server.fault(img.localPath, { kind: "status", status: 502 });
    const e = await failure(source({ maxRetries: 1 }).localFile(img));
    expect(e).toBeInstanceOf(ImageFetchError);
    expect(e.message).toMatch(/HTTP 502 after 2 attempt\(s\)/);
  });

  it("connection resets: network errors, tried again", async () => {
    const img = images[0]!;
    server.fault(img.localPath, { kind: "reset" }, 1);
    await source().localFile(img);
    server.clear();
    server.fault(img.localPath, { kind: "reset" });
    workerDir = join(root, `worker-${n++}`);
    const e = await failure(source({ maxRetries: 1 }).localFile(img));
    expect(e).toBeInstanceOf(ImageFetchError);
    expect(e.message).toMatch(/network error|socket|closed/i);
  });

  it("a declared Content-Length above the stored size: ImageTooLargeError before the body is read", async () => {
    const img = images[0]!;
    server.fault(img.localPath, { kind: "declared-huge" });
    const e = await failure(source().localFile(img));
    expect(e).toBeInstanceOf(ImageTooLargeError);
    expect((e as ImageTooLargeError).maxBytes).toBe(img.localBytes);
    expect(filesIn(workerDir)).toEqual([]);
  });

  it("an endless chunked body: stopped as soon as it passes the stored size, never read to its end", async () => {
    const img = images[0]!;
    server.fault(img.localPath, { kind: "endless" });
    const e = await failure(source().localFile(img));
    expect(e).toBeInstanceOf(ImageTooLargeError);
    expect(server.requests.get(img.localPath)).toBe(1);
    // Far less than the 48 MiB cap of a row without a size: the client hung up early.
    await new Promise((r) => setTimeout(r, 100));
    expect(server.endlessBytes).toBeLessThan(20_000_000);
    expect(filesIn(workerDir)).toEqual([]);
  });

  it("headers, then a stalled body; or no answer at all: timed out (HTTP_TIMEOUT_MS), tried again, then ImageFetchError", async () => {
    const img = images[0]!;
    for (const kind of ["stall", "hang"] as const) {
      server.clear();
      server.requests.clear();
      server.fault(img.localPath, { kind });
      const started = Date.now();
      const e = await failure(source({ timeoutMs: 300, maxRetries: 1 }).localFile(img));
      expect(e).toBeInstanceOf(ImageFetchError);
      expect(e.message).toMatch(/timed out/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(550);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(server.requests.get(img.localPath)).toBe(2);
    }
    expect(filesIn(workerDir)).toEqual([]);
  });

  it("the API down, then up again on the same address: had after retries", async () => {
    const img = images[1]!;
    await server.down();
    const s = httpSource({ baseUrl: `${server.base}/images/`, imageDir: workerDir, timeoutMs: 2_000, maxRetries: 6, maxWaitMs: 400, backoffBaseMs: 100 });
    const fetching = s.localFile(img);
    await new Promise((r) => setTimeout(r, 600));
    await server.up();
    const file = await fetching;
    expect(readFileSync(file).length).toBe(img.localBytes);
  });

  it("backs off between tries even when Retry-After is capped at 0 (RETRY_AFTER_MAX_S=0): never a tight loop against the API", async () => {
    const img = images[1]!;
    await server.down();
    try {
      const s = httpSource({ baseUrl: `${server.base}/images/`, imageDir: workerDir, timeoutMs: 1_000, maxRetries: 2, maxWaitMs: 0, backoffBaseMs: 100 });
      const started = Date.now();
      await expect(s.localFile(img)).rejects.toThrow(/after 3 attempt/);
      // Half to all of 100 ms, then of 200 ms.
      expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    } finally {
      await server.up();
    }
  });

  it("a shutdown aborts a fetch in its backoff or in flight at once, with the caller's reason", async () => {
    const img = images[2]!;
    server.fault(img.localPath, { kind: "hang" });
    const abort = new AbortController();
    const started = Date.now();
    const p = source({ timeoutMs: 10_000 }).localFile(img, abort.signal);
    setTimeout(() => abort.abort(new Error("shutting down")), 100);
    await expect(p).rejects.toThrow("shutting down");
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("a row whose name is not its hash (a path out of IMAGE_DIR, a bad hash, no hash): refused, nothing fetched or written", async () => {
    const hash = images[0]!.localHash!;
    const rows: StoredImage[] = [
      { localPath: `../../${hash.slice(0, 2)}/${hash}.jpg`, localHash: hash, localBytes: 10 },
      { localPath: "/etc/passwd", localHash: hash, localBytes: 10 },
      { localPath: images[0]!.localPath, localHash: null, localBytes: 10 },
      { localPath: "ZZ/ZZ.jpg", localHash: "ZZ", localBytes: 10 },
      { localPath: images[1]!.localPath, localHash: hash, localBytes: 10 },
    ];
    for (const row of rows) {
      const e = await failure(source().localFile(row));
      expect(e).toBeInstanceOf(ImageRecordError);
      expect(e.permanent).toBe(true);
    }
    expect([...server.requests.values()].reduce((a, b) => a + b, 0)).toBe(0);
    expect(filesIn(workerDir)).toEqual([]);
    expect(existsSync(join(workerDir, rows[0]!.localPath))).toBe(false);
  });

  it("ready() refuses an IMAGE_DIR that cannot be written (the worker says so at start)", async () => {
    const file = join(root, "a-file");
    writeFileSync(file, "x");
    const s = httpSource({ baseUrl: `${server.base}/images/`, imageDir: join(file, "images"), timeoutMs: 1000, maxRetries: 0, maxWaitMs: 10 });
    await expect(s.ready()).rejects.toThrow(/IMAGE_DIR is not writable/);
  });
});

describe("the folder source (IMAGE_DIR, the default)", () => {
  it("reads the shared folder; a missing file is ImageMissingError, permanent, named relative to IMAGE_DIR", async () => {
    const s = folderSource(apiDir);
    expect(await s.localFile(images[0]!)).toBe(join(apiDir, images[0]!.localPath));
    const e = await failure(s.localFile({ localPath: "00/none.jpg", localHash: null, localBytes: null }));
    expect(e).toBeInstanceOf(ImageMissingError);
    expect(e.permanent).toBe(true);
    expect(e.message).toBe("image file 00/none.jpg is missing from IMAGE_DIR (the next sync downloads it again)");
  });

  it("config picks the source: IMAGE_SOURCE_URL set is HTTP, unset is the folder", () => {
    expect(imageSourceFor(loadConfig({ IMAGE_DIR: apiDir })).kind).toBe("folder");
    expect(imageSourceFor(loadConfig({ IMAGE_DIR: apiDir, IMAGE_SOURCE_URL: "http://api:4000" })).kind).toBe("http");
  });
});
