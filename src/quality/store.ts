import { join } from "node:path";
import type { Config } from "../config.js";
import type { Db } from "../db.js";
import type { Prisma } from "../generated/prisma/client.js";
import { cleanMarkdown, withoutRepeatedSentences } from "../describe/postprocess.js";
import type { Logger } from "../log.js";
import { rateLimited } from "../ops/rate-limited-log.js";
import { labelLanguages } from "../sync/languages.js";
import { assessQuality } from "./assess.js";
import { measureChroma } from "./image-colour.js";
import {
  type DepictedItem,
  type GenerationFacts,
  type ImageFacts,
  type LabelledItem,
  QUALITY_FLAGS,
  type QualityCheck,
  type QualityFlag,
  type QualityInput,
  type QualityResult,
} from "./types.js";

/**
 * The I/O edge of the quality checks: gathers a description's facts from the store (the work's
 * Wikidata links, the image's chroma), runs the pure `assessQuality` and stores the result on the
 * description. Quality never fails a write: an error is logged and the description is left
 * unassessed (`quality recompute` tries it again).
 */

export interface QualitySettings {
  imageDir: string;
  /** SYNC_LANGUAGES and "mul" (labelLanguages): labels and aliases in these are matched. */
  languages: string[];
  /** DESCRIBE_TARGET_WORDS, for texts without their own target (a person's). */
  targetWords: number;
}

export function qualitySettings(config: Pick<Config, "IMAGE_DIR" | "SYNC_LANGUAGES" | "DESCRIBE_TARGET_WORDS">): QualitySettings {
  return { imageDir: config.IMAGE_DIR, languages: labelLanguages(config.SYNC_LANGUAGES), targetWords: config.DESCRIBE_TARGET_WORDS };
}

/** A text about to be written: what `qualityInputFor` needs before the row exists. */
export interface TextToAssess {
  artworkId: number;
  imageId: number | null;
  text: string;
  language?: string;
  /** The model's text before cleanup; absent for a person's text. */
  rawText?: string | null;
  finishReason?: string | null;
  trimmed?: boolean | null;
  targetWords?: number | null;
  /** The instruction the model was given (DescribeParams.prompt); absent for a person's text. */
  prompt?: string | null;
}

/** The Description columns that hold the assessment. */
export interface StoredQualityColumns {
  qualityFlags: string | null;
  qualityRisk: number | null;
  qualityChecks: string | null;
  qualityAt: Date | null;
}

export const NO_QUALITY: StoredQualityColumns = { qualityFlags: null, qualityRisk: null, qualityChecks: null, qualityAt: null };

/** A statement the checks read (P180 depicts, P31 instance of, P186 material used) with its item. */
interface LinkRow {
  property: string;
  qid: string;
  labels: string;
  aliases: string;
  instanceOf: string;
}

const squash = (s: string) => s.replace(/\s+/g, " ").trim();

/** How the text was generated, from what the engine reported (or a stored model row). */
export function generationFacts(t: Pick<TextToAssess, "text" | "rawText" | "finishReason" | "trimmed" | "targetWords" | "prompt">): GenerationFacts {
  return {
    finishReason: t.finishReason ?? null,
    trimmed: t.trimmed ?? null,
    markdownRemoved: t.rawText != null ? squash(cleanMarkdown(t.rawText)) !== squash(t.rawText) : null,
    // Those the engine took out: a text stored before it did keeps its loop, counted there already.
    repeatsRemoved: t.rawText != null ? Math.max(0, withoutRepeatedSentences(squash(t.rawText)).removed - withoutRepeatedSentences(squash(t.text)).removed) : null,
    targetWords: t.targetWords ?? null,
    instruction: t.prompt ?? null,
  };
}

