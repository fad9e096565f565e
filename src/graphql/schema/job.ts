import { encodeGlobalID } from "@pothos/plugin-relay";
import type { Config } from "../../config.js";
import type { Db } from "../../db.js";
import { type GenerationParams, PARAM_NAMES, paramsFromConfig } from "../../generation/params.js";
import { storedParams } from "../../generation/reproduction.js";
import type { Job } from "../../generated/prisma/client.js";
import { heartbeatStatus, type HeartbeatStatus } from "../../ops/status.js";
import { MAX_STATUS_FILTER } from "../../jobs/input-limits.js";
import { inputLimit, RESOLVER_CHECKED } from "../limits/input-limits.js";
import { ArtworkWithoutImageError, JobNotCancellableError, parseJobParams, resolveParams } from "../../jobs/queue.js";
import { byKey, type ConnectionArgs, connectionPageSizes } from "../limits/page-size.js";
import { builder } from "../builder.js";
import { BadUserInputError, FOREIGN_CURSOR_MESSAGE, InvalidIdError } from "../errors.js";
import { parseJobId } from "../ids.js";
import { trustedProxies } from "../../api/client-address.js";
import { acceptsEventStream, jobWatch, SubscriptionNotAcceptableError, transportOf } from "../subscriptions.js";
import { JobStatusEnum } from "./enums.js";
import { ErrorInterface } from "./errors.js";
import { GenerationSettings } from "./generation.js";
import { HeartbeatRef } from "./status.js";
import { dbTime } from "../../store/db-clock.js";

const MAX_JOBS_PAGE = 500;
export const DEFAULT_JOBS_PAGE = 50;

builder.objectType(ArtworkWithoutImageError, {
  name: "ArtworkWithoutImageError",
  description: "The artwork has no downloaded main image, so there is nothing to describe.",
  interfaces: [ErrorInterface],
  isTypeOf: (v) => v instanceof ArtworkWithoutImageError,
  fields: (t) => ({ qid: t.exposeString("qid") }),
});

builder.objectType(JobNotCancellableError, {
  name: "JobNotCancellableError",
  description: "The job already finished (succeeded, failed or was cancelled).",
  interfaces: [ErrorInterface],
  isTypeOf: (v) => v instanceof JobNotCancellableError,
  fields: (t) => ({ status: t.expose("status", { type: JobStatusEnum }) }),
});

/** The description's columns Job.params reads once the job wrote it. */
const RESULT_PARAM_COLUMNS = Object.fromEntries([...PARAM_NAMES].map((n) => [n, true])) as { [K in (typeof PARAM_NAMES)[number]]: true };

