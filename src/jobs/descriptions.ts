import { type Db, writeTransaction } from "../db.js";
import { countWords } from "../describe/postprocess.js";
import type { DescribeOutput } from "../describe/types.js";
import { encodeModelFiles } from "../generation/reproduction.js";
import type { Description, Job } from "../generated/prisma/client.js";
import { earlyStoppingText } from "../generation/params.js";
import { describableImage, madeFromCurrentFile } from "./queue.js";
import { checkCurrent } from "./conflict.js";

export { DescriptionConflictError } from "./conflict.js";
import type { Logger } from "../log.js";
import { assessForWrite, NO_QUALITY, type QualitySettings, type StoredQualityColumns } from "../quality/store.js";
import { replaceableDescription, SETTLED_BY_PERSON } from "../review/verdict.js";

/** What a write needs to assess the text's quality (docs/quality.md); without it the text is stored unassessed. */
export interface QualityContext {
  settings: QualitySettings;
  log: Logger;
}

/** The job was cancelled or taken over while it ran: its result is dropped. */
export class LostClaimError extends Error {
  override name = "LostClaimError";
  constructor(readonly jobId: number) {
    super(`Job ${jobId} is no longer held by this worker`);
  }
}

/**
 * Why a model's output must not be stored, or null: after the cleanup it holds no word (an empty
 * answer, markup alone). Stored, it would become the current text and an empty alt text.
 */
export function wordlessOutput(out: Pick<DescribeOutput, "text" | "rawText" | "generatedTokens">): string | null {
  if (countWords(out.text) > 0) return null;
  const raw = out.rawText.trim();
  const shown = raw.length > 80 ? `${raw.slice(0, 80)}…` : raw;
  return `the model wrote no words (${out.generatedTokens} tokens${raw ? `: ${JSON.stringify(shown)}` : ", all whitespace or special tokens"})`;
}

/**
 * Writes a model description, marks its job SUCCEEDED and moves the artwork's current pointer, in
 * one transaction: a crash leaves either all of it or none. The job update is conditional on our
 * claim, and Description.jobId is unique, so a retried job can never write a second row. A person's
 * current text is kept unless the job was forced while it was current (Job.forceOverId). An experiment's job (src/experiments/) writes its
 * text tagged with the experiment and never moves the pointer.
 */
