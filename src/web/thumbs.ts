import { constants } from "node:fs";
import { mkdir, open, realpath, rename, rm, writeFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join, resolve, sep } from "node:path";
import sharp from "sharp";
import { isNotThere } from "../api/images.js";
import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import { RateLimitedLog } from "../ops/rate-limited-log.js";
import { sweepStaleTempFiles, tempPathFor } from "../store/file-writes.js";
import { localPathFor } from "../sync/images.js";
import { THUMB_WIDTHS, type ThumbWidth } from "./view-models.js";

/**
 * WebP thumbnails of the stored image copies at a few fixed widths, made on first request and kept
 * on disk. They are named by the image's content hash (Image.localHash, which also names the copy
 * under IMAGE_DIR), so a URL's bytes never change: immutable caching and an ETag that needs no file.
 */

/** Lower than a photo needs: these are small previews, and a page of 60 must stay under 600 KB. */
export const THUMB_QUALITY = 60;
/** Tallest a thumbnail may be, as a multiple of its width (a scroll painting stays a preview). */
const MAX_ASPECT = 2;
/** Largest stored copy read to make a thumbnail (IMAGE_EDGE is at most 4096 px, JPEG). */
const MAX_SOURCE_BYTES = 64 * 1024 * 1024;
/** Thumbnails made at once; the rest wait (sharp's work runs on libuv's small thread pool). */
const MAX_CONCURRENT = 2;
/**
 * Thumbnails that may wait for a slot; more get 503. A collection page shows 60 works, so one
 * browser's first look at a page of thumbnails never made fits, with a few to spare. A waiting one
 * holds no image (the source is read once it has its slot), only its request. A thumbnail takes
 * about 0.05 s from a 1024 px copy (IMAGE_EDGE's default) and 0.4 s from a 4096 px one, two at a
 * time, so the last of 64 waits 2 to 13 s: a longer queue is more than the server can make in a
 * page's patience, and the client should come back later.
 */
const MAX_WAITING = 64;
/** Retry-After of the 503: a full queue of default-size copies has drained by then, one of the largest copies partly. */
const BUSY_RETRY_AFTER_S = 5;

export interface ThumbnailLimits {
  concurrent: number;
  waiting: number;
}

/** Too many thumbnails are being made or waiting: answered 503 with Retry-After. */
export class ThumbnailsBusyError extends Error {
  constructor(readonly retryAfterS: number) {
    super(`too many thumbnails are being made; try again in ${retryAfterS} s`);
    this.name = "ThumbnailsBusyError";
  }
}

export const thumbDir = (config: Pick<Config, "THUMB_DIR" | "IMAGE_DIR">) => resolve(config.THUMB_DIR ?? join(config.IMAGE_DIR, ".thumbs"));

export type ThumbRequest = { kind: "thumb"; hash: string; width: ThumbWidth } | { kind: "bad-encoding" } | { kind: "not-found" };

/** Pure: /thumbs/<64 hex>/<width>.webp, nothing else. */
export function parseThumbPath(rawPath: string): ThumbRequest {
  const m = /^\/thumbs\/([0-9a-f]{64})\/(\d+)\.webp$/.exec(rawPath);
  if (m) {
    const width = Number(m[2]);
    return (THUMB_WIDTHS as readonly number[]).includes(width) ? { kind: "thumb", hash: m[1]!, width: width as ThumbWidth } : { kind: "not-found" };
  }
  try {
    decodeURIComponent(rawPath);
  } catch {
    return { kind: "bad-encoding" };
  }
  return { kind: "not-found" };
}

/** How long a thumbnail that could not be made is answered 404 without trying again, and how many such are remembered. */
const FAILED_RETRY_MS = 10 * 60_000;
const MAX_FAILED_REMEMBERED = 1_000;

const etagOf = (hash: string, width: number) => `"${hash.slice(0, 32)}-${width}-q${THUMB_QUALITY}"`;
const CACHE_CONTROL = "public, max-age=31536000, immutable";
const PRIVATE_CACHE_CONTROL = "private, max-age=31536000, immutable";

export class Thumbnails {
  private readonly dir: string;
  private readonly imageRoot: string;
  private readonly inFlight = new Map<string, Promise<Buffer | null>>();
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly warnings: RateLimitedLog;
  /** Thumbnails sharp could not make (a damaged stored copy, named by its content hash), until when they are not tried again. */
  private readonly failed = new Map<string, number>();

