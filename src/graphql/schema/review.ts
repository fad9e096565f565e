import { queryFromInfo } from "@pothos/plugin-prisma";
import { encodeGlobalID, resolveCursorConnection } from "@pothos/plugin-relay";
import type { Description, Job } from "../../generated/prisma/client.js";
import { ReviewVerdict } from "../../generated/prisma/enums.js";
import { TEXT_LIMITS } from "../../jobs/input-limits.js";
import type { QualityFlag } from "../../quality/types.js";
import { dialect } from "../../store/sql.js";
import { decodeCursor, encodeCursor, InvalidCursorError, queuePageSql } from "../../review/queue.js";
import { DescriptionNotFoundError, ExperimentDescriptionError, ReplacedDescriptionError, ReviewConflictError, reviewDescription } from "../../review/review.js";
import { REVIEW_STATES, type ReviewState } from "../../review/stats.js";
import { findCreatorIds } from "../../store/artwork-filter.js";
import { builder } from "../builder.js";
import { BadUserInputError, ConflictError, InvalidIdError, InvalidInputError, NotFoundError, UnauthorizedError } from "../errors.js";
import { parseDescriptionId } from "../ids.js";
import { inputLimit, RESOLVER_CHECKED } from "../limits/input-limits.js";
import { connectionPageSizes, pageSize } from "../limits/page-size.js";
import { MAX_CREATOR_LENGTH } from "./artwork.js";
import { DescriptionRef } from "./description.js";
import { JobRef } from "./job.js";
import { optionalText, requireToken } from "./job-mutations.js";
import { ReviewStateEnum } from "./enums.js";
import { QualityFlagEnum } from "./quality.js";

/** Review (src/review/): verdicts on descriptions, the review queue and the review counts. */

export const DEFAULT_REVIEW_PAGE = 50;
const MAX_REVIEW_PAGE = 500;
/** Verdicts of one description returned unless `limit` says otherwise. */
const DEFAULT_REVIEWS = 20;
const MAX_REVIEWS = 200;

export const ReviewVerdictEnum = builder.enumType(ReviewVerdict, {
  name: "ReviewVerdict",
  description:
    "APPROVED: the text is right (automatic runs never replace an approved current text); REJECTED: it is wrong (a current " +
    "model text is described again with the next REVIEW_FALLBACK_LADDER step); NEEDS_WORK: a note for people, nothing else happens.",
});


const stateOf = (verdict: ReviewVerdict | null): ReviewState => verdict ?? "UNREVIEWED";

builder.prismaNode("Review", {
  id: { field: "id" },
  description: "One verdict on a description, with who gave it and when.",
  fields: (t) => ({
    verdict: t.expose("verdict", { type: ReviewVerdictEnum }),
    note: t.exposeString("note", { nullable: true }),
    reviewer: t.exposeString("reviewer"),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    description: t.relation("description"),
    fallbackStep: t.exposeInt("fallbackStep", { nullable: true, description: "The fallback ladder step this rejection queued (1-based)." }),
    fallbackJob: t.relation("fallbackJob", { nullable: true, description: "The describe job it queued." }),
    exhausted: t.exposeBoolean("exhausted", { description: "Nothing was left to try: the artwork was marked as needing a person." }),
  }),
});

builder.prismaObjectFields("Description", (t) => ({
  reviewState: t.field({ type: ReviewStateEnum, select: { reviewState: true }, resolve: (d) => stateOf(d.reviewState) }),
  reviewedAt: t.expose("reviewedAt", { type: "DateTime", nullable: true }),
  reviewedBy: t.exposeString("reviewedBy", { nullable: true }),
  reviews: t.relation("reviews", {
    description: `Verdicts on this description, newest first: the first \`limit\` (default ${DEFAULT_REVIEWS}, at most ${MAX_REVIEWS}).`,
    args: { limit: t.arg.int({ defaultValue: DEFAULT_REVIEWS }) },
    query: (args) => ({ orderBy: { id: "desc" }, take: pageSize("limit", args.limit, DEFAULT_REVIEWS, MAX_REVIEWS) }),
  }),
}));

interface ArtworkReview {
  state: ReviewState;
  reviewedAt: Date | null;
  reviewedBy: string | null;
  needsPerson: boolean;
  fallbackStep: number | null;
  fallbackSteps: number;
  fallbackJob: Job | null;
}

