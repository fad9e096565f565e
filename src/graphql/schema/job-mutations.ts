import { encodeGlobalID } from "@pothos/plugin-relay";
import { DescriptionConflictError, setHumanDescription } from "../../jobs/descriptions.js";
import { qualitySettings } from "../../quality/store.js";
import { checkText, TEXT_LIMITS, type TextLimit } from "../../jobs/input-limits.js";
import { inputLimit, RESOLVER_CHECKED } from "../limits/input-limits.js";
import {
  ArtworkWithoutImageError,
  cancelJob,
  describableImage,
  enqueueDescribe,
  JobNotCancellableError,
  PRIORITY,
  type QueueRunSummary,
  queueMissing,
  validateParams,
} from "../../jobs/queue.js";
import { ParamOutOfRangeError } from "../../generation/params.js";
import { builder, type Context } from "../builder.js";
import { ConflictError, InvalidIdError, InvalidInputError, NotFoundError, UnauthorizedError } from "../errors.js";
import { parseArtworkId } from "../ids.js";
import { parseDescriptionId, parseJobId } from "../ids.js";
import { GenerationParamsInput } from "./generation.js";

/** Who asked, as recorded on jobs and descriptions: one token means one caller. */
const REQUESTED_BY = "api";

/** A caller's text for argument `field`, checked against its limit (see jobs/input-limits.ts). */
function text(field: string, value: string, limit: TextLimit): string {
  const r = checkText(value, limit);
  if (!r.ok) throw new InvalidInputError(field, `${field} ${r.problem}`);
  return r.text;
}

/** An optional text: unset or blank is null. */
export function optionalText(field: string, value: string | null | undefined, limit: TextLimit): string | null {
  return value == null || value.trim() === "" ? null : text(field, value, limit);
}

/** Every mutation starts here: no token configured means mutations are closed, not open. */
export function requireToken(ctx: Context): void {
  if (!ctx.config.API_TOKEN) throw new UnauthorizedError("Mutations are disabled: the server has no API_TOKEN configured");
  if (!ctx.authorized) throw new UnauthorizedError();
}

/** A `replaces` argument: a Description id, "none" (the work had none), or null (no check). */
function replacesArg(value: string | number | null | undefined): number | "none" | null {
  if (value == null) return null;
  return String(value) === "none" ? "none" : parseDescriptionId(String(value));
}

/** DescriptionConflictError as the API's ConflictError (naming the work); anything else as it is. */
function asConflict(err: unknown): never {
  if (err instanceof DescriptionConflictError) throw new ConflictError(encodeGlobalID("Artwork", err.artworkId), err.message);
  throw err;
}

const QueueSummaryRef = builder.objectRef<QueueRunSummary>("DescribeMissingPayload").implement({
  description: "What describeMissing queued and skipped.",
  fields: (t) => ({
    queued: t.exposeInt("queued"),
    alreadyQueued: t.exposeInt("alreadyQueued"),
    skippedNoImage: t.exposeInt("skippedNoImage", { description: "Works without a downloaded main image." }),
    upToDate: t.exposeInt("upToDate", { description: "Works that already have a model description." }),
    skippedHuman: t.exposeInt("skippedHuman", { description: "Works whose current description is a person's text." }),
  }),
});

async function findArtwork(ctx: Context, rawId: string) {
  const found = await ctx.db.artwork.findUnique({ where: parseArtworkId(rawId), select: { id: true, qid: true } });
  if (!found) throw new NotFoundError(rawId);
  return found;
}

