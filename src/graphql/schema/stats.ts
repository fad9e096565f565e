import { ModuleDtype } from "./description.js";
import { currentQualityCounts, type ModelQualityCounts, type QualityCounts, qualityCountsByModel, type ReviewState } from "../../review/stats.js";
import type { QualityFlag } from "../../quality/types.js";
import type { Db } from "../../db.js";
import { untilNextCommit } from "../../store/data-version.js";
import { dialect } from "../../store/sql.js";
import { builder } from "../builder.js";
import { QualityFlagEnum } from "./quality.js";
import { ReviewStateEnum } from "./enums.js";

interface CreatorCount {
  qid: string;
  label: string | null;
  artworks: number;
  withImage: number;
  described: number;
}
interface Stats {
  artworks: number;
  withImage: number;
  described: number;
  byCreator: CreatorCount[];
}

const CreatorCountRef = builder.objectRef<CreatorCount>("CreatorStats").implement({
  fields: (t) => ({
    qid: t.exposeString("qid"),
    label: t.exposeString("label", { nullable: true }),
    artworks: t.exposeInt("artworks"),
    withImage: t.exposeInt("withImage"),
    described: t.exposeInt("described"),
  }),
});

const FlagCountRef = builder.objectRef<{ flag: QualityFlag; count: number }>("QualityFlagCount").implement({
  fields: (t) => ({ flag: t.expose("flag", { type: QualityFlagEnum }), count: t.exposeInt("count") }),
});

const ReviewStateCountRef = builder.objectRef<{ state: ReviewState; count: number }>("ReviewStateCount").implement({
  fields: (t) => ({ state: t.expose("state", { type: ReviewStateEnum }), count: t.exposeInt("count") }),
});

const QualityCountsRef = builder.objectRef<QualityCounts>("QualityCounts").implement({
  description: "Quality flags and review states of a set of descriptions.",
  fields: (t) => ({
    descriptions: t.exposeInt("descriptions"),
    assessed: t.exposeInt("assessed", { description: "Descriptions with quality signals." }),
    byFlag: t.field({ type: [FlagCountRef], description: "Descriptions carrying each flag (one may carry several).", resolve: (c) => c.byFlag }),
    byReviewState: t.field({ type: [ReviewStateCountRef], description: "Descriptions by latest verdict.", resolve: (c) => c.byReviewState }),
  }),
});

const ModelQualityCountsRef = builder.objectRef<ModelQualityCounts>("ModelQualityCounts").implement({
  description: "Quality flags and review states of every description (history included) one model wrote with one parameter set.",
  fields: (t) => ({
    modelId: t.exposeString("modelId", { nullable: true, description: "Null for people's texts." }),
    modelRevision: t.exposeString("modelRevision", { nullable: true, description: "The model's revision: another revision is another group." }),
    dtypes: t.field({ type: [ModuleDtype], description: "Each module's weights (dtype): other weights are another group.", resolve: (c) => c.dtypes }),
    params: t.exposeString("params", {
      nullable: true,
      description: 'The parameters that differ from the built-in defaults, written as a REVIEW_FALLBACK_LADDER step ("numBeams=8"; "" = all defaults); null for people\'s texts.',
    }),
    prompt: t.exposeString("prompt", { nullable: true }),
    descriptions: t.exposeInt("descriptions"),
    assessed: t.exposeInt("assessed", { description: "Descriptions with quality signals." }),
    byFlag: t.field({ type: [FlagCountRef], resolve: (c) => c.byFlag }),
    byReviewState: t.field({ type: [ReviewStateCountRef], resolve: (c) => c.byReviewState }),
  }),
});

const QualityStatsRef = builder.objectRef<Record<string, never>>("QualityStats").implement({
  description: "Quality signals and review states of active artworks' descriptions (one SQL statement per field).",
  fields: (t) => ({
    current: t.field({
      type: QualityCountsRef,
      description: "The current descriptions: what the collection shows now.",
      resolve: (_s, _args, ctx) => currentQualityCounts(ctx.db),
    }),
    byModel: t.field({
      type: [ModelQualityCountsRef],
      description: "Every description (replaced ones too), by model and parameter set, largest group first; people's texts in one group.",
      resolve: (_s, _args, ctx) => qualityCountsByModel(ctx.db),
    }),
  }),
});

const StatsRef = builder.objectRef<Stats>("Stats").implement({
  description: "Counts over active artworks.",
  fields: (t) => ({
    artworks: t.exposeInt("artworks"),
    withImage: t.exposeInt("withImage"),
    described: t.exposeInt("described"),
    byCreator: t.field({ type: [CreatorCountRef], resolve: (s) => s.byCreator }),
    quality: t.field({ type: QualityStatsRef, resolve: () => ({}) }),
  }),
});

builder.queryField("stats", (t) =>
  t.field({
    type: StatsRef,
    resolve: (_root, _args, ctx) => activeCounts(ctx.db),
  }),
);

/** One aggregate query: counts per creator, and a grand total that counts each artwork once (one reading per database version). */
const activeCounts = untilNextCommit(async (db: Db): Promise<Stats> => {
  const sql = dialect(db);
  const rows = await db.$queryRawUnsafe<
    { qid: string | null; label: string | null; artworks: bigint; withImage: bigint; described: bigint }[]
  >(`
    WITH a AS (
      SELECT w.id,
             EXISTS (SELECT 1 FROM "Image" i WHERE i."artworkId" = w.id AND ${sql.isTrue('i."isMain"')} AND ${sql.isFalse("i.missing")}) AS "hasImage",
             w."currentDescriptionId" IS NOT NULL AS described
      FROM "Artwork" w WHERE w.state = 'ACTIVE')
    SELECT c.qid AS qid, c.label AS label, COUNT(DISTINCT a.id) AS artworks,
           COUNT(DISTINCT CASE WHEN a."hasImage" THEN a.id END) AS "withImage",
           COUNT(DISTINCT CASE WHEN a.described THEN a.id END) AS described
    FROM a JOIN "ArtworkCreator" ac ON ac."artworkId" = a.id JOIN "Creator" c ON c.id = ac."creatorId"
    GROUP BY c.id
    UNION ALL
    SELECT NULL, NULL, COUNT(*), ${sql.countWhere('a."hasImage"')}, ${sql.countWhere("a.described")} FROM a`);
  const n = (v: bigint | number) => Number(v);
  const total = rows.find((r) => r.qid === null)!;
  return {
    artworks: n(total.artworks),
    withImage: n(total.withImage),
    described: n(total.described),
    byCreator: rows
      .filter((r) => r.qid !== null)
      .map((r) => ({ qid: r.qid!, label: r.label, artworks: n(r.artworks), withImage: n(r.withImage), described: n(r.described) }))
      .sort((x, y) => x.qid.localeCompare(y.qid)),
  };
});