const ArtworkReviewRef = builder.objectRef<ArtworkReview>("ArtworkReview").implement({
  description:
    "Where the artwork's current text stands in review. After a rejection of a model text the work is described again with " +
    "step `fallbackStep` of `fallbackSteps` (see `fallbackJob`); when the last step is rejected too, `needsPerson` is true " +
    "until a person writes the text or approves one.",
  fields: (t) => ({
    state: t.expose("state", { type: ReviewStateEnum, description: "The current description's latest verdict." }),
    reviewedAt: t.expose("reviewedAt", { type: "DateTime", nullable: true }),
    reviewedBy: t.exposeString("reviewedBy", { nullable: true }),
    needsPerson: t.exposeBoolean("needsPerson", { description: "Every fallback step was rejected (or there is no image to describe again)." }),
    fallbackStep: t.exposeInt("fallbackStep", { nullable: true, description: "The fallback ladder step last queued (1-based); null when none since the last person's text or approval." }),
    fallbackSteps: t.exposeInt("fallbackSteps", { description: "Steps in the ladder (REVIEW_FALLBACK_LADDER)." }),
    fallbackJob: t.field({
      type: JobRef,
      nullable: true,
      description: "The newest job a rejection queued for this artwork (its status says whether it is still regenerating).",
      resolve: (r) => r.fallbackJob,
    }),
  }),
});

builder.prismaObjectField("Artwork", "review", (t) =>
  t.field({
    type: ArtworkReviewRef,
    select: {
      needsPerson: true,
      fallbackStep: true,
      currentDescription: { select: { reviewState: true, reviewedAt: true, reviewedBy: true } },
      jobs: { where: { fallbackOf: { some: {} } }, orderBy: { id: "desc" }, take: 1 },
    },
    resolve: (a, _args, ctx) => ({
      state: stateOf(a.currentDescription?.reviewState ?? null),
      reviewedAt: a.currentDescription?.reviewedAt ?? null,
      reviewedBy: a.currentDescription?.reviewedBy ?? null,
      needsPerson: a.needsPerson,
      fallbackStep: a.fallbackStep,
      fallbackSteps: ctx.config.REVIEW_FALLBACK_LADDER.length,
      fallbackJob: a.jobs[0] ?? null,
    }),
  }),
);

builder.mutationField("reviewDescription", (t) =>
  t.prismaField({
    type: "Review",
    description:
      "Records a verdict on a description (needs the bearer token). APPROVED: automatic runs never replace it. REJECTED, on the " +
      "current model text: a new description is queued with the next REVIEW_FALLBACK_LADDER step, and once the ladder is spent the " +
      "artwork is marked as needing a person. On a person's text, an older version, or with NEEDS_WORK, only the verdict is recorded.",
    args: {
      id: t.arg.id({ required: true, description: "A Description global id or its number.", extensions: inputLimit(RESOLVER_CHECKED) }),
      verdict: t.arg({ type: ReviewVerdictEnum, required: true }),
      note: t.arg.string({ description: `At most ${TEXT_LIMITS.reviewNote.max} characters; newlines and tabs allowed.`, extensions: inputLimit(RESOLVER_CHECKED) }),
      reviewer: t.arg.string({
        description: `Who reviews: one line, at most ${TEXT_LIMITS.author.max} characters. Unset: API_TOKEN_NAME.`,
        extensions: inputLimit(RESOLVER_CHECKED),
      }),
      expectedState: t.arg({
        type: ReviewStateEnum,
        description:
          "The review state the reviewer saw (UNREVIEWED in the review queue). When another verdict came meanwhile, the answer is a " +
          "ConflictError and nothing is recorded. Unset: the verdict is recorded over whatever is there.",
      }),
      expectCurrent: t.arg.boolean({
        description:
          "true: the reviewer saw this description as its work's current text (the review queue, a work's page). When another text " +
          "replaced it meanwhile, the answer is a ConflictError whose changed is the Artwork, and nothing is recorded. Unset or false: no check.",
      }),
    },
    errors: { types: [UnauthorizedError, NotFoundError, InvalidIdError, InvalidInputError, ConflictError], directResult: true },
    resolve: async (query, _root, args, ctx) => {
      requireToken(ctx);
      const id = parseDescriptionId(String(args.id));
      const note = optionalText("note", args.note, TEXT_LIMITS.reviewNote);
      const reviewer = optionalText("reviewer", args.reviewer, TEXT_LIMITS.author) ?? ctx.config.API_TOKEN_NAME;
      try {
        const { review } = await reviewDescription(ctx.db, ctx.config, {
          descriptionId: id,
          verdict: args.verdict,
          note,
          reviewer,
          expectedState: args.expectedState,
          expectCurrent: args.expectCurrent ?? false,
        });
        return ctx.db.review.findUniqueOrThrow({ ...query, where: { id: review.id } });
      } catch (err) {
        if (err instanceof DescriptionNotFoundError) throw new NotFoundError(String(args.id), err.message);
        if (err instanceof ExperimentDescriptionError) throw new InvalidInputError("id", err.message);
        if (err instanceof ReviewConflictError) throw new ConflictError(encodeGlobalID("Description", err.descriptionId), err.message);
        if (err instanceof ReplacedDescriptionError) throw new ConflictError(encodeGlobalID("Artwork", err.artworkId), err.message);
        throw err;
      }
    },
  }),
);

