import sharp from "sharp";
import { beforeAll, describe, expect, it } from "vitest";
import { checkColourOnMonochrome, colourClaims, MONOCHROME_MAX_CHROMA } from "../../src/quality/checks/colour-on-monochrome.js";
import { type ChromaFigures, chromaOfPixels, measureChroma } from "../../src/quality/image-colour.js";

const W = 200;
const H = 150;
const svg = (body: string, paper: string) =>
  Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><rect width="100%" height="100%" fill="${paper}"/>${body}</svg>`);
/** Lines and a half-transparent blot of one pigment, as an etching or a chalk drawing has. */
const strokes = (ink: string) =>
  Array.from({ length: 25 }, (_, i) => `<path d="M${(i * 37) % W} ${(i * 53) % H} L${(i * 71) % W} ${(i * 29) % H}" stroke="${ink}" stroke-width="${2 + (i % 5)}"/>`).join("") +
  `<circle cx="100" cy="75" r="30" fill="${ink}" opacity="0.6"/>`;

const IMAGES: Record<string, Buffer> = {
  greyAquatint: svg(strokes("#333333") + `<rect x="20" y="20" width="80" height="60" fill="#777777"/>`, "#dddddd"),
  warmAquatint: svg(strokes("#5a4a38") + `<rect x="20" y="20" width="80" height="60" fill="#8a7860"/>`, "#e8dcc0"),
  sepia: svg(strokes("#4a3020"), "#efe3c8"),
  redChalk: svg(strokes("#b0503c"), "#f2e6cc"),
  greyWithStamp: svg(strokes("#333333") + `<rect x="185" y="138" width="12" height="10" fill="#e00000"/>`, "#dddddd"),
  colourPainting: svg(`<rect width="70" height="150" fill="#c02020"/><rect x="70" width="60" height="150" fill="#2040c0"/><rect x="130" width="70" height="150" fill="#20a040"/>`, "#fff"),
  mutedPainting: svg(
    `<rect width="200" height="150" fill="#3a3028"/><circle cx="60" cy="60" r="35" fill="#8a2a20"/><rect x="120" y="40" width="60" height="80" fill="#2a4a3a"/><rect y="120" width="200" height="30" fill="#a08a50"/>`,
    "#fff",
  ),
  skyOverEarth: svg(`<rect width="200" height="75" fill="#6fa0d8"/><rect y="75" width="200" height="75" fill="#c08a40"/>`, "#fff"),
};
const figures: Record<string, ChromaFigures> = {};

beforeAll(async () => {
  for (const [name, image] of Object.entries(IMAGES)) {
    figures[name] = await measureChroma(await sharp(image).jpeg({ quality: 80 }).toBuffer());
  }
  // A grey PNG with alpha, and the file path form.
  figures.greyAlphaPng = await measureChroma(await sharp(IMAGES.greyAquatint!).ensureAlpha(0.5).png().toBuffer());
});

describe("measureChroma", () => {
  it.each(["greyAquatint", "warmAquatint", "sepia", "redChalk", "greyWithStamp", "greyAlphaPng"])("%s is monochrome once its tint is removed", (name) => {
    expect(figures[name]!.chroma).toBeLessThan(MONOCHROME_MAX_CHROMA / 2);
  });

  it.each(["colourPainting", "mutedPainting", "skyOverEarth"])("%s is in colour", (name) => {
    expect(figures[name]!.chroma).toBeGreaterThan(MONOCHROME_MAX_CHROMA * 3);
  });

  it("reports the tint: warm for sepia, red for red chalk, none for grey", () => {
    expect(figures.sepia!.tint.chroma).toBeGreaterThan(10);
    expect(figures.redChalk!.tint.hue).toBeGreaterThan(20);
    expect(figures.redChalk!.tint.hue).toBeLessThan(60);
    expect(figures.greyAquatint!.tint.chroma).toBeLessThan(2);
  });

  it("rejects bytes that are not an image", async () => {
    await expect(measureChroma(Buffer.from("not an image"))).rejects.toThrow();
  });

  it("the threshold sits at the boundary: a uniform grey-to-colour blend crosses it", () => {
    // Half the pixels grey, half a colour of chroma c relative to grey: the 95th percentile distance
    // is c (no line fits both grey and two opposite colours), so c just below and above the threshold.
    const image = (offset: number) => {
      const px: number[] = [];
      for (let i = 0; i < 100; i++) px.push(128, 128, 128);
      for (let i = 0; i < 100; i++) px.push(128 + offset, 128, 128 - offset, 128 - offset, 128 + offset, 128);
      return chromaOfPixels(Uint8Array.from(px), 3).chroma;
    };
    const values = Array.from({ length: 20 }, (_, o) => image(o));
    const below = values.filter((v) => v < MONOCHROME_MAX_CHROMA);
    const above = values.filter((v) => v >= MONOCHROME_MAX_CHROMA);
    expect(below.length).toBeGreaterThan(0);
    expect(above.length).toBeGreaterThan(0);
    const text = "A red coat and a blue sky.";
    expect(checkColourOnMonochrome({ text, image: { chroma: Math.max(...below) } }).flagged).toBe(true);
    expect(checkColourOnMonochrome({ text, image: { chroma: Math.min(...above) } }).flagged).toBe(false);
    expect(checkColourOnMonochrome({ text, image: { chroma: MONOCHROME_MAX_CHROMA } }).flagged).toBe(false);
    expect(checkColourOnMonochrome({ text, image: { chroma: MONOCHROME_MAX_CHROMA - 1e-9 } }).flagged).toBe(true);
  });
});

describe("COLOUR_ON_MONOCHROME", () => {
  const on = (image: string, text: string) => checkColourOnMonochrome({ text, image: figures[image]! });

  it.each([
    ["greyAquatint", "A woman in a red dress stands before a blue sky."],
    ["greyAquatint", "The green hills roll behind the riders."],
    ["warmAquatint", "A man in a blue coat raises his arms."],
    ["sepia", "Her green shawl falls over the chair."],
    ["redChalk", "The sky is a clear blue above the trees."],
    ["greyWithStamp", "A crimson cloak covers the sleeping figure."],
    ["greyAlphaPng", "Un hombre con una capa roja y un cielo azul."],
    ["sepia", "The scene is colourful and lively."],
    ["greyAquatint", "Purple shadows and yellow light fill the room."],
  ])("flags %s described as: %s", (image, text) => {
    expect(on(image, text).flagged).toBe(true);
  });

  it.each([
    ["greyAquatint", "Black and white shapes in shades of grey."],
    ["sepia", "Sepia tones and brown ink on cream paper."],
    ["redChalk", "Drawn in red chalk on cream paper, the figure is reddish."],
    ["redChalk", "The red lines of the chalk model the face."],
    ["warmAquatint", "Warm golden-brown aquatint tones; the paper has yellowed."],
    ["colourPainting", "A woman in a red dress stands before a blue sky."],
    ["mutedPainting", "A green curtain and a red cloak."],
    ["greyAquatint", "The credited engraver is unknown; a bluebell-shaped lamp."],
    ["sepia", "A red-brown wash darkens the corners."],
  ])("does not flag %s described as: %s", (image, text) => {
    expect(on(image, text).flagged).toBe(false);
  });

  it("is not applicable without a measured image", () => {
    expect(checkColourOnMonochrome({ text: "A red dress." }).applicable).toBe(false);
    expect(checkColourOnMonochrome({ text: "A red dress.", image: { chroma: null } }).applicable).toBe(false);
  });

  it("a tint excuses only the colour words near its hue", () => {
    const redTint = { hue: 40, chroma: 30 };
    expect(colourClaims("red and orange and blue", redTint)).toEqual(["blue"]);
    expect(colourClaims("red and orange and blue", { hue: 40, chroma: 2 })).toEqual(["red", "orange", "blue"]);
    expect(colourClaims("a scarlet robe", null)).toEqual(["scarlet"]);
  });
});
