import type { Experiment } from "../../generated/prisma/client.js";
import { decodeArms, formatArm } from "../../experiments/arms.js";
import {
  type ArmComparison,
  type ArmReport,
  experimentState,
  type ExperimentReport,
  NO_JOBS,
  addCounts,
  renderMarkdown,
  type Share,
  type Spread,
} from "../../experiments/report.js";
import { experimentJobCounts, experimentReport } from "../../experiments/store.js";
import type { QualityFlag } from "../../quality/types.js";
import { builder, type Context } from "../builder.js";
import { InvalidIdError, NotFoundError } from "../errors.js";
import { MAX_ID_LENGTH, parseNumberedId } from "../ids.js";
import { fieldWeight, LONG_TEXT_WEIGHT } from "../limits/cost.js";
import { JobCountsRef } from "./status.js";
import { inputLimit, RESOLVER_CHECKED } from "../limits/input-limits.js";
import { pageSize } from "../limits/page-size.js";
import { QualityFlagEnum } from "./quality.js";

/**
 * Experiments (src/experiments/): created by `artdesc experiment`, read here. A report reads every
 * text the experiment wrote, so it costs as much as a page of descriptions.
 */

const DEFAULT_EXPERIMENTS = 20;
const MAX_EXPERIMENTS = 100;
const DEFAULT_TEXTS = 50;
const MAX_TEXTS = 500;
/**
 * A report reads every text of its experiment (two arms of 50 works: 100 rows; at most 5,000 works
 * of 8 arms). Priced like some 200 description texts, so one request asks for a handful of reports
 * at most (GRAPHQL_MAX_COST), not a page of a hundred.
 */
const REPORT_WEIGHT = 1000;

export const ExperimentStateEnum = builder.enumType("ExperimentState", {
  description: "RUNNING while any of its jobs is queued or running; FINISHED when none is; CANCELLED once cancelled.",
  values: ["RUNNING", "FINISHED", "CANCELLED"] as const,
});


const SpreadRef = builder.objectRef<Spread>("Spread").implement({
  description: "Mean and median of n values.",
  fields: (t) => ({ n: t.exposeInt("n"), mean: t.exposeFloat("mean"), median: t.exposeFloat("median") }),
});

const FinishShareRef = builder.objectRef<{ reason: string } & Share>("FinishReasonShare").implement({
  fields: (t) => ({
    reason: t.exposeString("reason", { description: '"eos" (the model ended), "length" (cut at max tokens), "stop" (target length reached).' }),
    count: t.exposeInt("count"),
    share: t.exposeFloat("share", { description: "Of the arm's texts." }),
  }),
});

const FlagShareRef = builder.objectRef<{ flag: QualityFlag } & Share>("QualityFlagShare").implement({
  fields: (t) => ({
    flag: t.expose("flag", { type: QualityFlagEnum }),
    count: t.exposeInt("count"),
    share: t.exposeFloat("share", { description: "Of the arm's assessed texts." }),
  }),
});

const RecallRef = builder.objectRef<ArmReport["depictsRecall"]>("DepictsRecall").implement({
  description: "Depicted things (Wikidata P180; people and ideas skipped) the texts name, pooled over an arm's texts (the DEPICTS_MISSING check).",
  fields: (t) => ({
    recall: t.exposeFloat("recall", { nullable: true, description: "mentioned / judged; null when nothing could be judged." }),
    mentioned: t.exposeInt("mentioned"),
    judged: t.exposeInt("judged"),
    texts: t.exposeInt("texts", { description: "Texts with something to judge." }),
  }),
});

