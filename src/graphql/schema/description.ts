import { Prisma, type Description } from "../../generated/prisma/client.js";
import { builder } from "../builder.js";
import { fieldWeight, LONG_TEXT_WEIGHT } from "../limits/cost.js";
import { DescriptionSourceEnum } from "./enums.js";
import { storedQuality } from "../../quality/store.js";
import { QualityRef } from "./quality.js";
import { reproductionField, ReproductionRef } from "./reproduction.js";
import { EARLY_STOPPING_MODE, EarlyStoppingEnum } from "./generation.js";
import { EARLY_STOPPING_TEXTS } from "../../generation/params.js";
import { decodeDtypes } from "../../generation/reproduction.js";

type Row = Description;
/** Texts of about a kilobyte (and the token ids behind them) cost more than a short field. */
const longText = fieldWeight(LONG_TEXT_WEIGHT);

export const ModuleDtype = builder.objectRef<{ module: string; dtype: string }>("ModuleDtype").implement({
  fields: (t) => ({ module: t.exposeString("module"), dtype: t.exposeString("dtype") }),
});

const Generation = builder.objectRef<Row>("GenerationParameters").implement({
  description: "Everything needed to reproduce a model description.",
  fields: (t) => ({
    modelId: t.exposeString("modelId", { nullable: true }),
    modelRevision: t.exposeString("modelRevision", { nullable: true }),
    dtypes: t.field({
      type: [ModuleDtype],
      resolve: (d) => decodeDtypes(d.dtypes),
    }),
    device: t.exposeString("device", { nullable: true }),
    prompt: t.exposeString("prompt", { nullable: true }),
    numBeams: t.exposeInt("numBeams", { nullable: true }),
    maxNewTokens: t.exposeInt("maxNewTokens", { nullable: true }),
    minNewTokens: t.exposeInt("minNewTokens", { nullable: true }),
    targetWords: t.exposeInt("targetWords", { nullable: true }),
    lengthPenalty: t.exposeFloat("lengthPenalty", { nullable: true }),
    earlyStopping: t.exposeString("earlyStopping", { nullable: true, description: '"true", "false" or "never".' }),
    earlyStoppingMode: t.field({
      type: EarlyStoppingEnum,
      nullable: true,
      description: EARLY_STOPPING_MODE,
      resolve: (d) => (EARLY_STOPPING_TEXTS.find((text) => text === d.earlyStopping) ?? null),
    }),
    noRepeatNgramSize: t.exposeInt("noRepeatNgramSize", { nullable: true }),
    repetitionPenalty: t.exposeFloat("repetitionPenalty", { nullable: true }),
    imageSplitting: t.exposeBoolean("imageSplitting", { nullable: true }),
    cleanMarkdown: t.exposeBoolean("cleanMarkdown", {
      nullable: true,
      description: "Stray markdown was removed from the text (DESCRIBE_CLEAN_MARKDOWN); null for a text written before it was recorded.",
    }),
  }),
});

interface Timings {
  preprocessMs?: number;
  visionMs?: number;
  prefillMs?: number;
  decodeMs?: number;
  totalMs?: number;
  batchMs?: number;
}

const TimingsRef = builder.objectRef<Timings>("Timings").implement({
  description: "Milliseconds spent in each phase.",
  fields: (t) => ({
    preprocessMs: t.exposeFloat("preprocessMs", { nullable: true }),
    visionMs: t.exposeFloat("visionMs", { nullable: true }),
    prefillMs: t.exposeFloat("prefillMs", { nullable: true }),
    decodeMs: t.exposeFloat("decodeMs", { nullable: true, description: "This image's share of the batch's shared decode." }),
    totalMs: t.exposeFloat("totalMs", { nullable: true, description: "The four phases above for this image." }),
    batchMs: t.exposeFloat("batchMs", { nullable: true, description: "Wall time of the whole batch (null before 2026-12-01)." }),
  }),
});

const Outcome = builder.objectRef<Row>("GenerationOutcome").implement({
  description: "What happened when the model wrote the text.",
  fields: (t) => ({
    promptTokens: t.exposeInt("promptTokens", { nullable: true }),
    imageTokens: t.exposeInt("imageTokens", { nullable: true }),
    generatedTokens: t.exposeInt("generatedTokens", { nullable: true }),
    generatedTokenIds: t.field({
      extensions: longText,
      type: ["Int"],
      nullable: true,
      resolve: (d) => parseJson<number[]>(d.generatedTokenIds),
    }),
    sequenceScore: t.exposeFloat("sequenceScore", { nullable: true }),
    timings: t.field({ type: TimingsRef, nullable: true, resolve: (d) => parseJson<Timings>(d.timings) }),
    finishReason: t.exposeString("finishReason", { nullable: true, description: '"eos", "length" or "stop" (target length reached).' }),
    trimmed: t.exposeBoolean("trimmed", { description: "The text was cut back to its last complete sentence." }),
    rawText: t.exposeString("rawText", { nullable: true, extensions: longText, description: "The model's text before trimming and markdown cleaning." }),
  }),
});

/**
 * Every column, for the fields that hand the whole row on (the parameters, the outcome, the
 * reproduction record). Every other field selects only its own columns (Pothos' select mode): a
 * history of `descriptions { text }` does not read each version's raw text, token ids and checks.
 */
const WHOLE_ROW = Object.fromEntries(Object.values(Prisma.DescriptionScalarFieldEnum).map((column) => [column, true])) as {
  [K in keyof Description]: true;
};

export const DescriptionRef = builder.prismaNode("Description", {
  id: { field: "id" },
  select: { id: true },
  fields: (t) => ({
    text: t.exposeString("text", { extensions: longText }),
    language: t.exposeString("language"),
    source: t.expose("source", { type: DescriptionSourceEnum }),
    author: t.exposeString("author", { nullable: true }),
    reason: t.exposeString("reason", { nullable: true }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    image: t.relation("image", { nullable: true }),
    imageFile: t.exposeString("imageFile", {
      nullable: true,
      description:
        'The Commons file it describes ("File:….jpg"), as it was when the text was written: still there when the sync has since ' +
        "removed that image from the work (image is then null). Null for texts written without an image, and for texts whose image " +
        "was removed before this was recorded (2026-12-05).",
    }),
    artwork: t.relation("artwork"),
    generation: t.field({
      type: Generation,
      nullable: true,
      description: "Null for a person's text.",
      select: WHOLE_ROW,
      resolve: (d) => (d.source === "MODEL" ? d : null),
    }),
    outcome: t.field({ type: Outcome, nullable: true, select: WHOLE_ROW, resolve: (d) => (d.source === "MODEL" ? d : null) }),
    reproduction: t.field({ type: ReproductionRef, nullable: true, description: "Null for a person's text.", select: WHOLE_ROW, resolve: reproductionField }),
    quality: t.field({
      type: QualityRef,
      nullable: true,
      description: "Quality signals (flags, risk and the checks behind them); null until assessed.",
      select: { qualityChecks: true, qualityFlags: true, qualityRisk: true },
      resolve: (d) => storedQuality(d),
    }),
  }),
});

function parseJson<T>(text: string | null): T | null {
  return text ? (JSON.parse(text) as T) : null;
}
