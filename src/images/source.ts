import { createHash } from "node:crypto";
import { mkdir, open, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import { BACKOFF_MAX_MS, backoff, retryAfter } from "../sync/http.js";
import { sweepStaleTempFiles, syncFolder, tempPathFor } from "../store/file-writes.js";
import { checkImageDir, localPathFor } from "../sync/images.js";

/**
 * Where a describing process (the job worker, `describe --like`) gets the bytes of a stored image:
 * the folder the sync writes (IMAGE_DIR, shared with the API), or, for a worker that shares
 * nothing with the API but the database, the API's /images/ route (IMAGE_SOURCE_URL). Either way
 * the caller gets a local file: the HTTP source keeps each image it fetched, once its sha256 is the
 * stored one, in its own IMAGE_DIR under the same content-addressed name, so IMAGE_DIR becomes a
 * lazily filled copy of the API's and the engine and the quality checks read it as before.
 */

/** The columns of an Image row that name its stored copy. */
export interface StoredImage {
  /** "ab/abcdef....jpg", relative to IMAGE_DIR (and to the API's /images/). */
  localPath: string;
  /** sha256 (hex) of the stored JPEG. */
  localHash: string | null;
  localBytes: number | null;
}

/**
 * An image that could not be had. The message names the image by its name under /images/ and never
 * a local path or the source's address (a job's error is public); the log gets the rest.
 * `permanent`: trying again cannot help (the job fails at once); otherwise the job's normal retry
 * rules apply (JOB_MAX_ATTEMPTS, with backoff), so nothing is retried forever.
 */
export class ImageSourceError extends Error {
  override name = "ImageSourceError";
  constructor(
    readonly image: string,
    message: string,
    readonly permanent: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The shared folder has no such file (the sync removed it, or IMAGE_DIR is not the API's). */
export class ImageMissingError extends ImageSourceError {
  override name = "ImageMissingError";
  constructor(image: string) {
    super(image, `image file ${image} is missing from IMAGE_DIR (the next sync downloads it again)`, true);
  }
}

/** The stored row does not name its file by its hash: nothing can be fetched or checked for it. */
export class ImageRecordError extends ImageSourceError {
  override name = "ImageRecordError";
}

/** The image source answered 404. */
export class ImageNotFoundError extends ImageSourceError {
  override name = "ImageNotFoundError";
  constructor(image: string) {
    super(image, `the image source (IMAGE_SOURCE_URL) has no ${image} (HTTP 404)`, false);
  }
}

/** The bytes fetched are not the stored image (corrupted or cut short on the way, or another file). */
export class ImageHashMismatchError extends ImageSourceError {
  override name = "ImageHashMismatchError";
  constructor(
    image: string,
    readonly expected: string,
    readonly actual: string,
    readonly bytes: number,
  ) {
    super(image, `${image} from the image source has sha256 ${actual.slice(0, 12)}… (${bytes} bytes), not the stored ${expected.slice(0, 12)}…`, false);
  }
}

/** The answer is larger than the stored image can be. */
export class ImageTooLargeError extends ImageSourceError {
  override name = "ImageTooLargeError";
  constructor(
    image: string,
    readonly maxBytes: number,
  ) {
    super(image, `${image} from the image source is larger than ${maxBytes} bytes`, false);
  }
}

/** Network errors, timeouts, 5xx (after the retries) and other refusals of the image source. */
export class ImageFetchError extends ImageSourceError {
  override name = "ImageFetchError";
}

/**
 * When a row does not record its size: the raw RGB pixels of the largest IMAGE_EDGE (4096²). A
 * baseline JPEG at quality 88 (src/sync/images.ts) is far smaller.
 */
export const MAX_STORED_IMAGE_BYTES = 4096 * 4096 * 3;

export interface ImageSource {
  readonly kind: "folder" | "http";
  /** Checks at start what every read needs (a writable IMAGE_DIR for the HTTP source). */
  ready(): Promise<void>;
  /** A local file with the stored image's bytes; throws ImageSourceError, or the signal's reason. */
  localFile(image: StoredImage, signal?: AbortSignal): Promise<string>;
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null))?.isFile() ?? false;
}

/** The shared folder (today's behaviour, and the default): the file the sync wrote. */
export function folderSource(imageDir: string): ImageSource {
  return {
    kind: "folder",
    ready: async () => undefined,
    async localFile(image) {
      const file = join(imageDir, image.localPath);
      if (!(await isFile(file))) throw new ImageMissingError(image.localPath);
      return file;
    },
  };
}

export interface HttpSourceOptions {
  /** The API's /images/ base (normalised by config: ends with /images/). */
  baseUrl: string;
  /** Where fetched images are kept, under their stored names. */
  imageDir: string;
  timeoutMs: number;
  maxRetries: number;
  /** The cap on a Retry-After from the API (RETRY_AFTER_MAX_S); backoff has its own (BACKOFF_MAX_MS). */
  maxWaitMs: number;
  log?: Logger;
  /** First backoff delay, doubling with each retry up to a minute (HTTP_RETRY_BASE_MS; default 1 s). */
  backoffBaseMs?: number;
  random?: () => number;
}

/** A failure worth another try: a network error, a timeout, a 429 or 5xx, a body cut short. */
class Transient extends Error {
  constructor(
    message: string,
    readonly retryAfterS?: number,
  ) {
    super(message);
  }
}

/**
 * The API's /images/ route. Each fetch has HTTP_TIMEOUT_MS (the body included); network errors,
 * timeouts, 429 and 5xx are tried again HTTP_MAX_RETRIES times with jittered exponential backoff
 * (Retry-After honoured up to RETRY_AFTER_MAX_S). The body is streamed to a temporary file and
 * hashed on the way, stopped as soon as it passes the stored size, and renamed into place only
 * when its sha256 is the stored one: a file under its name in IMAGE_DIR is always whole and right.
 */
export function httpSource(o: HttpSourceOptions): ImageSource {
  const baseMs = o.backoffBaseMs ?? 1_000;
  const random = o.random ?? Math.random;

  async function fetchOnce(name: string, url: string, image: StoredImage & { localHash: string }, file: string, signal?: AbortSignal): Promise<void> {
    const timeout = AbortSignal.timeout(o.timeoutMs);
    const both = signal ? AbortSignal.any([signal, timeout]) : timeout;
    const maxBytes = image.localBytes ?? MAX_STORED_IMAGE_BYTES;
    let res: Response;
    try {
      res = await fetch(url, { signal: both, headers: { accept: "image/jpeg", "accept-encoding": "identity", "user-agent": "artdesc-worker" } });
    } catch (err) {
      throw new Transient(fetchProblem(err), undefined);
    }
    if (res.status === 404 || res.status === 410) {
      await res.body?.cancel().catch(() => undefined);
      throw new ImageNotFoundError(name);
    }
    if (res.status === 429 || res.status >= 500) {
      await res.body?.cancel().catch(() => undefined);
      throw new Transient(`HTTP ${res.status}`, retryAfter(res.headers.get("retry-after")));
    }
    if (res.status !== 200 || !res.body) {
      await res.body?.cancel().catch(() => undefined);
      throw new ImageFetchError(name, `the image source refused ${name} (HTTP ${res.status})`, false);
    }
    const declared = Number(res.headers.get("content-length"));
    if (Number.isFinite(declared) && declared > maxBytes) {
      await res.body.cancel().catch(() => undefined);
      throw new ImageTooLargeError(name, maxBytes);
    }
    // Named as the sync names its temporary files, so that sweepStaleTempFiles removes one a killed worker left.
    const tmp = tempPathFor(file);
    await mkdir(dirname(file), { recursive: true }).catch((err: unknown) => {
      throw cacheProblem(name, err);
    });
    const out = await open(tmp, "wx").catch((err: unknown) => {
      throw cacheProblem(name, err);
    });
    let done = false;
    try {
      const hash = createHash("sha256");
      let size = 0;
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          size += chunk.byteLength;
          if (size > maxBytes) throw new ImageTooLargeError(name, maxBytes);
          hash.update(chunk);
          await out.write(chunk).catch((err: unknown) => {
            throw cacheProblem(name, err);
          });
        }
      } catch (err) {
        if (err instanceof ImageSourceError) {
          await res.body.cancel().catch(() => undefined);
          throw err;
        }
        const timedOut = err instanceof Error && err.name === "TimeoutError";
        throw new Transient(timedOut ? `timed out (HTTP_TIMEOUT_MS) ${size} bytes into the answer` : `the answer was cut short after ${size} bytes (${fetchProblem(err)})`);
      }
      const actual = hash.digest("hex");
      if (actual !== image.localHash) throw new ImageHashMismatchError(name, image.localHash, actual, size);
      // On disk before the rename, as the sync's copies are (storeImage): after a power loss the name
      // never stands for data the file system had not written yet.
      await out.sync().catch((err: unknown) => {
        throw cacheProblem(name, err);
      });
      await out.close();
      await rename(tmp, file).catch((err: unknown) => {
        throw cacheProblem(name, err);
      });
      await syncFolder(dirname(file));
      done = true;
    } finally {
      if (!done) {
        await out.close().catch(() => undefined);
        await rm(tmp, { force: true }).catch(() => undefined);
      }
    }
  }

  return {
    kind: "http",
    // The fetched images are kept in IMAGE_DIR: a worker that cannot write there says so at start.
    // A worker killed mid-fetch left a temporary file; no sync or API runs beside a remote worker
    // to sweep them, so it does, for files older than an hour (another worker's are newer).
    async ready() {
      await checkImageDir({ IMAGE_DIR: o.imageDir });
      const removed = await sweepStaleTempFiles(o.imageDir);
      if (removed) o.log?.info({ removed, dir: o.imageDir }, "removed temporary image files left by a worker that stopped mid-fetch");
    },
    async localFile(image, signal) {
      const name = image.localPath;
      const hash = image.localHash;
      // The name is derived from the hash, never taken as given: a row cannot make us write outside IMAGE_DIR.
      if (!hash || !/^[0-9a-f]{64}$/.test(hash) || localPathFor(hash) !== image.localPath) {
        throw new ImageRecordError(name, `the stored image ${name} is not named by its sha256; sync it again`, true);
      }
      const file = join(o.imageDir, localPathFor(hash));
      if (await isFile(file)) return file;
      const url = new URL(localPathFor(hash), o.baseUrl).href;
      let last: Transient | null = null;
      for (let attempt = 0; attempt <= o.maxRetries; attempt++) {
        signal?.throwIfAborted();
        try {
          await fetchOnce(name, url, { ...image, localHash: hash }, file, signal);
          o.log?.debug({ image: name, url, attempt }, "image fetched from the image source");
          return file;
        } catch (err) {
          if (signal?.aborted) throw signal.reason;
          if (!(err instanceof Transient)) {
            o.log?.warn({ image: name, url, err }, "image fetch failed");
            throw err;
          }
          last = err;
          o.log?.warn({ image: name, url, attempt, problem: err.message }, "image fetch failed; trying again");
          if (attempt === o.maxRetries) break;
          const waitMs = err.retryAfterS !== undefined ? Math.min(err.retryAfterS * 1000, o.maxWaitMs) : backoff(attempt, baseMs, BACKOFF_MAX_MS, random);
          await sleep(waitMs, signal);
        }
      }
      throw new ImageFetchError(name, `cannot fetch ${name} from the image source (IMAGE_SOURCE_URL): ${last?.message ?? "?"} after ${o.maxRetries + 1} attempt(s)`, false);
    },
  };
}