const ArmReportRef = builder.objectRef<ArmReport>("ExperimentArmReport").implement({
  fields: (t) => ({
    name: t.exposeString("name"),
    params: t.exposeString("params", { description: 'The arm\'s parameters ("numBeams=4,maxNewTokens=256"; "defaults"); unset ones take the worker\'s defaults.' }),
    asRun: t.exposeStringList("asRun", { description: 'Beams and token limits the texts were decoded with ("4 beams, 256 tokens").' }),
    mixed: t.exposeStringList("mixed", {
      description:
        'Settings the arm\'s texts were not all made with alike ("repetitionPenalty 1 (2) or 1.3 (1)": workers with other DESCRIBE_* defaults, or another model revision, ran some); empty when alike.',
    }),
    jobs: t.field({ type: JobCountsRef, resolve: (a) => a.jobs }),
    total: t.exposeInt("total", { description: "Jobs: one per sampled work." }),
    described: t.exposeInt("described", { description: "Texts written." }),
    secondsPerImage: t.field({ type: SpreadRef, nullable: true, description: "Each image's own time (timings.totalMs).", resolve: (a) => a.secondsPerImage }),
    generatedTokens: t.field({ type: SpreadRef, nullable: true, resolve: (a) => a.generatedTokens }),
    words: t.field({ type: SpreadRef, nullable: true, resolve: (a) => a.words }),
    finishReasons: t.field({ type: [FinishShareRef], resolve: (a) => a.finishReasons }),
    assessed: t.exposeInt("assessed", { description: "Texts with quality signals." }),
    flags: t.field({ type: [FlagShareRef], resolve: (a) => a.flags }),
    meanRisk: t.exposeFloat("meanRisk", { nullable: true }),
    depictsRecall: t.field({ type: RecallRef, resolve: (a) => a.depictsRecall }),
  }),
});

const RiskDifferenceRef = builder.objectRef<NonNullable<ArmComparison["riskDifference"]>>("RiskDifference").implement({
  fields: (t) => ({
    mean: t.exposeFloat("mean", { description: "Mean of (arm risk − baseline risk) per work." }),
    ci95: t.exposeFloat("ci95", { nullable: true, description: "Half-width of its normal 95% interval (null under 2 works)." }),
    n: t.exposeInt("n"),
  }),
});

const ComparisonRef = builder.objectRef<ArmComparison>("ExperimentComparison").implement({
  description: "One arm against the first, on the works both described.",
  fields: (t) => ({
    arm: t.exposeString("arm"),
    baseline: t.exposeString("baseline"),
    pairedWorks: t.exposeInt("pairedWorks"),
    secondsRatio: t.exposeFloat("secondsRatio", { nullable: true, description: "Mean seconds per image of the arm / of the baseline." }),
    riskDifference: t.field({ type: RiskDifferenceRef, nullable: true, resolve: (c) => c.riskDifference }),
    recallDifference: t.exposeFloat("recallDifference", { nullable: true, description: "DEPICTS recall of the arm minus the baseline's." }),
    lengthFinishDifference: t.exposeFloat("lengthFinishDifference", { nullable: true, description: 'Share cut at max tokens (finish "length"): arm minus baseline.' }),
  }),
});

const ReportRef = builder.objectRef<ExperimentReport>("ExperimentReport").implement({
  description: "The arms side by side, as `artdesc experiment report` prints them.",
  fields: (t) => ({
    state: t.field({ type: ExperimentStateEnum, resolve: (r) => r.state }),
    jobs: t.field({ type: JobCountsRef, resolve: (r) => r.jobs }),
    arms: t.field({ type: [ArmReportRef], resolve: (r) => r.arms }),
    comparisons: t.field({ type: [ComparisonRef], resolve: (r) => r.comparisons }),
    markdown: t.string({ extensions: fieldWeight(LONG_TEXT_WEIGHT), resolve: (r) => renderMarkdown(r) }),
  }),
});

const ArmRef = builder.objectRef<{ name: string; params: Record<string, unknown> }>("ExperimentArm").implement({
  fields: (t) => ({
    name: t.exposeString("name"),
    params: t.string({ description: 'In ladder syntax ("numBeams=4"); "defaults" when it sets none.', resolve: (a) => formatArm(a.params) }),
    requestedParams: t.field({ type: "JSON", description: "The parameters the arm sets.", resolve: (a) => a.params }),
  }),
});

