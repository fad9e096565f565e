import { createHash } from "node:crypto";
import { mkdir, rename, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import sharp, { type OutputInfo } from "sharp";

/** Inputs above this many pixels are refused before decoding (decompression bombs). */
export const MAX_INPUT_PIXELS = 100_000_000;

export interface NormalizedImage {
  data: Buffer;
  width: number;
  height: number;
  /** sha256 of the JPEG. */
  hash: string;
}

/** A file that cannot become a usable image: retrying will not help until Commons changes it. */
export class ImageRejectedError extends Error {
  override name = "ImageRejectedError";
}

/**
 * The stored form of every image: EXIF-rotated, sRGB, alpha flattened onto white, longest edge at
 * most `edge`, baseline JPEG without metadata.
 */
export async function normalizeImage(input: Buffer, edge: number, limitInputPixels = MAX_INPUT_PIXELS): Promise<NormalizedImage> {
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
    throw new ImageRejectedError(`cannot normalise: ${(err as Error).message}`);
  }
  return { data: out.data, width: out.info.width, height: out.info.height, hash: createHash("sha256").update(out.data).digest("hex") };
}

/** "ab/abcdef....jpg": two-level layout by content hash, relative to IMAGE_DIR. */
export function localPathFor(hash: string): string {
  return `${hash.slice(0, 2)}/${hash}.jpg`;
}

/** Writes the file once (same content, same name); a temporary name and a rename keep it whole. */
export async function storeImage(imageDir: string, image: NormalizedImage): Promise<string> {
  const rel = localPathFor(image.hash);
  const file = join(imageDir, rel);
  const existing = await stat(file).catch(() => null);
  if (existing?.size === image.data.length) return rel;
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(tmp, image.data);
  await rename(tmp, file);
  return rel;
}
