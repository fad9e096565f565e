import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import sharp from "sharp";
import type { Db } from "../../src/db.js";
import { localPathFor } from "../../src/sync/images.js";

/**
 * A stored image copy as the sync leaves it: a JPEG named by its sha256 under IMAGE_DIR, and the
 * artwork's main Image row pointing at it. The picture is painting-like (soft colour fields,
 * strokes and fine grain), so thumbnail sizes are close to a real collection's, not a flat
 * colour's.
 */
export async function storePaintingImage(db: Db, imageDir: string, artworkId: number, seed: number, edge = 1024): Promise<string> {
  const width = edge;
  const height = Math.round(edge * (0.7 + (seed % 5) * 0.12));
  const hue = (n: number) => (seed * n) % 256;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    <defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="rgb(${hue(53)},${hue(97)},${hue(29)})"/><stop offset="1" stop-color="rgb(${255 - hue(31)},${hue(71)},${255 - hue(13)})"/></linearGradient></defs>
    <rect width="100%" height="100%" fill="url(#g)"/>
    ${Array.from({ length: 40 }, (_, i) => `<ellipse cx="${(seed * 37 + i * 97) % width}" cy="${(seed * 17 + i * 53) % height}" rx="${20 + ((i * 13) % 90)}" ry="${10 + ((i * 7) % 60)}" fill="rgb(${(i * 41 + seed) % 256},${(i * 23) % 256},${(i * 67 + seed * 3) % 256})" fill-opacity="0.55"/>`).join("")}
  </svg>`;
  // Grain at a fifth of the size, enlarged: detail that survives into a thumbnail, as brushwork does.
  const grain = await sharp({ create: { width: Math.ceil(width / 5), height: Math.ceil(height / 5), channels: 3, background: "#808080", noise: { type: "gaussian", mean: 128, sigma: 40 } } })
    .png()
    .toBuffer();
  const noise = await sharp(grain).resize(width, height, { kernel: "cubic" }).png({ compressionLevel: 1 }).toBuffer();
  const data = await sharp(Buffer.from(svg))
    .composite([{ input: noise, blend: "soft-light" }])
    .jpeg({ quality: 85 })
    .toBuffer();
  const hash = createHash("sha256").update(data).digest("hex");
  const localPath = localPathFor(hash);
  const file = join(imageDir, localPath);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, data);
  await db.image.updateMany({
    where: { artworkId, isMain: true },
    data: { localPath, localHash: hash, localWidth: width, localHeight: height, localBytes: data.length, downloadedAt: new Date() },
  });
  return hash;
}
