/**
 * The large local Wikidata + Commons world the sync benchmarks run against: `works` paintings by
 * Goya, each with its own 1280 x 960 JPEG (as Commons serves thumbnails for IMAGE_EDGE=1024).
 * The generated images are cached under the system temp folder, so later runs start quickly.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { GOYA } from "../test/support/wikidata-world/goya.js";
import { startWikidataWorld, type WikidataWorld } from "../test/support/wikidata-world/index.js";
import { WorldModel } from "../test/support/wikidata-world/model.js";

export const BENCH_IMAGE_WIDTH = 1280;
export const BENCH_IMAGE_HEIGHT = 960;

/** A painting-like texture: blurred noise in a few base tints, plus a block that makes each file distinct. */
export async function benchImages(n: number): Promise<Buffer[]> {
  const [WIDTH, HEIGHT] = [BENCH_IMAGE_WIDTH, BENCH_IMAGE_HEIGHT];
  const cache = join(tmpdir(), "artdesc-bench-images-v1");
  mkdirSync(cache, { recursive: true });
  const bases: Buffer[] = [];
  for (let b = 0; b < 8; b++) {
    bases.push(
      await sharp({ create: { width: WIDTH, height: HEIGHT, channels: 3, background: "#000", noise: { type: "gaussian", mean: 60 + b * 20, sigma: 40 } } })
        .blur(2)
        .raw()
        .toBuffer(),
    );
  }
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const file = join(cache, `${i}.jpg`);
    try {
      out.push(readFileSync(file));
      continue;
    } catch {
      // not cached yet
    }
    const block = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: i % 256, g: (i >> 8) % 256, b: 200 } } }).png().toBuffer();
    const jpeg = await sharp(bases[i % bases.length]!, { raw: { width: WIDTH, height: HEIGHT, channels: 3 } })
      .composite([{ input: block, left: (i * 37) % (WIDTH - 64), top: (i * 53) % (HEIGHT - 64) }])
      .jpeg({ quality: 85 })
      .toBuffer();
    writeFileSync(file, jpeg);
    out.push(jpeg);
  }
  return out;
}

/** Starts the world on 127.0.0.1; `files` are the image bytes it serves (work i has file i). */
export async function startBenchWorld(works: number): Promise<{ world: WikidataWorld; files: Buffer[] }> {
  const model = new WorldModel();
  model.items.set(GOYA, { en: "Francisco Goya", es: "Francisco de Goya" });
  for (const [q, en] of [["Q3305213", "painting"], ["Q134307", "portrait"], ["Q296955", "oil paint"], ["Q160236", "Museo del Prado"]] as const) {
    model.items.set(q, { en, es: en });
  }
  const files = await benchImages(works);
  for (let i = 0; i < works; i++) {
    const file = `Goya bench ${i}.jpg`;
    model.setFile(`File:${file}`, { bytes: files[i]!, mime: "image/jpeg", width: BENCH_IMAGE_WIDTH, height: BENCH_IMAGE_HEIGHT });
    model.addWork({
      qid: `Q${2_000_000 + i}`,
      labels: { en: `Bench work ${i}`, es: `Obra ${i}` },
      creators: [i % 10 === 0 ? { value: "somevalue", qualifiers: { P1774: GOYA } } : { value: GOYA }],
      inception: { time: `+${1770 + (i % 55)}-00-00T00:00:00Z`, precision: 9 },
      links: { P31: ["Q3305213"], P136: ["Q134307"], P186: ["Q296955"], P195: ["Q160236"] },
      images: [{ file }],
      height: { amount: 100, unit: "Q174728" },
      width: { amount: 80, unit: "Q174728" },
    });
  }
  const world = await startWikidataWorld({ model, imageinfoPageLimit: 50 });
  return { world, files };
}