builder.mutationFields((t) => ({
  regenerateDescription: t.prismaField({
    type: "Job",
    description:
      "Queues a new description of the artwork's main image. An identical job still queued is returned instead of a second one. " +
      "The result becomes the current description unless a person wrote or approved the current one; force: true replaces that too " +
      "(the text current when asked: a person's text or approval that comes while the job waits is kept, unless force is asked again).",
    args: {
      id: t.arg.id({ required: true, description: "A QID (Q5432) or an Artwork global id.", extensions: inputLimit(RESOLVER_CHECKED) }),
      params: t.arg({ type: GenerationParamsInput }),
      reason: t.arg.string({ description: `At most ${TEXT_LIMITS.reason.max} characters.`, extensions: inputLimit(RESOLVER_CHECKED) }),
      force: t.arg.boolean({ defaultValue: false }),
      replaces: t.arg.id({
        description:
          "The current description the caller saw (a Description global id or its number), or \"none\" when the work had none; with force, the text meant to be replaced. " +
          "When another text became current meanwhile, the answer is a ConflictError and nothing is queued. Unset: no check.",
        extensions: inputLimit(RESOLVER_CHECKED),
      }),
    },
    errors: {
      types: [UnauthorizedError, NotFoundError, InvalidIdError, ArtworkWithoutImageError, ParamOutOfRangeError, InvalidInputError, ConflictError],
      directResult: true,
    },
    resolve: async (query, _root, args, ctx) => {
      requireToken(ctx);
      const params = validateParams(args.params ?? {}, ctx.config);
      const reason = optionalText("reason", args.reason, TEXT_LIMITS.reason);
      const replaces = replacesArg(args.replaces);
      const artwork = await findArtwork(ctx, String(args.id));
      const image = await ctx.db.image.findFirst({ where: { artworkId: artwork.id, ...describableImage }, select: { id: true } });
      if (!image) throw new ArtworkWithoutImageError(artwork.qid);
      const { job } = await enqueueDescribe(ctx.db, ctx.config, {
        artworkId: artwork.id,
        imageId: image.id,
        params,
        force: args.force ?? false,
        reason,
        requestedBy: REQUESTED_BY,
        priority: PRIORITY.request,
        replaces,
      }).catch(asConflict);
      return ctx.db.job.findUniqueOrThrow({ ...query, where: { id: job.id } });
    },
  }),
  describeMissing: t.field({
    type: QueueSummaryRef,
    description: "Queues every active artwork (of one creator, if given) that has an image and no description.",
    args: {
      creator: t.arg.string({
        description: `A creator QID ("Q5432") or words of its labels ("goya"); at most ${TEXT_LIMITS.creator.max} characters.`,
        extensions: inputLimit(RESOLVER_CHECKED),
      }),
    },
    errors: { types: [UnauthorizedError, InvalidInputError], directResult: true },
    resolve: async (_root, args, ctx) => {
      requireToken(ctx);
      const creator = optionalText("creator", args.creator, TEXT_LIMITS.creator);
      return queueMissing(ctx.db, ctx.config, { creator }, REQUESTED_BY);
    },
  }),
  cancelJob: t.prismaField({
    type: "Job",
    description: "Cancels a queued job, or a running one (its worker stops at the next token and writes nothing).",
    args: { id: t.arg.id({ required: true, description: "Global id or number.", extensions: inputLimit(RESOLVER_CHECKED) }) },
    errors: { types: [UnauthorizedError, NotFoundError, InvalidIdError, JobNotCancellableError], directResult: true },
    resolve: async (query, _root, args, ctx) => {
      requireToken(ctx);
      const id = parseJobId(String(args.id));
      const job = await cancelJob(ctx.db, id);
      if (!job) throw new NotFoundError(String(args.id), `No job with id "${String(args.id)}"`);
      return ctx.db.job.findUniqueOrThrow({ ...query, where: { id } });
    },
  }),
  setDescription: t.prismaField({
    type: "Description",
    description: "Records a person's text as the artwork's current description. The nightly run never replaces it; only regenerateDescription with force: true does.",
    args: {
      id: t.arg.id({ required: true, description: "A QID (Q5432) or an Artwork global id.", extensions: inputLimit(RESOLVER_CHECKED) }),
      text: t.arg.string({
        required: true,
        description: `At most ${TEXT_LIMITS.descriptionText.max} characters; newlines and tabs allowed.`,
        extensions: inputLimit(RESOLVER_CHECKED),
      }),
      author: t.arg.string({ description: `One line, at most ${TEXT_LIMITS.author.max} characters.`, extensions: inputLimit(RESOLVER_CHECKED) }),
      reason: t.arg.string({ description: `At most ${TEXT_LIMITS.reason.max} characters.`, extensions: inputLimit(RESOLVER_CHECKED) }),
      replaces: t.arg.id({
        description:
          "The current description the text was edited from (a Description global id or its number), or \"none\" when the work had none. " +
          "When another text became current meanwhile, the answer is a ConflictError and nothing is saved. Unset: the text replaces whatever is current.",
        extensions: inputLimit(RESOLVER_CHECKED),
      }),
    },
    errors: { types: [UnauthorizedError, NotFoundError, InvalidIdError, InvalidInputError, ConflictError], directResult: true },
    resolve: async (query, _root, args, ctx) => {
      requireToken(ctx);
      const replaces = replacesArg(args.replaces);
      const description = text("text", args.text, TEXT_LIMITS.descriptionText);
      const author = optionalText("author", args.author, TEXT_LIMITS.author) ?? REQUESTED_BY;
      const reason = optionalText("reason", args.reason, TEXT_LIMITS.reason);
      const artwork = await findArtwork(ctx, String(args.id));
      const d = await setHumanDescription(ctx.db, artwork.id, description, {
        author,
        reason,
        replaces,
        quality: { settings: qualitySettings(ctx.config), log: ctx.log },
      }).catch(asConflict);
      return ctx.db.description.findUniqueOrThrow({ ...query, where: { id: d.id } });
    },
  }),
}));
