import { deflateSync } from "node:zlib";
import { crc32 } from "node:zlib";
import sharp from "sharp";
import { type WorldFile, WorldModel } from "./model.js";

/**
 * The fixture world: Goya (Q5432) with 36 works, most generated, the hard cases written by hand.
 * QIDs and file names are stable, so tests can name them.
 */

export const GOYA = "Q5432";
export const OTHER_PAINTER = "Q296";
export const CM = "Q174728";

/** Hand-written hard cases, by QID. */
export const CASES = {
  attributed: "Q900001", // unknown value + P1773 attributed to Goya
  workshop: "Q900002", // unknown value + P1774 workshop of Goya
  deprecated: "Q900003", // Goya only on a deprecated statement: not in the inventory
  noImage: "Q900004",
  twoImages: "Q900005", // second P18 is preferred: it is the main image
  unknownDate: "Q900006",
  decade: "Q900007", // inception 1790s, precision 8
  mergeSource: "Q900008", // merged into mergeTarget by mergeAndDelete()
  mergeTarget: "Q900009",
  toDelete: "Q900010",
  missingFile: "Q900011", // P18 names a file Commons does not have
  largePng: "Q900012", // 2400x1600 PNG with alpha
  grayscale: "Q900013",
  cmyk: "Q900014",
  bomb: "Q900015", // PNG that claims 30000x30000 pixels
  changing: "Q900016", // file re-uploaded by changeFile()
  rotated: "Q900017", // EXIF orientation 6
  redirectedFile: "Q900018", // P18 names a Commons redirect
  notByGoya: "Q900019", // its creator changes to another painter
} as const;

/** The size Commons reports for CASES.largePng's file: past 2^31 bytes. */
export const LARGE_FILE_SIZE = 3_221_225_472;

export const GENERATED_WORKS = 17;
export const FIRST_GENERATED = 910001;

export interface WorldSize {
  /** Generated works besides the hand-written ones (default 17; 36 works in all). */
  generated?: number;
  /** Edge of the generated JPEGs (default 400). */
  imageEdge?: number;
  /** Include the hand-written hard cases (default true). */
  hardCases?: boolean;
}

export async function buildGoyaWorld(size: WorldSize = {}): Promise<WorldModel> {
  const w = new WorldModel();
  const generated = size.generated ?? GENERATED_WORKS;
  const edge = size.imageEdge ?? 400;
  w.items.set(GOYA, { en: "Francisco Goya", es: "Francisco de Goya" });
  w.items.set(OTHER_PAINTER, { en: "Claude Monet", es: "Claude Monet" });
  for (const [q, en, es] of [
    ["Q3305213", "painting", "pintura"],
    ["Q134307", "portrait", "retrato"],
    ["Q296955", "oil paint", "óleo"],
    ["Q160236", "Museo del Prado", "Museo del Prado"],
    ["Q8441", "man", "hombre"],
    ["Q467", "woman", "mujer"],
    ["Q93184", "drawing", "dibujo"],
  ] as const) {
    w.items.set(q, { en, es });
  }
  // Linked items carry aliases and their own P31, as on Wikidata (the quality checks read them).
  w.itemFacts.set("Q8441", { aliases: { en: ["male", "gentleman"], es: ["varón"] }, instanceOf: ["Q55983715"] });
  w.itemFacts.set("Q467", { aliases: { en: ["lady"], es: ["dama"] }, instanceOf: ["Q55983715"] });
  w.itemFacts.set("Q3305213", { aliases: { en: ["painted picture"] }, instanceOf: ["Q4502142"] });

  for (let i = 0; i < generated; i++) {
    const qid = `Q${FIRST_GENERATED + i}`;
    const file = `Goya work ${i + 1}.jpg`;
    w.setFile(`File:${file}`, await generatedJpeg(i, edge));
    w.addWork({
      qid,
      labels: { en: `Work ${i + 1}`, es: `Obra ${i + 1}` },
      creators: [{ value: GOYA }],
      titles: i % 3 === 0 ? [{ text: `Título ${i + 1}`, language: "es" }] : undefined,
      inception: { time: `+${1770 + (i % 55)}-0${1 + (i % 9)}-1${i % 9}T00:00:00Z`, precision: i % 2 ? 11 : 9 },
      links: { P31: ["Q3305213"], P136: ["Q134307"], P186: ["Q296955"], P195: ["Q160236"], P180: [i % 2 ? "Q8441" : "Q467"] },
      images: [{ file }],
      height: { amount: 100 + i, unit: CM },
      width: { amount: 80.5 + i, unit: CM },
    });
  }
  if (size.hardCases !== false) await addHardCases(w);
  return w;
}