const ReviewQueueFilter = builder.inputType("ReviewQueueFilter", {
  fields: (t) => ({
    flag: t.field({ type: QualityFlagEnum, description: "The description has this quality flag." }),
    minRisk: t.float({ description: "The description's quality risk is at least this (0 to 1)." }),
    creator: t.string({ description: 'A creator QID ("Q5432") or words of a creator label ("goya").', extensions: inputLimit({ maxLength: MAX_CREATOR_LENGTH }) }),
  }),
});

builder.queryField("reviewQueue", (t) =>
  t.connection(
    {
      type: DescriptionRef,
      description:
        "Current descriptions of active artworks that nobody has reviewed, riskiest first (quality risk descending, unassessed last, " +
        `then id). Pages of up to ${MAX_REVIEW_PAGE} (${DEFAULT_REVIEW_PAGE} unless first or last is given); a verdict takes a description out. ` +
        "A foreign cursor, a page too large or minRisk outside 0…1 is an error with extensions.code BAD_USER_INPUT and extensions.argument.",
      args: { filter: t.arg({ type: ReviewQueueFilter }) },
      // Bad input is a BadUserInputError naming the argument: the field returns the connection itself (Relay's @connection).
      resolve: async (_root, args, ctx, info) => {
        connectionPageSizes(args, MAX_REVIEW_PAGE);
        const { flag, minRisk, creator } = args.filter ?? {};
        if (minRisk != null && !(minRisk >= 0 && minRisk <= 1)) throw new BadUserInputError("filter.minRisk", `minRisk must be between 0 and 1 (got ${minRisk})`);
        const position = (arg: "after" | "before", cursor: string | null | undefined) => {
          if (cursor == null) return null;
          try {
            return decodeCursor(cursor);
          } catch (err) {
            if (err instanceof InvalidCursorError) throw new BadUserInputError(arg, err.message);
            throw err;
          }
        };
        const after = position("after", args.after);
        const before = position("before", args.before);
        const filter = { flag: flag ?? null, minRisk: minRisk ?? null, creatorIds: creator == null ? null : await findCreatorIds(ctx.db, creator) };
        const select = queryFromInfo({ context: ctx, info, typeName: "Description", path: ["edges", "node"], select: { id: true, qualityRisk: true } });
        const page = async ({ limit, inverted }: { limit: number; inverted: boolean }): Promise<Description[]> => {
          const { sql, params } = queuePageSql({ filter, after, before, inverted, limit }, dialect(ctx.db));
          const ids = (await ctx.db.$queryRawUnsafe<{ id: number | bigint }[]>(sql, ...params)).map((r) => Number(r.id));
          // The page's rows in one findMany with what the query selects under edges.node.
          const rows = (await ctx.db.description.findMany({ ...select, where: { id: { in: ids } } })) as Description[];
          const byId = new Map(rows.map((d) => [d.id, d]));
          return ids.map((id) => byId.get(id)).filter((d): d is Description => d !== undefined);
        };
        return resolveCursorConnection(
          {
            args: { first: args.first, last: args.last, after: args.after ?? undefined, before: args.before ?? undefined },
            defaultSize: DEFAULT_REVIEW_PAGE,
            maxSize: MAX_REVIEW_PAGE,
            toCursor: (d: Description) => encodeCursor({ risk: d.qualityRisk, id: d.id }),
          },
          page,
        );
      },
    },
    {},
    {},
  ),
);