export async function recordModelDescription(
  db: Db,
  job: Pick<Job, "id" | "artworkId" | "force" | "forceOverId" | "requestedBy" | "reason" | "experimentId" | "experimentArm">,
  holder: string,
  image: { id: number; fileTitle?: string | null },
  out: DescribeOutput,
  now = new Date(),
  quality?: QualityContext,
): Promise<{ description: Description; becameCurrent: boolean; outdatedFile: boolean }> {
  const imageId = image.id;
  const artworkId = job.artworkId;
  if (artworkId == null) throw new Error(`Job ${job.id} has no artwork`);
  const p = out.params;
  // Assessed before the transaction (it reads, and may measure the image once).
  const assessed: StoredQualityColumns = quality
    ? await assessForWrite(
        db,
        { artworkId, imageId, text: out.text, rawText: out.rawText, finishReason: out.finishReason, trimmed: out.trimmed, targetWords: p.targetWords, prompt: p.prompt },
        quality.settings,
        quality.log,
      )
    : NO_QUALITY;
  // Our claim ends here if it commits. The job's lease is the caller's to release (the worker's
  // failJob does it on a failed write): a release that fails after the commit is not a failed write.
  return writeTransaction(db, async (tx) => {
    const done = await tx.job.updateMany({
      where: { id: job.id, holder, status: "RUNNING" },
      data: { status: "SUCCEEDED", finishedAt: now, progress: out.generatedTokens, heartbeatAt: now, error: null },
    });
    if (done.count !== 1) throw new LostClaimError(job.id);
    // The image row may be gone: a sync removes a file the work no longer shows (a Commons rename)
    // while the job runs. The text is kept all the same, naming the file it was made from.
    const file = await tx.image.findUnique({ where: { id: imageId }, select: { fileTitle: true } });
    const description = await tx.description.create({
      data: {
        artworkId,
        imageId: file ? imageId : null,
        imageFile: file?.fileTitle ?? image.fileTitle ?? null,
        jobId: job.id,
        text: out.text,
        rawText: out.rawText,
        source: "MODEL",
        author: job.requestedBy,
        reason: job.reason,
        createdAt: now,
        modelId: out.model.modelId,
        modelRevision: out.model.revision,
        dtypes: JSON.stringify(out.model.dtypes),
        device: out.model.device,
        prompt: p.prompt,
        numBeams: p.numBeams,
        maxNewTokens: p.maxNewTokens,
        minNewTokens: p.minNewTokens,
        targetWords: p.targetWords,
        lengthPenalty: p.lengthPenalty,
        earlyStopping: earlyStoppingText(p.earlyStopping),
        noRepeatNgramSize: p.noRepeatNgramSize,
        repetitionPenalty: p.repetitionPenalty,
        imageSplitting: p.imageSplitting,
        promptTokens: out.promptTokens,
        imageTokens: out.imageTokens,
        generatedTokens: out.generatedTokens,
        generatedTokenIds: JSON.stringify(out.generatedTokenIds),
        sequenceScore: Number.isFinite(out.sequenceScore) ? out.sequenceScore : null,
        timings: JSON.stringify(out.timings),
        finishReason: out.finishReason,
        trimmed: out.trimmed,
        ...assessed,
        ...reproductionColumns(out),
        experimentId: job.experimentId,
        experimentArm: job.experimentArm,
      },
    });
    if (job.experimentId != null) return { description, becameCurrent: false, outdatedFile: false };
    // A job that read a file the work no longer shows (a re-upload or another main image came while
    // it ran) never replaces a text made from the file it shows now: that text is newer news.
    const main = await tx.image.findFirst({ where: { artworkId, ...describableImage }, select: { id: true, localHash: true, downloadedAt: true } });
    let unchangedSince = {};
    if (main && !madeFromCurrentFile({ imageId, imageHash: out.imageHash }, main)) {
      const art = await tx.artwork.findUniqueOrThrow({
        where: { id: artworkId },
        select: { currentDescriptionId: true, currentDescription: { select: { imageId: true, imageHash: true, createdAt: true } } },
      });
      if (art.currentDescription && madeFromCurrentFile(art.currentDescription, main)) return { description, becameCurrent: false, outdatedFile: true };
      unchangedSince = { currentDescriptionId: art.currentDescriptionId };
    }
    // A text that is not a fallback ladder step's starts the work's review afresh: a "needs a
    // person" mark or a ladder step was about the text it replaces.
    const ladderStep = await tx.review.findFirst({ where: { fallbackJobId: job.id, fallbackStep: { not: null } }, select: { id: true } });
    // Conditional, so a person's text (or an approval) that came while the job ran is kept too; a
    // forced job replaces, besides, the text that was current when it was asked for.
    const replaceable = [{ currentDescriptionId: null }, { currentDescription: replaceableDescription }, ...(job.force && job.forceOverId != null ? [{ currentDescriptionId: job.forceOverId }] : [])];
    const moved = await tx.artwork.updateMany({
      where: { id: artworkId, ...unchangedSince, OR: replaceable },
      data: ladderStep ? { currentDescriptionId: description.id } : { currentDescriptionId: description.id, needsPerson: false, fallbackStep: null },
    });
    return { description, becameCurrent: moved.count === 1, outdatedFile: false };
  });
}

/** What `describe --like` needs to run a description again (see prisma/schema.prisma). */
export function reproductionColumns(out: DescribeOutput) {
  return {
    instruction: out.prompt,
    cleanMarkdown: out.params.cleanMarkdown,
    decoding: out.decoding,
    batchSize: out.batchSize,
    imageHash: out.imageHash,
    modelFiles: encodeModelFiles(out.model.files),
  };
}


/**
 * A person's text becomes the current description (and joins the history). `replaces`: the current
 * description the person edited, or "none" when the work had none; when another became current
 * meanwhile, DescriptionConflictError and nothing is written (the check and the write are one write
 * transaction, so they cannot be split). Null or absent: no check.
 */
export async function setHumanDescription(
  db: Db,
  artworkId: number,
  text: string,
  o: { author?: string | null; reason?: string | null; now?: Date; quality?: QualityContext; replaces?: number | "none" | null } = {},
): Promise<Description> {
  const image = await db.image.findFirst({ where: { artworkId, ...describableImage }, select: { id: true, fileTitle: true } });
  const assessed = o.quality
    ? await assessForWrite(db, { artworkId, imageId: image?.id ?? null, text }, o.quality.settings, o.quality.log)
    : NO_QUALITY;
  return writeTransaction(db, async (tx) => {
    if (o.replaces != null) {
      const current = await tx.artwork.findUnique({ where: { id: artworkId }, select: { currentDescriptionId: true } });
      if (current) checkCurrent(artworkId, current.currentDescriptionId, o.replaces, "edit");
    }
    const description = await tx.description.create({
      data: {
        artworkId,
        imageId: image?.id ?? null,
        imageFile: image?.fileTitle ?? null,
        text,
        source: "HUMAN",
        author: o.author ?? null,
        reason: o.reason ?? null,
        createdAt: o.now ?? new Date(),
        ...assessed,
      },
    });
    await tx.artwork.update({ where: { id: artworkId }, data: { currentDescriptionId: description.id, ...SETTLED_BY_PERSON } });
    return description;
  });
}