async function addHardCases(w: WorldModel): Promise<void> {
  const simple = async (qid: string, n: number, extra: Partial<Parameters<WorldModel["addWork"]>[0]> = {}) => {
    const file = `Goya case ${qid}.jpg`;
    w.setFile(`File:${file}`, await generatedJpeg(1000 + n, 300));
    return w.addWork({ qid, labels: { en: `Case ${qid}` }, creators: [{ value: GOYA }], images: [{ file }], ...extra });
  };
  await simple(CASES.attributed, 1, { creators: [{ value: "somevalue", qualifiers: { P1773: GOYA } }] });
  await simple(CASES.workshop, 2, { creators: [{ value: "somevalue", qualifiers: { P1774: GOYA } }] });
  await simple(CASES.deprecated, 3, { creators: [{ value: GOYA, rank: "deprecated" }, { value: OTHER_PAINTER }] });
  w.addWork({ qid: CASES.noImage, labels: { en: "No image", es: "Sin imagen" }, creators: [{ value: GOYA }] });
  w.setFile("File:Goya two A.jpg", await generatedJpeg(2001, 300));
  w.setFile("File:Goya two B.jpg", await generatedJpeg(2002, 300));
  w.addWork({
    qid: CASES.twoImages,
    labels: { en: "Two images" },
    creators: [{ value: GOYA }],
    images: [{ file: "Goya two A.jpg" }, { file: "Goya two B.jpg", rank: "preferred" }],
  });
  await simple(CASES.unknownDate, 4);
  await simple(CASES.decade, 5, { inception: { time: "+1790-00-00T00:00:00Z", precision: 8 } });
  await simple(CASES.mergeSource, 6, { labels: { en: "Merged away" } });
  await simple(CASES.mergeTarget, 7, { labels: { en: "Merge target" } });
  await simple(CASES.toDelete, 8);
  w.addWork({ qid: CASES.missingFile, labels: { en: "Lost file" }, creators: [{ value: GOYA }], images: [{ file: "Goya lost.jpg" }] });

  // A scan of over 2 GiB on Commons (the world serves a small file for it, as it does for every original).
  w.setFile("File:Goya large alpha.png", { ...(await largePngWithAlpha()), size: LARGE_FILE_SIZE });
  w.addWork({ qid: CASES.largePng, labels: { en: "Large PNG" }, creators: [{ value: GOYA }], images: [{ file: "Goya large alpha.png" }] });
  w.setFile("File:Goya grayscale drawing.jpg", await grayscaleJpeg());
  w.addWork({ qid: CASES.grayscale, labels: { en: "Drawing" }, creators: [{ value: GOYA }], images: [{ file: "Goya grayscale drawing.jpg" }], links: { P31: ["Q93184"] } });
  w.setFile("File:Goya cmyk.jpg", await cmykJpeg());
  w.addWork({ qid: CASES.cmyk, labels: { en: "CMYK print" }, creators: [{ value: GOYA }], images: [{ file: "Goya cmyk.jpg" }] });
  w.setFile("File:Goya bomb.png", decompressionBomb());
  w.addWork({ qid: CASES.bomb, labels: { en: "Bomb" }, creators: [{ value: GOYA }], images: [{ file: "Goya bomb.png" }] });
  w.setFile("File:Goya changing.jpg", await generatedJpeg(3001, 300));
  w.addWork({ qid: CASES.changing, labels: { en: "Changing" }, creators: [{ value: GOYA }], images: [{ file: "Goya changing.jpg" }] });
  w.setFile("File:Goya rotated.jpg", await rotatedJpeg());
  w.addWork({ qid: CASES.rotated, labels: { en: "Rotated" }, creators: [{ value: GOYA }], images: [{ file: "Goya rotated.jpg" }] });
  w.setFile("File:Goya new name.jpg", await generatedJpeg(4001, 300));
  w.fileRedirects.set("File:Goya old name.jpg", "File:Goya new name.jpg");
  w.addWork({ qid: CASES.redirectedFile, labels: { en: "Renamed file" }, creators: [{ value: GOYA }], images: [{ file: "Goya old name.jpg" }] });
  await simple(CASES.notByGoya, 9);
}

/** A grey aquatint of a donkey (P31 aquatint, P180 donkey, alias "ass"), for the quality checks. */
export const DONKEY_AQUATINT = "Q900020";
export const DONKEY = "Q19707";
export const AQUATINT = "Q18219090";

/** Adds DONKEY_AQUATINT by Goya: its image is a grey picture (no colour once its tint is removed). */
export async function addDonkeyAquatint(w: WorldModel): Promise<void> {
  w.items.set(DONKEY, { en: "donkey", es: "burro" });
  w.itemFacts.set(DONKEY, { aliases: { en: ["ass", "domestic donkey"], es: ["asno"] }, instanceOf: ["Q55983715"] });
  w.items.set(AQUATINT, { en: "aquatint", es: "aguatinta" });
  w.itemFacts.set(AQUATINT, { aliases: { en: ["aquatint print"] }, instanceOf: ["Q11060274"] });
  w.setFile("File:Goya donkey aquatint.jpg", await greyAquatintJpeg());
  w.addWork({
    qid: DONKEY_AQUATINT,
    labels: { en: "A donkey", es: "Un burro" },
    creators: [{ value: GOYA }],
    inception: { time: "+1799-00-00T00:00:00Z", precision: 9 },
    links: { P31: [AQUATINT], P180: [DONKEY] },
    images: [{ file: "Goya donkey aquatint.jpg" }],
  });
}