  constructor(
    config: Pick<Config, "THUMB_DIR" | "IMAGE_DIR">,
    private readonly log: Logger,
    private readonly limits: ThumbnailLimits = { concurrent: MAX_CONCURRENT, waiting: MAX_WAITING },
  ) {
    this.warnings = new RateLimitedLog(log);
    this.dir = thumbDir(config);
    this.imageRoot = resolve(config.IMAGE_DIR);
    // Temporary files of a process killed mid-write: removed in the background, never in a request's way.
    void sweepStaleTempFiles(this.dir).then((files) => {
      if (files) log.info({ files }, "removed temporary thumbnail files left by an interrupted write");
    });
  }

  /** Thumbnails waiting for a slot now. */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * The thumbnail's bytes (made now if needed), or null when there is no stored image with this
   * hash. Throws ThumbnailsBusyError when it would have to be made and the queue is full.
   */
  async get(hash: string, width: ThumbWidth): Promise<Buffer | null> {
    const file = join(this.dir, hash.slice(0, 2), `${hash}-${width}.webp`);
    // A THUMB_DIR that cannot be read now: the thumbnail is made from the stored image instead.
    const cached = await readPlainFile(file, this.dir).catch((err: unknown) => {
      this.warnings.warn("thumbnail-cache-read-failed", { err, dir: this.dir }, "a stored thumbnail could not be read (THUMB_DIR): making it again");
      return null;
    });
    if (cached) return cached;
    let pending = this.inFlight.get(file);
    if (!pending) {
      pending = this.make(hash, width, file).finally(() => this.inFlight.delete(file));
      this.inFlight.set(file, pending);
    }
    return pending;
  }

  private async make(hash: string, width: ThumbWidth, file: string): Promise<Buffer | null> {
    const sourceFile = join(this.imageRoot, localPathFor(hash));
    const unreadable = (err: unknown): never => {
      this.warnings.warn("thumbnail-source-read-failed", { err, imageDir: this.imageRoot }, "a stored image could not be read for its thumbnail: answering 503");
      throw new ThumbnailSourceError("the stored image cannot be read now");
    };
    // An unknown hash is a 404 that takes no place in the queue.
    if (!(await plainPath(sourceFile, this.imageRoot).catch(unreadable))) return null;
    // One that failed lately too: decoding it again would fail the same way, and take a slot.
    const failedUntil = this.failed.get(file);
    if (failedUntil !== undefined && Date.now() < failedUntil) return null;
    await this.slot();
    try {
      // Read only now: a request waiting for its slot holds no image.
      const source = await readPlainFile(sourceFile, this.imageRoot).catch(unreadable);
      if (!source) return null;
      let body: Buffer;
      try {
        body = await sharp(source, { limitInputPixels: 50_000_000 })
          .rotate()
          .resize({ width, height: width * MAX_ASPECT, fit: "inside", withoutEnlargement: true })
          .webp({ quality: THUMB_QUALITY, effort: 4 })
          .toBuffer();
      } catch (err) {
        // A damaged stored copy: no thumbnail (404); the next full sync replaces the copy.
        this.warnings.warn("thumbnail-failed", { err, hash, width }, "thumbnail could not be made from the stored image");
        if (this.failed.size >= MAX_FAILED_REMEMBERED) this.failed.delete(this.failed.keys().next().value!);
        this.failed.set(file, Date.now() + FAILED_RETRY_MS);
        return null;
      }
      const tmp = tempPathFor(file);
      try {
        await mkdir(join(this.dir, hash.slice(0, 2)), { recursive: true });
        await writeFile(tmp, body);
        await rename(tmp, file);
      } catch (err) {
        // A read-only or full disk: serve the thumbnail anyway, made again next time.
        this.warnings.warn("thumbnail-write-failed", { err, dir: this.dir }, "a thumbnail could not be stored (THUMB_DIR read-only or full?): it is made again on each request");
        await rm(tmp, { force: true }).catch(() => undefined);
      }
      return body;
    } finally {
      this.release();
    }
  }