export const JobRef = builder.prismaNode("Job", {
  id: { field: "id" },
  description: "A describe job: queued, running (with progress), then succeeded, failed or cancelled.",
  fields: (t) => ({
    number: t.exposeInt("id", { description: "The database id; cancelJob and jobUpdated accept it too." }),
    kind: t.exposeString("kind"),
    status: t.expose("status", { type: JobStatusEnum }),
    priority: t.exposeInt("priority", { description: "Higher runs first: 100 a person's request, 50 describeMissing, 0 nightly." }),
    attempts: t.exposeInt("attempts"),
    maxAttempts: t.exposeInt("maxAttempts"),
    runAfter: t.expose("runAfter", { type: "DateTime", description: "Not started before this (backoff after a failed attempt)." }),
    error: t.exposeString("error", { nullable: true, description: "The last attempt's error." }),
    progress: t.exposeInt("progress", { description: "Tokens generated so far." }),
    progressTotal: t.exposeInt("progressTotal", { nullable: true, description: "max_new_tokens of the job." }),
    force: t.exposeBoolean("force", { description: "Replaces a person's text when done." }),
    forcesOver: t.field({
      type: "ID",
      nullable: true,
      description:
        "With force: the description current when the job was asked for (a Description id), the one it may replace though a person wrote or approved it. " +
        "A text a person wrote or approved after that is kept. Null without force.",
      resolve: (j) => (j.force && j.forceOverId != null ? encodeGlobalID("Description", j.forceOverId) : null),
    }),
    reason: t.exposeString("reason", { nullable: true }),
    requestedBy: t.exposeString("requestedBy", { nullable: true }),
    requestedParams: t.field({
      type: "JSON",
      description: "The parameters asked for; the others take the defaults of the worker that runs the job (DESCRIBE_*).",
      resolve: (j) => parseJobParams(j.params),
    }),
    params: t.field({
      type: GenerationSettings,
      description:
        "The parameters the job ran with once it wrote its description (read from it); before that, those asked for over this API's " +
        "defaults (generationDefaults), which a worker configured otherwise replaces with its own.",
      select: { params: true, result: { select: RESULT_PARAM_COLUMNS } },
      resolve: (j, _args, ctx) => (j.result ? storedParams(j.result) : null) ?? resolveParams(parseJobParams(j.params), ctx.config),
    }),
    artwork: t.relation("artwork", { nullable: true }),
    image: t.relation("image", { nullable: true }),
    description: t.relation("result", { nullable: true, description: "The description the job wrote." }),
    heartbeatAt: t.expose("heartbeatAt", { type: "DateTime", nullable: true }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    startedAt: t.expose("startedAt", { type: "DateTime", nullable: true }),
    finishedAt: t.expose("finishedAt", { type: "DateTime", nullable: true }),
  }),
});

/** Artwork.jobs' page sizes: a larger first or last is refused, as on every connection, never cut to the maximum. */
const DEFAULT_ARTWORK_JOBS_PAGE = 20;
const MAX_ARTWORK_JOBS_PAGE = 100;

builder.prismaObjectField("Artwork", "jobs", (t) =>
  t.relatedConnection("jobs", {
    cursor: "id",
    description: `Describe jobs of this artwork, newest first (pages of ${DEFAULT_ARTWORK_JOBS_PAGE} unless first or last says, at most ${MAX_ARTWORK_JOBS_PAGE}).`,
    maxSize: MAX_ARTWORK_JOBS_PAGE,
    defaultSize: DEFAULT_ARTWORK_JOBS_PAGE,
    // The connection's own arguments (first, last) come in here; Pothos types only the field's own.
    query: (args) => (connectionPageSizes(args as ConnectionArgs, MAX_ARTWORK_JOBS_PAGE), { orderBy: { id: "desc" } }),
  }),
);

interface Defaults {
  params: GenerationParams;
  workers: HeartbeatStatus[];
}

const GenerationDefaultsRef = builder.objectRef<Defaults>("GenerationDefaults").implement({
  description: "What a description made now would use: the configured parameters and the workers' model.",
  fields: (t) => ({
    params: t.field({ type: GenerationSettings, resolve: (d) => d.params }),
    model: t.field({
      type: HeartbeatRef,
      nullable: true,
      description: "The freshest worker heartbeat (null when no worker ever ran).",
      resolve: (d) => d.workers[0] ?? null,
    }),
    workers: t.field({ type: [HeartbeatRef], description: "Every recorded worker, freshest first.", resolve: (d) => d.workers }),
  }),
});

async function loadDefaults(db: Db, config: Config): Promise<Defaults> {
  const beats = await db.heartbeat.findMany({ where: { modelStatus: { not: null } }, orderBy: { beatAt: "desc" }, take: 20 });
  // Heartbeats are written on the database's clock (store/db-clock.ts).
  const now = await dbTime(db);
  return { params: paramsFromConfig(config), workers: beats.map((beat) => heartbeatStatus(beat, now, config.HEARTBEAT_STALE_S)) };
}

builder.queryFields((t) => ({
  job: t.prismaField({
    type: "Job",
    nullable: true,
    args: { id: t.arg.id({ required: true, description: "Global id or number.", extensions: inputLimit(RESOLVER_CHECKED) }) },
    errors: { types: [InvalidIdError], directResult: true },
    resolve: (query, _root, args, ctx) => ctx.db.job.findUnique({ ...query, where: { id: parseJobId(String(args.id)) } }),
  }),
  jobs: t.prismaConnection(
    {
      type: "Job",
      cursor: "id",
      description: "Jobs, newest first.",
      args: { status: t.arg({ type: [JobStatusEnum] }) },
      maxSize: MAX_JOBS_PAGE,
      defaultSize: DEFAULT_JOBS_PAGE,
      resolve: (query, _root, args, ctx) => {
        connectionPageSizes(args, MAX_JOBS_PAGE);
        if (args.status != null && args.status.length > MAX_STATUS_FILTER) {
          throw new BadUserInputError("status", `status may name at most ${MAX_STATUS_FILTER} statuses (got ${args.status.length})`);
        }
        // By key rather than by Prisma's cursor row: finished embed jobs are pruned after a day, and
        // a cursor naming a pruned job made Prisma answer an empty page, ending the list early.
        const page = byKey(query, args, "desc");
        return ctx.db.job.findMany({ ...page.query, where: { ...(args.status?.length ? { status: { in: args.status } } : {}), ...page.where }, orderBy: { id: "desc" } });
      },
    },
    {},
    {},
  ),
  generationDefaults: t.field({
    type: GenerationDefaultsRef,
    resolve: (_root, _args, ctx) => loadDefaults(ctx.db, ctx.config),
  }),
}));

builder.subscriptionFields((t) => ({
  jobUpdated: t.field({
    type: JobRef,
    description:
      "The job now and after every change of status or progress; the last event carries the final state and the description, then the stream ends. " +
      "Reads the database, so it works whichever process runs the worker. Each client may hold GRAPHQL_MAX_SUBSCRIPTIONS_PER_CLIENT streams at once " +
      "(error code TOO_MANY_SUBSCRIPTIONS beyond); a slow client may skip intermediate progress, never the final state.",
    args: { id: t.arg.id({ required: true, description: "Global id or number.", extensions: inputLimit(RESOLVER_CHECKED) }) },
    subscribe: (_root, args, ctx) => {
      let id: number;
      try {
        id = parseJobId(String(args.id));
      } catch (err) {
        // A subscription field has no result union: the typed error becomes a GraphQL input error.
        if (err instanceof InvalidIdError) throw new BadUserInputError("id", err.message);
        throw err;
      }
      const { client, signal, accept } = transportOf(ctx, trustedProxies(ctx.config.TRUSTED_PROXIES));
      if (!acceptsEventStream(accept)) throw new SubscriptionNotAcceptableError(accept ?? "");
      return jobWatch(ctx.db).watch(id, {
        client,
        signal,
        limits: { perClient: ctx.config.GRAPHQL_MAX_SUBSCRIPTIONS_PER_CLIENT, total: ctx.config.GRAPHQL_MAX_SUBSCRIPTIONS },
      });
    },
    resolve: (job: Job) => job,
  }),
}));
