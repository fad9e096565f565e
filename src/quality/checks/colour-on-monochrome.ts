import { CHROMATIC_WORDS, TINT_FOLLOWERS } from "../colour-words.js";
import { hueDistance } from "../image-colour.js";
import { tokenize, wordForms } from "../text-match.js";
import type { CheckOutcome, QualityInput } from "../types.js";

/** An image whose residual chroma (measureChroma) is below this is monochrome. */
export const MONOCHROME_MAX_CHROMA = 10;
/** A colour word within this many degrees of the image's tint hue names the tint, not a colour. */
export const TINT_HUE_TOLERANCE = 30;
/** A tint needs at least this much chroma to excuse a colour word (below it the scan is grey). */
export const MIN_TINT_CHROMA = 6;

/** The chromatic colour words of a text that the image's tint does not explain. */
export function colourClaims(text: string, tint?: { hue: number; chroma: number } | null): string[] {
  const words = tokenize(text);
  const out: string[] = [];
  words.forEach((w, i) => {
    const form = wordForms(w).find((f) => f in CHROMATIC_WORDS);
    if (form === undefined) return;
    if (TINT_FOLLOWERS.has(words[i + 1] ?? "")) return;
    const hue = CHROMATIC_WORDS[form];
    if (hue != null && tint && tint.chroma >= MIN_TINT_CHROMA && hueDistance(hue, tint.hue) <= TINT_HUE_TOLERANCE) return;
    out.push(form);
  });
  return out;
}

/**
 * COLOUR_ON_MONOCHROME: the stored image is monochrome once its tint is removed (chroma below
 * MONOCHROME_MAX_CHROMA), yet the text names chromatic colours. Value: the image's chroma.
 */
export function checkColourOnMonochrome(input: QualityInput): CheckOutcome {
  const chroma = input.image?.chroma;
  if (chroma == null || !Number.isFinite(chroma)) {
    return { flag: "COLOUR_ON_MONOCHROME", flagged: false, applicable: false, severity: 0, checks: [] };
  }
  const monochrome = chroma < MONOCHROME_MAX_CHROMA;
  const claims = monochrome ? colourClaims(input.text, input.image?.tint) : [];
  const flagged = claims.length > 0;
  const detail = monochrome
    ? flagged
      ? `monochrome image; the text names ${[...new Set(claims)].join(", ")}`
      : "monochrome image; no colour named"
    : "colour image";
  return {
    flag: "COLOUR_ON_MONOCHROME",
    flagged,
    applicable: true,
    severity: flagged ? 1 : 0,
    checks: [{ name: "imageChroma", value: chroma, detail }],
  };
}
