import sharp from "sharp";

/**
 * How colourful a stored image is once a tint is removed, for COLOUR_ON_MONOCHROME. Scans of
 * monochrome works are rarely grey: aquatints on warm paper, sepia, red chalk on cream paper.
 * Such an image is one pigment on one paper, so its pixels lie (in CIE Lab's a*b* plane) on one
 * line: from the paper's tint to the pigment's. The figure is the 95th percentile of each pixel's
 * distance from that line: near 0 for a tinted monochrome, tens for a colour painting. A museum
 * stamp under 5% of the picture does not move it.
 *
 * The line is accepted as a tint only when its two ends (5th and 95th percentile along it) are
 * within MAX_TINT_HUE_SPAN degrees of hue, or one end is near grey; otherwise (two complementary
 * colours, such as a blue sky over ochre earth, also lie on a line) the tint is the median a*b*,
 * a uniform shift, and the figure is the distance from it.
 */

/** Edge of the downscaled image the statistics are taken on. */
export const SAMPLE_EDGE = 64;
/** Percentile of the residual chroma reported. */
export const CHROMA_PERCENTILE = 0.95;
/** Most hue difference (degrees) between the two ends of a line that still counts as one tint. */
export const MAX_TINT_HUE_SPAN = 75;
/** An end of the line with less chroma than this is near grey (any hue). */
export const NEUTRAL_CHROMA = 8;

export interface ChromaFigures {
  /** 95th percentile of chroma left after removing the tint. */
  chroma: number;
  /** The removed tint: hue angle (degrees) and chroma of its most chromatic end. */
  tint: { hue: number; chroma: number };
}

/** The image's figures; `input` is a file path or the image's bytes. Rejects what sharp cannot read. */
export async function measureChroma(input: string | Buffer): Promise<ChromaFigures> {
  const { data, info } = await sharp(input, { failOn: "error" })
    .rotate()
    .resize(SAMPLE_EDGE, SAMPLE_EDGE, { fit: "inside" })
    .flatten({ background: "#ffffff" })
    .toColourspace("srgb")
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return chromaOfPixels(data, info.channels);
}

const linear = (c: number) => {
  const v = c / 255;
  return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
};
const LINEAR = Float64Array.from({ length: 256 }, (_, i) => linear(i));
const f = (t: number) => (t > 216 / 24389 ? Math.cbrt(t) : (24389 / 27 * t + 16) / 116);

/** sRGB (8 bit) to CIE a*, b* (D65). */
export function srgbToAb(r: number, g: number, b: number): [number, number] {
  const R = LINEAR[r]!;
  const G = LINEAR[g]!;
  const B = LINEAR[b]!;
  const x = (0.4124564 * R + 0.3575761 * G + 0.1804375 * B) / 0.95047;
  const y = 0.2126729 * R + 0.7151522 * G + 0.072175 * B;
  const z = (0.0193339 * R + 0.119192 * G + 0.9503041 * B) / 1.08883;
  const fy = f(y);
  return [500 * (f(x) - fy), 200 * (fy - f(z))];
}

const hueOf = (a: number, b: number) => ((Math.atan2(b, a) * 180) / Math.PI + 360) % 360;
export const hueDistance = (h1: number, h2: number) => {
  const d = Math.abs(h1 - h2) % 360;
  return d > 180 ? 360 - d : d;
};
function percentile(values: Float64Array, p: number): number {
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
}

/** The figures of raw interleaved sRGB pixels (3 or more channels; the first three are read). */
export function chromaOfPixels(data: Uint8Array, channels: number): ChromaFigures {
  const n = Math.floor(data.length / channels);
  if (n === 0) return { chroma: 0, tint: { hue: 0, chroma: 0 } };
  const A = new Float64Array(n);
  const B = new Float64Array(n);
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    const [a, b] = srgbToAb(data[i * channels]!, data[i * channels + 1]!, data[i * channels + 2]!);
    A[i] = a;
    B[i] = b;
    ma += a;
    mb += b;
  }
  ma /= n;
  mb /= n;
  // Principal direction of the a*b* points (2x2 covariance).
  let saa = 0;
  let sbb = 0;
  let sab = 0;
  for (let i = 0; i < n; i++) {
    const da = A[i]! - ma;
    const db = B[i]! - mb;
    saa += da * da;
    sbb += db * db;
    sab += da * db;
  }
  const angle = 0.5 * Math.atan2(2 * sab, saa - sbb);
  const ua = Math.cos(angle);
  const ub = Math.sin(angle);
  const along = new Float64Array(n);
  const across = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const da = A[i]! - ma;
    const db = B[i]! - mb;
    along[i] = da * ua + db * ub;
    across[i] = Math.abs(-da * ub + db * ua);
  }
  const ends = [percentile(along, 1 - CHROMA_PERCENTILE), percentile(along, CHROMA_PERCENTILE)].map((t) => [ma + t * ua, mb + t * ub] as const);
  const [e1, e2] = ends as [readonly [number, number], readonly [number, number]];
  const c1 = Math.hypot(...e1);
  const c2 = Math.hypot(...e2);
  const oneTint = c1 < NEUTRAL_CHROMA || c2 < NEUTRAL_CHROMA || hueDistance(hueOf(...e1), hueOf(...e2)) <= MAX_TINT_HUE_SPAN;
  if (oneTint) {
    const [ta, tb] = c1 >= c2 ? e1 : e2;
    return { chroma: percentile(across, CHROMA_PERCENTILE), tint: { hue: hueOf(ta, tb), chroma: Math.hypot(ta, tb) } };
  }
  const medA = percentile(A, 0.5);
  const medB = percentile(B, 0.5);
  const residual = new Float64Array(n);
  for (let i = 0; i < n; i++) residual[i] = Math.hypot(A[i]! - medA, B[i]! - medB);
  return { chroma: percentile(residual, CHROMA_PERCENTILE), tint: { hue: hueOf(medA, medB), chroma: Math.hypot(medA, medB) } };
}
