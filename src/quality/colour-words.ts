/**
 * Chromatic colour words (English and Spanish, normalised) with their CIE Lab hue angle, so a
 * word that names the image's own tint ("red" on a red-chalk drawing) can be told from a claim.
 * null: a claim of colour with no one hue ("colourful"). Tint words (brown, sepia, ochre, cream,
 * ivory, golden, reddish…) and achromatic words (black, white, grey, dark, light) are not here:
 * they fit a monochrome scan.
 */
export const CHROMATIC_WORDS: Record<string, number | null> = {
  red: 40, scarlet: 40, crimson: 26, vermilion: 45, vermillion: 45, carmine: 25, pink: 8, magenta: 328,
  orange: 70, yellow: 100, lemon: 100, green: 136, emerald: 150, olive: 110, turquoise: 185, teal: 195, cyan: 200,
  blue: 300, azure: 280, navy: 300, cobalt: 290, ultramarine: 300, purple: 328, violet: 310, lilac: 315, lavender: 310,
  colourful: null, colorful: null, multicoloured: null, multicolored: null, polychrome: null,
  rojo: 40, roja: 40, rojos: 40, rojas: 40, escarlata: 40, carmesi: 26, bermellon: 45, rosado: 8, rosada: 8,
  naranja: 70, anaranjado: 70, amarillo: 100, amarilla: 100, verde: 136, esmeralda: 150, turquesa: 185,
  azul: 300, azules: 300, celeste: 270, morado: 328, morada: 328, purpura: 328, violeta: 310, lila: 315,
  colorido: null, colorida: null, policromo: null, policroma: null,
};

/** A colour word followed by one of these names a tint medium or a tint: "red chalk", "red-brown". */
export const TINT_FOLLOWERS = new Set("chalk chalks brown ochre ocher sepia sanguine pardo ocre".split(" "));
