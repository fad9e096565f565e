import { join } from "node:path";
import { AutoProcessor, type Processor, RawImage } from "@huggingface/transformers";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine } from "../../src/describe/engine.js";
import { createTinyModel, type TinyModel } from "../support/models.js";

// The engine's pixels against transformers.js's own Idefics3ImageProcessor, loaded fresh from the
// same folder and fed the original image. The tiny model's processor: size.longest_edge 256,
// 64 px tiles, Lanczos (resample 1).
let model: TinyModel;
let engine: Engine;
let reference: Processor;

beforeAll(async () => {
  model = createTinyModel({ dtype: "fp32" });
  engine = await Engine.load({ modelDir: model.dir });
  reference = await AutoProcessor.from_pretrained(model.name, { local_files_only: true });
});
afterAll(async () => {
  await engine?.dispose();
  model.remove();
});

/** A w x h PNG with detail at every scale (stripes, a gradient, noise), and its raw pixels. */
async function picture(w: number, h: number): Promise<{ file: string; image: RawImage }> {
  const data = new Uint8ClampedArray(w * h * 3);
  let seed = w * 31 + h;
  for (let i = 0; i < w * h; i++) {
    const x = i % w;
    const y = Math.floor(i / w);
    seed = (seed * 1103515245 + 12345) >>> 0;
    data[i * 3] = (x * 7) % 256;
    data[i * 3 + 1] = Math.floor((255 * y) / h);
    data[i * 3 + 2] = seed >>> 24;
  }
  const file = join(model.root, `${w}x${h}.png`);
  await sharp(Buffer.from(data.buffer), { raw: { width: w, height: h, channels: 3 } }).png().toFile(file);
  return { file, image: new RawImage(data, w, h, 3) };
}

/** transformers.js's processor output for one image, with `size.longest_edge` set for this call. */
async function processorPixels(image: RawImage, longestEdge: number, split: boolean) {
  const ip = (reference as unknown as { image_processor: { size: { longest_edge: number } } }).image_processor;
  const before = ip.size;
  ip.size = { longest_edge: longestEdge };
  try {
    const out = (await (reference as unknown as (t: string, i: RawImage[], o: object) => Promise<Record<string, any>>)(
      engine.templatePrompt("x"),
      [image],
      { do_image_splitting: split },
    )) as Record<string, any>;
    return { data: out.pixel_values.data as Float32Array, dims: out.pixel_values.dims as number[] };
  } finally {
    ip.size = before;
  }
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe("preprocessing against transformers.js's Idefics3ImageProcessor", () => {
  it("with splitting, images past the longest edge equal the processor's default output within 1e-6", async () => {
    for (const [w, h, tiles] of [
      [1200, 400, 4 * 2 + 1],
      [400, 1200, 2 * 4 + 1],
      [1000, 1000, 4 * 4 + 1],
      [513, 77, 4 * 1 + 1],
    ] as const) {
      const { file, image } = await picture(w, h);
      const ours = await engine.prepare(file, "x", true);
      // The processor as configured (longest edge 256) on the original image.
      const theirs = await processorPixels(image, 256, true);
      expect(theirs.dims).toEqual([1, tiles, 3, 64, 64]);
      expect(ours.tiles).toBe(tiles);
      expect(maxDiff(ours.pixelValues, theirs.data), `${w}x${h}`).toBeLessThanOrEqual(1e-6);
    }
  });

  it("with splitting, a smaller image keeps its own resolution: the processor at its own longest edge", async () => {
    const { file, image } = await picture(200, 100);
    const ours = await engine.prepare(file, "x", true);
    const own = await processorPixels(image, 200, true);
    expect(maxDiff(ours.pixelValues, own.data)).toBeLessThanOrEqual(1e-6);
    // 200x100 -> 256x128 tile grid (bilinear from the original): 4x2 + global. transformers.js's
    // default would first upscale it to 256 px with Lanczos: the same grid, other pixels.
    expect(ours.tiles).toBe(9);
    const upscaled = await processorPixels(image, 256, true);
    expect(maxDiff(ours.pixelValues, upscaled.data)).toBeGreaterThan(1e-3);
  });

  it("without splitting, resizes straight to one tile (not through the 256 px longest edge first)", async () => {
    for (const [w, h] of [
      [1200, 400],
      [513, 77],
      [1000, 1000],
    ] as const) {
      const { file, image } = await picture(w, h);
      const ours = await engine.prepare(file, "x", false);
      expect(ours.tiles).toBe(1);
      const straight = await processorPixels(image, 64, false);
      expect(maxDiff(ours.pixelValues, straight.data), `${w}x${h}`).toBeLessThanOrEqual(1e-6);
      const viaLongestEdge = await processorPixels(image, 256, false);
      expect(maxDiff(ours.pixelValues, viaLongestEdge.data), `${w}x${h}`).toBeGreaterThan(1e-3);
    }
  });
});