/** The source the configuration names: the API over HTTP when IMAGE_SOURCE_URL is set, else IMAGE_DIR. */
export function imageSourceFor(
  config: Pick<Config, "IMAGE_DIR" | "IMAGE_SOURCE_URL" | "HTTP_TIMEOUT_MS" | "HTTP_MAX_RETRIES" | "RETRY_AFTER_MAX_S" | "HTTP_RETRY_BASE_MS">,
  log?: Logger,
): ImageSource {
  if (!config.IMAGE_SOURCE_URL) return folderSource(config.IMAGE_DIR);
  return httpSource({
    baseUrl: config.IMAGE_SOURCE_URL,
    imageDir: config.IMAGE_DIR,
    timeoutMs: config.HTTP_TIMEOUT_MS,
    maxRetries: config.HTTP_MAX_RETRIES,
    maxWaitMs: config.RETRY_AFTER_MAX_S * 1000,
    backoffBaseMs: config.HTTP_RETRY_BASE_MS,
    ...(log ? { log } : {}),
  });
}

/** What went wrong with a fetch, without the URL (undici puts the reason in `cause`). */
function fetchProblem(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err.name === "TimeoutError") return "timed out (HTTP_TIMEOUT_MS)";
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return `network error ${cause.code}`;
  if (cause?.message) return cause.message;
  return err.message;
}

/** A write into IMAGE_DIR failed: not the image's fault, but the job cannot go on (retried later). */
function cacheProblem(name: string, err: unknown): ImageFetchError {
  const code = (err as NodeJS.ErrnoException | null)?.code ?? "error";
  return new ImageFetchError(name, `cannot keep ${name} in IMAGE_DIR (${code})`, false, { cause: err });
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