export const ExperimentRef = builder.prismaNode("Experiment", {
  id: { field: "id" },
  description: "A comparison of generation parameter sets (arms) on one sample of works; its texts are never current.",
  fields: (t) => ({
    number: t.exposeInt("id", { description: "The database id, as `artdesc experiment report <number>` takes it." }),
    name: t.exposeString("name", { nullable: true }),
    seed: t.exposeInt("seed"),
    sampleSize: t.exposeInt("sampleSize", { description: "Works asked for." }),
    sampled: t.int({ description: "Works picked (fewer when fewer qualified).", resolve: (e, _args, ctx) => ctx.db.experimentWork.count({ where: { experimentId: e.id } }) }),
    creator: t.exposeString("creator", { nullable: true }),
    requestedBy: t.exposeString("requestedBy", { nullable: true }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    cancelledAt: t.expose("cancelledAt", { type: "DateTime", nullable: true }),
    arms: t.field({ type: [ArmRef], resolve: (e) => decodeArms(e.arms) as never }),
    state: t.field({
      type: ExperimentStateEnum,
      resolve: async (e, _args, ctx) => experimentState(Object.values(await experimentJobCounts(ctx.db, e.id)).reduce(addCounts, NO_JOBS), e.cancelledAt),
    }),
    report: t.field({ type: ReportRef, extensions: fieldWeight(REPORT_WEIGHT), resolve: (e, _args, ctx) => experimentReport(ctx.db, e.id) }),
    descriptions: t.prismaField({
      type: ["Description"],
      description: `The texts the experiment wrote, by work then arm: the first \`limit\` (default ${DEFAULT_TEXTS}, at most ${MAX_TEXTS}).`,
      args: {
        arm: t.arg.string({ description: "Only this arm's.", extensions: inputLimit({ maxLength: 32 }) }),
        limit: t.arg.int({ defaultValue: DEFAULT_TEXTS }),
      },
      resolve: (query, e, args, ctx) =>
        ctx.db.description.findMany({
          ...query,
          where: { experimentId: e.id, ...(args.arm != null ? { experimentArm: args.arm } : {}) },
          orderBy: [{ artworkId: "asc" }, { id: "asc" }],
          take: pageSize("limit", args.limit, DEFAULT_TEXTS, MAX_TEXTS),
        }),
    }),
  }),
});

/** The experiment a description or job belongs to (no foreign key: one lookup, only for experiments' rows). */
const experimentOf = (id: number | null, ctx: Context): Promise<Experiment | null> | null => (id == null ? null : ctx.db.experiment.findUnique({ where: { id } }));

builder.prismaObjectFields("Description", (t) => ({
  experiment: t.field({
    type: ExperimentRef,
    nullable: true,
    description: "The experiment that wrote this text (then it is never current); null for every ordinary description.",
    select: { experimentId: true },
    resolve: (d, _args, ctx) => experimentOf(d.experimentId, ctx),
  }),
  experimentArm: t.exposeString("experimentArm", { nullable: true }),
}));

builder.prismaObjectFields("Job", (t) => ({
  experiment: t.field({
    type: ExperimentRef,
    nullable: true,
    description: "The experiment this job describes a work for.",
    select: { experimentId: true },
    resolve: (j, _args, ctx) => experimentOf(j.experimentId, ctx),
  }),
  experimentArm: t.exposeString("experimentArm", { nullable: true }),
}));

/** An experiment id as users give it: its number or its global id. */
const parseExperimentId = (raw: string): number => parseNumberedId(raw, "Experiment", "an experiment's global id or number");

builder.queryFields((t) => ({
  experiments: t.prismaField({
    type: ["Experiment"],
    description: `Experiments, newest first: the first \`limit\` (default ${DEFAULT_EXPERIMENTS}, at most ${MAX_EXPERIMENTS}).`,
    args: { limit: t.arg.int({ defaultValue: DEFAULT_EXPERIMENTS }) },
    resolve: (query, _root, args, ctx) =>
      ctx.db.experiment.findMany({ ...query, orderBy: { id: "desc" }, take: pageSize("limit", args.limit, DEFAULT_EXPERIMENTS, MAX_EXPERIMENTS) }),
  }),
  experiment: t.prismaField({
    type: "Experiment",
    description: "One experiment by number or global id.",
    args: { id: t.arg.id({ required: true, extensions: inputLimit(RESOLVER_CHECKED) }) },
    errors: { types: [NotFoundError, InvalidIdError], directResult: true },
    resolve: async (query, _root, args, ctx) => {
      const id = parseExperimentId(String(args.id));
      const found = await ctx.db.experiment.findUnique({ ...query, where: { id } });
      if (!found) throw new NotFoundError(String(args.id), `No experiment with id "${String(args.id).slice(0, MAX_ID_LENGTH)}"`);
      return found;
    },
  }),
}));