/** The checks' input for a stored description (by id) or for a text about to be written. */
export async function qualityInputFor(
  db: Db,
  what: number | TextToAssess,
  settings: QualitySettings,
  log?: Logger,
): Promise<QualityInput> {
  const t: TextToAssess =
    typeof what === "number"
      ? await db.description.findUniqueOrThrow({
          where: { id: what },
          select: { artworkId: true, imageId: true, text: true, language: true, rawText: true, finishReason: true, trimmed: true, targetWords: true, prompt: true, source: true },
        }).then((d) => (d.source === "MODEL" ? d : { artworkId: d.artworkId, imageId: d.imageId, text: d.text, language: d.language }))
      : what;
  const [links, image] = await Promise.all([
    // One statement (a nested Prisma select takes two and several times as long).
    db.$queryRaw<LinkRow[]>`
      SELECT l.property, i.qid, i.labels, i.aliases, i."instanceOf"
      FROM "ArtworkLink" l JOIN "LinkedItem" i ON i.qid = l."itemQid"
      WHERE l."artworkId" = ${t.artworkId} AND l.property IN ('P180', 'P31', 'P186')
      ORDER BY l.property, l.position`,
    t.imageId != null ? imageFacts(db, t.imageId, settings.imageDir, log) : { chroma: null },
  ]);
  const items = (p: string) => links.filter((l) => l.property === p);
  const labelled = (i: { qid: string; labels: string; aliases: string }): LabelledItem => ({
    qid: i.qid,
    labels: jsonOr<Record<string, string>>(i.labels, {}),
    aliases: jsonOr<Record<string, string[]>>(i.aliases, {}),
  });
  const depicts: DepictedItem[] = items("P180").map((i) => ({ ...labelled(i), instanceOf: jsonOr<string[]>(i.instanceOf, []) }));
  const isHuman = t.rawText == null && t.finishReason == null;
  return {
    text: t.text,
    language: t.language,
    generation: isHuman ? { targetWords: settings.targetWords } : { ...generationFacts(t), targetWords: t.targetWords || settings.targetWords },
    work: { depicts, instanceOf: items("P31").map(labelled), materials: items("P186").map(labelled) },
    image,
    languages: settings.languages,
  };
}

/**
 * The image's chroma figures: stored ones, else measured on the local copy under IMAGE_DIR and
 * stored (once per image). Unknown (null) when there is no local copy or sharp cannot read it.
 */
export async function imageFacts(db: Db, imageId: number, imageDir: string, log?: Logger): Promise<ImageFacts> {
  const image = await db.image.findUnique({ where: { id: imageId }, select: { chroma: true, tintHue: true, tintChroma: true, localPath: true } });
  if (!image) return { chroma: null };
  if (image.chroma != null) {
    return { chroma: image.chroma, tint: image.tintHue != null && image.tintChroma != null ? { hue: image.tintHue, chroma: image.tintChroma } : null };
  }
  if (!image.localPath) return { chroma: null };
  try {
    const m = await measureChroma(join(imageDir, image.localPath));
    // Only onto the copy it measured: a sync that downloaded a new version meanwhile keeps it unmeasured.
    await db.image.updateMany({ where: { id: imageId, localPath: image.localPath }, data: { chroma: m.chroma, tintHue: m.tint.hue, tintChroma: m.tint.chroma } });
    return { chroma: m.chroma, tint: m.tint };
  } catch (err) {
    // Each write of the work's texts tries again: one line a minute, however often that is.
    if (log) rateLimited(log).warn("chroma", { err, imageId }, "image chroma could not be measured: COLOUR_ON_MONOCHROME is not judged");
    return { chroma: null };
  }
}

/** The columns to store for a result. */
export function qualityColumns(result: QualityResult, now = new Date()): StoredQualityColumns {
  return { qualityFlags: result.flags.join(","), qualityRisk: result.risk, qualityChecks: JSON.stringify(result.checks), qualityAt: now };
}

