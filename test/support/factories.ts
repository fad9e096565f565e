import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Db } from "../../src/db.js";
import type { ArtworkState, AttributionKind } from "../../src/generated/prisma/enums.js";
import { searchForm } from "../../src/text/normalize.js";
import { commonsFilePageUrl } from "../../src/text/web-url.js";

/** Numbers the made rows' QIDs, names and default years (1780 + n % 40), the same in every file. */
const FIRST_SEQ = 1000;
let seq = FIRST_SEQ;
const next = () => ++seq;

/** Starts the numbering again: test/support/each-file.ts does before each file, so a file's rows do not depend on the files that ran before it in its worker. */
export function resetFactories(): void {
  seq = FIRST_SEQ;
}

export async function makeCreator(db: Db, o: { qid?: string; labels?: Record<string, string> } = {}) {
  const labels = o.labels ?? { en: `Painter ${next()}` };
  return db.creator.create({
    data: {
      qid: o.qid ?? `Q${next()}`,
      label: Object.values(labels)[0] ?? null,
      labels: {
        create: Object.entries(labels).map(([language, label]) => ({ language, label, normalized: searchForm(label) })),
      },
    },
  });
}

export const GOYA_LABELS = {
  en: "Francisco Goya",
  es: "Francisco de Goya",
  fr: "Francisco José de Goya y Lucientes",
};

export async function makeGoya(db: Db) {
  return makeCreator(db, { qid: "Q5432", labels: GOYA_LABELS });
}

export interface ArtworkOverrides {
  qid?: string;
  title?: string;
  titles?: Record<string, string>;
  inception?: string | null;
  inceptionPrecision?: number | null;
  state?: ArtworkState;
  creators?: { id: number; attribution?: AttributionKind }[];
  image?: boolean | { fileTitle?: string; localPath?: string };
  description?: string | null;
  links?: { property: string; qid: string; label: string }[];
}

/** An artwork with (by default) one main image and no description. */
export async function makeArtwork(db: Db, o: ArtworkOverrides = {}) {
  const n = next();
  const qid = o.qid ?? `Q${n}`;
  const title = o.title ?? `Work ${n}`;
  const inception = o.inception === undefined ? `${1780 + (n % 40)}-01-01T00:00:00Z` : o.inception;
  const artwork = await db.artwork.create({
    data: {
      qid,
      qidNumber: Number(qid.slice(1)),
      title,
      titles: JSON.stringify(o.titles ?? { en: title }),
      inception,
      inceptionPrecision: inception ? (o.inceptionPrecision ?? 9) : null,
      // As the sync stores it (normalizeTime): "-0500-01-01T…" is the year -500.
      inceptionYear: inception ? Number(/^-?\d+/.exec(inception)![0]) : null,
      state: o.state ?? "ACTIVE",
      lastSyncedAt: new Date(),
      creators: o.creators
        ? { create: o.creators.map((c, i) => ({ creatorId: c.id, attribution: c.attribution ?? "CREATOR", position: i })) }
        : undefined,
    },
  });
  if (o.image !== false) {
    const img = typeof o.image === "object" ? o.image : {};
    const fileTitle = img.fileTitle ?? `File:${title}.jpg`;
    await db.image.create({
      data: {
        artworkId: artwork.id,
        fileTitle,
        isMain: true,
        originalUrl: `https://upload.wikimedia.org/wikipedia/commons/a/ab/${encodeURIComponent(fileTitle.slice(5))}`,
        width: 2000,
        height: 1500,
        mime: "image/jpeg",
        sha1: `sha1-${n}`,
        licenseShortName: "Public domain",
        artist: "Francisco de Goya",
        descriptionUrl: commonsFilePageUrl(fileTitle),
        localPath: img.localPath ?? `ab/${n}.jpg`,
        localWidth: 1024,
        localHeight: 768,
      },
    });
  }
  for (const [i, l] of (o.links ?? []).entries()) {
    await db.linkedItem.upsert({
      where: { qid: l.qid },
      create: { qid: l.qid, label: l.label, labels: JSON.stringify({ en: l.label }) },
      update: {},
    });
    await db.artworkLink.create({ data: { artworkId: artwork.id, property: l.property, itemQid: l.qid, position: i } });
  }
  if (o.description) await addDescription(db, artwork.id, o.description);
  return db.artwork.findUniqueOrThrow({ where: { id: artwork.id } });
}

/** A model description that becomes the artwork's current one. */
export async function addDescription(db: Db, artworkId: number, text: string, source: "MODEL" | "HUMAN" = "MODEL") {
  const image = await db.image.findFirst({ where: { artworkId, isMain: true } });
  const d = await db.description.create({
    data: {
      artworkId,
      imageId: image?.id ?? null,
      text,
      source,
      ...(source === "MODEL"
        ? {
            modelId: "HuggingFaceTB/SmolVLM-500M-Instruct",
            modelRevision: "main",
            dtypes: JSON.stringify({ vision_encoder: "fp32", embed_tokens: "fp32", decoder_model_merged: "fp32" }),
            device: "cpu",
            prompt: "Describe the objects, people, and background you see in the painting or drawing in a factual manner.",
            numBeams: 4,
            maxNewTokens: 256,
            minNewTokens: 0,
            targetWords: 150,
            lengthPenalty: 1,
            earlyStopping: "true",
            noRepeatNgramSize: 0,
            repetitionPenalty: 1,
            imageSplitting: false,
            promptTokens: 90,
            imageTokens: 64,
            generatedTokens: 3,
            generatedTokenIds: JSON.stringify([1, 2, 3]),
            sequenceScore: -0.5,
            timings: JSON.stringify({ preprocessMs: 1, visionMs: 2, prefillMs: 3, decodeMs: 4, totalMs: 10 }),
            finishReason: "eos",
          }
        : { author: "curator" }),
    },
  });
  await db.artwork.update({ where: { id: artworkId }, data: { currentDescriptionId: d.id } });
  return d;
}

/** 150 words of plausible description text. */
export function words150(seed: number): string {
  const vocab = "a woman in a dark dress stands beside a seated man while a dog sleeps near the window and light falls across the floor of the room".split(" ");
  const out: string[] = [];
  for (let i = 0; i < 150; i++) out.push(vocab[(seed + i * 7) % vocab.length]!);
  return out.join(" ") + ".";
}

/** A placeholder file for every stored image, so jobs can be queued for them (nothing decodes it). */
export async function writePlaceholderImages(db: Db, imageDir: string): Promise<void> {
  for (const img of await db.image.findMany({ where: { localPath: { not: null } } })) {
    const file = join(imageDir, img.localPath!);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, "x");
  }
}