  private async slot(): Promise<void> {
    if (this.running < this.limits.concurrent) {
      this.running++;
      return;
    }
    if (this.waiting.length >= this.limits.waiting) {
      this.warnings.warn("thumbnail-queue-full", { running: this.running, waiting: this.waiting.length }, "thumbnail queue full: answering 503");
      throw new ThumbnailsBusyError(BUSY_RETRY_AFTER_S);
    }
    await new Promise<void>((r) => this.waiting.push(r));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
  }
}

/** A stored image that could not be read now (IMAGE_DIR unreadable, no file descriptor left, a disk error): the server's failure, not a 404. */
export class ThumbnailSourceError extends Error {
  override name = "ThumbnailSourceError";
}

/** Null for an error that says the file is not there (a 404); any other error is thrown on. */
const nullIfNotThere = (err: unknown): null => {
  if (isNotThere(err)) return null;
  throw err;
};

/** The real path of `file` when it exists under `root` and no symbolic link leads to it; else null. Throws what is not "not there". */
async function plainPath(file: string, root: string): Promise<string | null> {
  const real = await realpath(file).catch(nullIfNotThere);
  const realRoot = await realpath(root).catch(nullIfNotThere);
  if (!real || !realRoot || real !== join(realRoot, file.slice(root.length)) || !real.startsWith(realRoot + sep)) return null;
  return real;
}

/**
 * A regular file's bytes, or null: never through a symbolic link (the real path must be the path
 * asked for, under `root`), never a FIFO or device, at most MAX_SOURCE_BYTES.
 */
async function readPlainFile(file: string, root: string): Promise<Buffer | null> {
  const real = await plainPath(file, root);
  if (!real) return null;
  const handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(nullIfNotThere);
  if (!handle) return null;
  try {
    const info = await handle.stat();
    if (!info.isFile() || info.size > MAX_SOURCE_BYTES) return null;
    return await handle.readFile();
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/**
 * Answers a /thumbs/ request: GET and HEAD (405 otherwise), 400 for malformed encoding, 304 on a
 * matching ETag, 503 with Retry-After when the thumbnail queue is full.
 */
export async function serveThumb(req: IncomingMessage, res: ServerResponse, thumbs: Thumbnails, o: { signedInOnly?: boolean } = {}): Promise<void> {
  const rawPath = (req.url ?? "/").split(/[?#]/, 1)[0]!;
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD" }).end();
    return;
  }
  const parsed = parseThumbPath(rawPath);
  if (parsed.kind === "bad-encoding") {
    res.writeHead(400, { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff" }).end("malformed percent-encoding in the path");
    return;
  }
  const notFound = () => res.writeHead(404, { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff" }).end("not found");
  if (parsed.kind === "not-found") return void notFound();
  const etag = etagOf(parsed.hash, parsed.width);
  // Behind sign-in only the browser may keep it: a shared cache (a proxy, a CDN) would hand it to anyone with the URL.
  const headers = { etag, "cache-control": o.signedInOnly ? PRIVATE_CACHE_CONTROL : CACHE_CONTROL, "x-content-type-options": "nosniff" };
  const inm = req.headers["if-none-match"];
  if (inm && inm.split(",").some((t) => t.trim().replace(/^W\//, "") === etag)) {
    res.writeHead(304, headers).end();
    return;
  }
  let body: Buffer | null;
  try {
    body = await thumbs.get(parsed.hash, parsed.width);
  } catch (err) {
    if (err instanceof ThumbnailSourceError) {
      // Logged by Thumbnails; not kept by caches, so the thumbnail comes once the disk answers again.
      res.writeHead(503, { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff", "cache-control": "no-store", "retry-after": "30" }).end("the stored image cannot be read now");
      return;
    }
    if (!(err instanceof ThumbnailsBusyError)) throw err;
    res
      .writeHead(503, { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff", "cache-control": "no-store", "retry-after": String(err.retryAfterS) })
      .end("busy making thumbnails; try again later");
    return;
  }
  if (!body) return void notFound();
  // "*" matches only a thumbnail that exists (RFC 9110, 13.1.2).
  if (inm?.trim() === "*") {
    res.writeHead(304, headers).end();
    return;
  }
  res.writeHead(200, { ...headers, "content-type": "image/webp", "content-length": body.length });
  res.end(req.method === "HEAD" ? undefined : body);
}