/** The assessment of a text about to be written, as columns; NO_QUALITY (logged) when it fails. */
export async function assessForWrite(db: Db, text: TextToAssess, settings: QualitySettings, log: Logger): Promise<StoredQualityColumns> {
  try {
    return qualityColumns(assessQuality(await qualityInputFor(db, text, settings, log)));
  } catch (err) {
    log.error({ err, artworkId: text.artworkId }, "quality assessment failed: the description is stored unassessed");
    return NO_QUALITY;
  }
}

/** Assesses a stored description and stores the result; null (logged) when it fails. */
export async function assessAndStore(db: Db, descriptionId: number, settings: QualitySettings, log: Logger): Promise<QualityResult | null> {
  try {
    const result = assessQuality(await qualityInputFor(db, descriptionId, settings, log));
    await db.description.update({ where: { id: descriptionId }, data: qualityColumns(result) });
    return result;
  } catch (err) {
    log.error({ err, descriptionId }, "quality assessment failed: the description stays unassessed");
    return null;
  }
}

/** The stored assessment of a description, or null when it was never assessed. */
export function storedQuality(row: Pick<StoredQualityColumns, "qualityFlags" | "qualityRisk" | "qualityChecks">): QualityResult | null {
  if (row.qualityFlags == null || row.qualityRisk == null) return null;
  const known = new Set<string>(QUALITY_FLAGS);
  return {
    flags: row.qualityFlags.split(",").filter((f): f is QualityFlag => known.has(f)),
    risk: row.qualityRisk,
    checks: jsonOr<QualityCheck[]>(row.qualityChecks ?? "[]", []),
  };
}

export interface RecomputeSummary {
  assessed: number;
  failed: number;
  ms: number;
}

/** Batch size of `quality recompute`. */
export const RECOMPUTE_BATCH = 200;

/**
 * Assesses descriptions not yet assessed (all of them with `all`), in id order and in batches,
 * measuring the chroma of images that lack it on the way.
 */
export async function recomputeQuality(
  db: Db,
  settings: QualitySettings,
  log: Logger,
  o: { all?: boolean; batch?: number } = {},
): Promise<RecomputeSummary> {
  const started = performance.now();
  const batch = o.batch ?? RECOMPUTE_BATCH;
  let assessed = 0;
  let failed = 0;
  let after = 0;
  for (;;) {
    const rows = await db.description.findMany({
      where: { id: { gt: after }, ...(o.all ? {} : { qualityAt: null }) },
      orderBy: { id: "asc" },
      take: batch,
      select: { id: true },
    });
    if (rows.length === 0) break;
    for (const { id } of rows) {
      if (await assessAndStore(db, id, settings, log)) assessed++;
      else failed++;
    }
    after = rows[rows.length - 1]!.id;
  }
  return { assessed, failed, ms: performance.now() - started };
}

/** Our own JSON columns; a malformed one is a bug, so it throws (and the caller logs it). */
function jsonOr<T>(text: string, fallback: T): T {
  return (JSON.parse(text) as T | null) ?? fallback;
}

export interface QualityFilter {
  /** Works whose current description has this flag. */
  flag?: QualityFlag | null;
  /** Works whose current description's risk is at least this, in [0, 1]. */
  minRisk?: number | null;
}

/** Artworks whose current description matches the filter (unassessed descriptions never do). */
export function qualityWhere(filter: QualityFilter): Prisma.ArtworkWhereInput {
  const on: Prisma.DescriptionWhereInput[] = [];
  if (filter.flag != null) {
    const f = filter.flag;
    // Flags are stored comma-separated: match a whole flag, not a part of another.
    on.push({ OR: [{ qualityFlags: f }, { qualityFlags: { startsWith: `${f},` } }, { qualityFlags: { endsWith: `,${f}` } }, { qualityFlags: { contains: `,${f},` } }] });
  }
  if (filter.minRisk != null) on.push({ qualityRisk: { gte: filter.minRisk } });
  return on.length ? { currentDescription: { AND: on } } : {};
}
