import { createHash } from "node:crypto";
import { lstat, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import sharp, { type Metadata, type OutputInfo } from "sharp";
import type { Config } from "../config.js";
import { tempPathFor, syncFolder } from "../store/file-writes.js";
import { makeDirectory } from "../store/migrate.js";
import { SyncConfigError } from "./http.js";

/**
 * Image work gets a bounded share of the machine, so a sync (or a description) never starves the
 * API in the same process: libvips uses one thread per image (its default is one per core), and
 * at most IMAGE_SLOTS images are decoded at once per process (cores - 1, at least 1). Each image
 * also holds one of libuv's four pool threads, which the API's file reads need too.
 */
sharp.concurrency(1);
export const IMAGE_SLOTS = Math.max(1, availableParallelism() - 1);

/** A counting semaphore, first come first served. */
export class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(readonly size: number) {
    this.#free = size;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await fn();
    } finally {
      // The slot passes straight to the next waiter, or back to the pool.
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }

  get waiting(): number {
    return this.#waiting.length;
  }
}

const imageSlots = new Slots(IMAGE_SLOTS);

/** Inputs above this many pixels are refused before decoding (decompression bombs). */
export const MAX_INPUT_PIXELS = 100_000_000;
/** Longest side over shortest side: a 1×60000 strip cannot be resized into a usable picture. */
export const MAX_ASPECT_RATIO = 100;

export interface NormalizedImage {
  data: Buffer;
  width: number;
  height: number;
  /** sha256 of the JPEG. */
  hash: string;
}

export type ImageProblem = "empty" | "not-an-image" | "corrupt" | "too-many-pixels" | "aspect-ratio";

/** A file that cannot become a usable image: retrying will not help until Commons changes it. */
export class ImageRejectedError extends Error {
  override name = "ImageRejectedError";
  constructor(
    readonly problem: ImageProblem,
    message: string,
  ) {
    super(message);
  }
}

export interface ImageLimits {
  maxPixels?: number;
  maxAspectRatio?: number;
}

/**
 * What is wrong with an image of these dimensions, or null when nothing is (pure: from the header,
 * before any pixel is decoded). A tiny image is fine (it is never enlarged); a strip so thin that
 * resizing leaves less than a pixel across is not.
 */
export function dimensionProblem(width: number, height: number, limits: ImageLimits = {}): ImageRejectedError | null {
  const maxPixels = limits.maxPixels ?? MAX_INPUT_PIXELS;
  const maxRatio = limits.maxAspectRatio ?? MAX_ASPECT_RATIO;
  const size = `image is ${width}×${height} px`;
  if (!(width > 0 && height > 0)) return new ImageRejectedError("corrupt", `${size}: the header gives no size`);
  if (width * height > maxPixels) return new ImageRejectedError("too-many-pixels", `${size}: over the pixel limit of ${maxPixels} (decompression bomb?)`);
  if (Math.max(width, height) / Math.min(width, height) > maxRatio) {
    return new ImageRejectedError("aspect-ratio", `${size}: aspect ratio too extreme (max 1:${maxRatio})`);
  }
  return null;
}

/**
 * Reads the header of an image and refuses, with an ImageRejectedError that says why, an empty file,
 * something that is not an image, and dimensions no model can use (see dimensionProblem).
 */
export async function inspectImage(input: Buffer, limits: ImageLimits = {}): Promise<Metadata> {
  if (input.length === 0) throw new ImageRejectedError("empty", "the file is empty (0 bytes)");
  let meta: Metadata;
  try {
    meta = await sharp(input, { limitInputPixels: false }).metadata();
  } catch {
    throw new ImageRejectedError("not-an-image", `not an image in a supported format (${input.length} bytes)`);
  }
  const problem = dimensionProblem(meta.width ?? 0, meta.height ?? 0, limits);
  if (problem) throw problem;
  return meta;
}

/** A header that read fine and pixels that did not: the data is cut short or damaged. */
function corrupt(meta: Metadata, err: unknown): ImageRejectedError {
  const e = new ImageRejectedError("corrupt", `${meta.format ?? "image"} data is truncated or corrupt (${meta.width}×${meta.height} px header)`);
  e.cause = err;
  return e;
}

/**
 * The stored form of every image: EXIF-rotated, sRGB, alpha flattened onto white, longest edge at
 * most `edge`, baseline JPEG without metadata.
 */
export function normalizeImage(input: Buffer, edge: number, limitInputPixels = MAX_INPUT_PIXELS): Promise<NormalizedImage> {
  return imageSlots.run(() => normalizeNow(input, edge, limitInputPixels));
}

async function normalizeNow(input: Buffer, edge: number, limitInputPixels: number): Promise<NormalizedImage> {
  const meta = await inspectImage(input, { maxPixels: limitInputPixels });
  let out: { data: Buffer; info: OutputInfo };
  try {
    out = await sharp(input, { limitInputPixels, failOn: "error" })
      .rotate()
      .toColourspace("srgb")
      .flatten({ background: "#ffffff" })
      .resize({ width: edge, height: edge, fit: "inside", withoutEnlargement: true })
      .jpeg({ quality: 88, mozjpeg: false })
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw corrupt(meta, err);
  }
  return { data: out.data, width: out.info.width, height: out.info.height, hash: createHash("sha256").update(out.data).digest("hex") };
}