/** Grey tones only: a light ground, a darker sky band and a dark shape, with grain. */
async function greyAquatintJpeg(): Promise<WorldFile> {
  const width = 400;
  const height = 300;
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const sky = y < height / 3 ? 90 : 190;
      const shape = (x - 200) ** 2 / 90 ** 2 + (y - 190) ** 2 / 50 ** 2 < 1 ? 60 : 0;
      const grain = ((x * 7919 + y * 104729) % 23) - 11;
      const v = Math.max(0, Math.min(255, sky - shape + grain));
      raw.fill(v, (y * width + x) * 3, (y * width + x) * 3 + 3);
    }
  }
  const bytes = await sharp(raw, { raw: { width, height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
  return { bytes, mime: "image/jpeg", width, height };
}

/** Between two syncs: a merge, a deletion, a creator change and a re-uploaded file. */
export async function changeWorld(w: WorldModel): Promise<void> {
  w.merge(CASES.mergeSource, CASES.mergeTarget);
  w.delete(CASES.toDelete);
  w.edit(CASES.notByGoya, (x) => (x.creators = [{ value: OTHER_PAINTER }]));
  w.setFile("File:Goya changing.jpg", await generatedJpeg(3002, 300));
}

// --- images ---

/** A distinct JPEG per seed: a colour field with a band whose place depends on the seed. */
export async function generatedJpeg(seed: number, edge: number): Promise<WorldFile> {
  const width = edge;
  const height = Math.round((edge * 3) / 4);
  const colour = { r: (seed * 53) % 256, g: (seed * 97) % 256, b: (seed * 29) % 256 };
  const band = await sharp({ create: { width: Math.max(8, width >> 3), height, channels: 3, background: { r: 255 - colour.r, g: 255 - colour.g, b: 255 - colour.b } } })
    .png()
    .toBuffer();
  const bytes = await sharp({ create: { width, height, channels: 3, background: colour } })
    .composite([{ input: band, left: (seed * 7) % Math.max(1, width - (width >> 3)), top: 0 }])
    .jpeg({ quality: 85 })
    .toBuffer();
  return { bytes, mime: "image/jpeg", width, height };
}

async function largePngWithAlpha(): Promise<WorldFile> {
  const bytes = await sharp({ create: { width: 2400, height: 1600, channels: 4, background: { r: 200, g: 30, b: 30, alpha: 0.4 } } })
    .png({ compressionLevel: 1 })
    .toBuffer();
  return { bytes, mime: "image/png", width: 2400, height: 1600 };
}

async function grayscaleJpeg(): Promise<WorldFile> {
  const bytes = await sharp({ create: { width: 300, height: 400, channels: 3, background: { r: 90, g: 90, b: 90 } } })
    .grayscale()
    .jpeg()
    .toBuffer();
  return { bytes, mime: "image/jpeg", width: 300, height: 400 };
}

async function cmykJpeg(): Promise<WorldFile> {
  const bytes = await sharp({ create: { width: 320, height: 240, channels: 3, background: { r: 20, g: 120, b: 220 } } })
    .toColourspace("cmyk")
    .jpeg()
    .toBuffer();
  return { bytes, mime: "image/jpeg", width: 320, height: 240 };
}

async function rotatedJpeg(): Promise<WorldFile> {
  // Stored 400x200; EXIF orientation 6 says "rotate 90° clockwise to display": 200x400.
  const bytes = await sharp({ create: { width: 400, height: 200, channels: 3, background: { r: 10, g: 200, b: 10 } } })
    .jpeg()
    .withMetadata({ orientation: 6 })
    .toBuffer();
  return { bytes, mime: "image/jpeg", width: 200, height: 400 };
}

/** A tiny PNG whose header claims 30000 x 30000 pixels (900 megapixels). */
export function decompressionBomb(): WorldFile {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td) >>> 0);
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(30000, 0);
  ihdr.writeUInt32BE(30000, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // grayscale
  const bytes = Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(Buffer.alloc(30001 * 4))),
    chunk("IEND", Buffer.alloc(0)),
  ]);
  return { bytes, mime: "image/png", width: 30000, height: 30000 };
}

/** A title that is markup: every page must print it as text (the workbench's escaping tests). */
export const SCRIPT_TITLE = "<script>alert(1)</script>";
export const SCRIPT_TITLE_WORK = "Q900021";

/** Adds SCRIPT_TITLE_WORK by Goya, titled SCRIPT_TITLE in every language (opt-in, like the aquatint). */
export async function addScriptTitleWork(w: WorldModel): Promise<void> {
  w.setFile("File:Goya script title.jpg", await generatedJpeg(2024, 200));
  w.addWork({
    qid: SCRIPT_TITLE_WORK,
    labels: { en: SCRIPT_TITLE, es: SCRIPT_TITLE },
    creators: [{ value: GOYA }],
    inception: { time: "+1800-00-00T00:00:00Z", precision: 9 },
    images: [{ file: "Goya script title.jpg" }],
  });
}
