import { constants, createReadStream } from "node:fs";
import { type FileHandle, open, realpath } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { extname, join, resolve } from "node:path";
import type { Logger } from "../log.js";
import { RateLimitedLog } from "../ops/rate-limited-log.js";

/** The URL prefix images are served under. */
export const IMAGES_PREFIX = "/images/";

const TYPES: Record<string, string> = { ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp" };

export type ImagePath = { kind: "file"; segments: string[] } | { kind: "bad-encoding" } | { kind: "not-found" };

/**
 * The file segments of a raw request path under /images/ (still percent-encoded, with its query).
 * Malformed encodings are `bad-encoding`; empty, dot and dot-dot segments, hidden names, encoded
 * slashes, backslashes, NUL and types other than images are `not-found`. Pure.
 */
export function parseImagePath(rawUrl: string): ImagePath {
  const raw = rawUrl.split(/[?#]/, 1)[0] ?? "";
  if (!raw.startsWith(IMAGES_PREFIX)) return { kind: "not-found" };
  const segments: string[] = [];
  for (const part of raw.slice(IMAGES_PREFIX.length).split("/")) {
    let segment: string;
    try {
      segment = decodeURIComponent(part);
    } catch {
      return { kind: "bad-encoding" };
    }
    if (segment === "" || segment.startsWith(".") || /[/\\\0]/.test(segment)) return { kind: "not-found" };
    segments.push(segment);
  }
  const last = segments.at(-1);
  if (!last || !TYPES[extname(last).toLowerCase()]) return { kind: "not-found" };
  return { kind: "file", segments };
}

/** A strong validator from size and modification time (files are named by content hash). */
function etagOf(size: number, mtimeMs: number): string {
  return `"${size.toString(16)}-${Math.floor(mtimeMs).toString(16)}"`;
}

/** RFC 9110 §13.1.2: weak comparison of If-None-Match against our ETag. */
function noneMatch(header: string, etag: string): boolean {
  if (header.trim() === "*") return true;
  return header.split(",").some((t) => t.trim().replace(/^W\//, "") === etag);
}

export type ByteRange = { start: number; end: number } | "unsatisfiable" | null;

/**
 * One `bytes=` range of a file of `size` bytes (RFC 9110 §14.2). null: no usable Range header
 * (absent, malformed, other units, several ranges), so the whole file is sent.
 */
export function parseRange(header: string | undefined, size: number): ByteRange {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return null;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? Number.POSITIVE_INFINITY : Number(m[2]);
  if (end < start) return null;
  if (start >= size) return "unsatisfiable";
  return { start, end: Math.min(end, size - 1) };
}

/** Error codes that mean "no such file here" (a 404): not there, a file where a folder should be, a link refused by O_NOFOLLOW, a name too long. */
const NOT_THERE: ReadonlySet<unknown> = new Set(["ENOENT", "ENOTDIR", "ELOOP", "ENAMETOOLONG"]);

/** True for a file-system error that says the file is not there; any other (EACCES, EMFILE, EIO) is the server's trouble. */
export function isNotThere(err: unknown): boolean {
  return NOT_THERE.has((err as { code?: unknown } | null)?.code);
}

/**
 * Serves the normalised image copies under /images/ from `imageDir`: GET and HEAD only (405 with
 * Allow), 400 for malformed percent-encoding, never a symbolic link (anywhere below the folder) nor
 * anything outside it, a single byte range (206, or 416 when out of bounds), and ETag /
 * Last-Modified validators (304).
 */
export function imageRoute(imageDir: string, log?: Logger): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const root = resolve(imageDir);
  let realRoot: string | null = null;
  const warnings = log ? new RateLimitedLog(log) : null;
  /**
   * A file that is not there (or a link where it should be) is a 404; any other failure (IMAGE_DIR
   * unreadable, no file descriptor left, a disk error) is the server's: 503, not kept by caches, logged.
   */
  const failed = (res: ServerResponse, err: unknown): true => {
    if (isNotThere(err)) return notFound(res);
    warnings?.warn("image-read-failed", { err, imageDir: root }, "a stored image could not be read: answering 503");
    res.writeHead(503, { "content-type": "text/plain", "cache-control": "no-store", "retry-after": "30" }).end("the image cannot be read now");
    return true;
  };
  return async (req, res) => {
    const rawUrl = req.url ?? "/";
    if (!rawUrl.startsWith(IMAGES_PREFIX)) return false;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return true;
    }
    const parsed = parseImagePath(rawUrl);
    if (parsed.kind === "bad-encoding") {
      res.writeHead(400, { "content-type": "text/plain" }).end("malformed percent-encoding in the path");
      return true;
    }
    if (parsed.kind === "not-found") return notFound(res);
    if (!realRoot) {
      try {
        realRoot = await realpath(root);
      } catch (err) {
        return failed(res, err);
      }
    }
    const file = join(realRoot, ...parsed.segments);
    // The real path equals the asked-for path only when no component is a symbolic link; O_NOFOLLOW
    // also refuses a link put in place between the two calls.
    let real: string;
    try {
      real = await realpath(file);
    } catch (err) {
      return failed(res, err);
    }
    if (real !== file) return notFound(res);
    let handle: FileHandle;
    try {
      // O_NONBLOCK: a FIFO named like an image must not hold a thread of the pool while it waits
      // for a writer; regular files read as usual.
      handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      return failed(res, err);
    }
    let sent = false;
    try {
      const info = await handle.stat();
      if (!info.isFile()) return notFound(res);
      send(req, res, handle, info.size, info.mtime, TYPES[extname(file).toLowerCase()]!);
      sent = true;
      return true;
    } finally {
      // send() owns the handle once it has it; every other way out closes it here.
      if (!sent) await handle.close().catch(() => undefined);
    }
  };
}

function notFound(res: ServerResponse): true {
  res.writeHead(404, { "content-type": "text/plain" }).end("not found");
  return true;
}

/** Answers from an open file; the handle is closed when the answer ends. */
function send(req: IncomingMessage, res: ServerResponse, handle: FileHandle, size: number, mtime: Date, type: string): void {
  const etag = etagOf(size, mtime.getTime());
  const lastModified = mtime.toUTCString();
  // Files are named by content hash: they never change.
  const cacheControl = "public, max-age=31536000, immutable";
  const headers: Record<string, string | number> = {
    "content-type": type,
    etag,
    "last-modified": lastModified,
    "accept-ranges": "bytes",
    "cache-control": cacheControl,
    "x-content-type-options": "nosniff",
  };
  const close = () => void handle.close().catch(() => undefined);
  const inm = req.headers["if-none-match"];
  const ims = req.headers["if-modified-since"];
  const unchanged = inm !== undefined ? noneMatch(inm, etag) : ims !== undefined && Math.floor(mtime.getTime() / 1000) <= Math.floor(Date.parse(ims) / 1000);
  if (unchanged) {
    close();
    res.writeHead(304, { etag, "last-modified": lastModified, "cache-control": cacheControl }).end();
    return;
  }
  // If-Range: a range only applies while the client's copy is current.
  const ifRange = req.headers["if-range"];
  const rangeApplies = ifRange === undefined || ifRange === etag || ifRange === lastModified;
  const range = rangeApplies ? parseRange(req.headers.range, size) : null;
  if (range === "unsatisfiable") {
    close();
    res.writeHead(416, { "content-range": `bytes */${size}`, "content-type": "text/plain" }).end();
    return;
  }
  const start = range?.start ?? 0;
  const end = range?.end ?? size - 1;
  const status = range ? 206 : 200;
  if (range) headers["content-range"] = `bytes ${start}-${end}/${size}`;
  headers["content-length"] = size === 0 ? 0 : end - start + 1;
  res.writeHead(status, headers);
  if (req.method === "HEAD" || size === 0) {
    close();
    res.end();
    return;
  }
  const stream = createReadStream("", { fd: handle, start, end, autoClose: true });
  stream.on("error", () => res.destroy());
  res.on("close", () => stream.destroy());
  stream.pipe(res);
}