/**
 * Reads an image file for the describe engine: EXIF-rotated, sRGB, no alpha, longest edge at most
 * `maxEdge`, as raw RGB pixels. Refuses what inspectImage refuses, and pixels that do not decode.
 */
export function decodeForModel(input: Buffer, maxEdge: number): Promise<{ data: Buffer; width: number; height: number; channels: number }> {
  return imageSlots.run(() => decodeNow(input, maxEdge));
}

async function decodeNow(input: Buffer, maxEdge: number): Promise<{ data: Buffer; width: number; height: number; channels: number }> {
  const meta = await inspectImage(input);
  try {
    const { data, info } = await sharp(input, { limitInputPixels: MAX_INPUT_PIXELS, failOn: "error" })
      .rotate()
      .resize({ width: maxEdge, height: maxEdge, fit: "inside", withoutEnlargement: true })
      .removeAlpha()
      .toColourspace("srgb")
      .raw()
      .toBuffer({ resolveWithObject: true });
    return { data, width: info.width, height: info.height, channels: info.channels };
  } catch (err) {
    throw corrupt(meta, err);
  }
}

/**
 * IMAGE_DIR cannot be written (permissions, a read-only file system, a full disk, a file where the
 * folder should be): no image of the run can be stored, so the run stops. The message names the
 * variable and the error code, never the path (it is stored with the run); the log has the path.
 */
export class ImageDirError extends SyncConfigError {
  override name = "ImageDirError";
  constructor(
    readonly code: string,
    readonly path: string,
    cause?: unknown,
  ) {
    super(`IMAGE_DIR is not writable (${code}${SETUP_CODES[code] ? `: ${SETUP_CODES[code]}` : ""}); fix its permissions or free space and run again`);
    this.cause = cause;
  }
}

/** File-system errors that hit every write under IMAGE_DIR alike, not one image. */
const SETUP_CODES: Record<string, string> = {
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "read-only file system",
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  ENOTDIR: "a file stands where a folder should be",
  EEXIST: "a file stands where the folder should be",
};

/** Turns an environment failure under IMAGE_DIR into ImageDirError; anything else is returned as is. */
function classifyFsError(err: unknown, path: string): unknown {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code && code in SETUP_CODES ? new ImageDirError(code, path, err) : err;
}

/**
 * Checks at start that IMAGE_DIR exists (or can be made) and takes a file: throws ImageDirError,
 * before any work starts, when it cannot. `artdesc sync`, `start` and `daemon` call it, and so does
 * every sync run.
 */
export async function checkImageDir(config: Pick<Config, "IMAGE_DIR">): Promise<void> {
  const dir = config.IMAGE_DIR;
  const probe = join(dir, `.write-check.${process.pid}.${Math.random().toString(36).slice(2)}`);
  try {
    // Not mkdir({ recursive: true }): on Node 20 it never returns for a path under /proc.
    makeDirectory(dir);
    await writeFile(probe, "ok");
  } catch (err) {
    const classified = classifyFsError(err, dir);
    throw classified instanceof ImageDirError ? classified : new ImageDirError((err as NodeJS.ErrnoException).code ?? "unknown", dir, err);
  } finally {
    await rm(probe, { force: true }).catch(() => undefined);
  }
}

/** "ab/abcdef....jpg": two-level layout by content hash, relative to IMAGE_DIR. */
export function localPathFor(hash: string): string {
  return `${hash.slice(0, 2)}/${hash}.jpg`;
}

/**
 * Writes the file once (same content, same name); a temporary name and a rename keep it whole.
 * A failure that concerns IMAGE_DIR as a whole is an ImageDirError.
 */
export async function storeImage(imageDir: string, image: NormalizedImage): Promise<string> {
  const rel = localPathFor(image.hash);
  const file = join(imageDir, rel);
  // The same name is the same content (it is its hash), unless the copy was damaged in place since:
  // a file of the right size is read back and compared before it is kept.
  // lstat, as the sync's check of stored copies: a symbolic link is never taken for the copy.
  const existing = await lstat(file).catch(() => null);
  if (existing?.isFile() && existing.size === image.data.length && (await readFile(file).catch(() => null))?.equals(image.data)) return rel;
  const tmp = tempPathFor(file);
  try {
    await mkdir(dirname(file), { recursive: true });
    // On disk before the rename: after a power loss the name never stands for a file the
    // file system had not written yet (one of the right size full of zeros, on XFS).
    const handle = await open(tmp, "w");
    try {
      await handle.writeFile(image.data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
    await syncFolder(dirname(file));
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw classifyFsError(err, file);
  }
  return rel;
}

