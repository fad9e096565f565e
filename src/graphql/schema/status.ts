import { getStatus, type HeartbeatStatus, type JobCounts, type Status } from "../../ops/status.js";
import { builder } from "../builder.js";
import { ModuleDtype } from "./description.js";
import { SyncRunRef } from "./sync.js";

export const JobCountsRef = builder.objectRef<JobCounts>("JobStatusCounts").implement({
  fields: (t) => ({
    queued: t.exposeInt("queued"),
    running: t.exposeInt("running"),
    succeeded: t.exposeInt("succeeded"),
    failed: t.exposeInt("failed"),
    cancelled: t.exposeInt("cancelled"),
  }),
});

/** The one heartbeat type: `status { heartbeats }` and `generationDefaults { model workers }`. */
export const HeartbeatRef = builder.objectRef<HeartbeatStatus>("ProcessHeartbeat").implement({
  description: "A daemon or worker process's liveness, and for a worker the model it has loaded.",
  fields: (t) => ({
    id: t.exposeString("id"),
    role: t.exposeString("role", { description: '"worker", "daemon" or "start".' }),
    pid: t.exposeInt("pid"),
    hostname: t.exposeString("hostname"),
    startedAt: t.expose("startedAt", { type: "DateTime" }),
    beatAt: t.expose("beatAt", { type: "DateTime" }),
    ageSeconds: t.exposeFloat("ageSeconds"),
    alive: t.exposeBoolean("alive", { description: "Beat within HEARTBEAT_STALE_S seconds." }),
    modelStatus: t.exposeString("modelStatus", { nullable: true, description: '"loaded", "loading", "missing" or "error"; null for a process without a worker.' }),
    modelError: t.exposeString("modelError", { nullable: true, description: "Why the model is missing (with the command that fetches it) or broken." }),
    modelId: t.exposeString("modelId", { nullable: true }),
    modelRevision: t.exposeString("modelRevision", { nullable: true }),
    dtypes: t.field({
      type: [ModuleDtype],
      nullable: true,
      description: "Null until a model is loaded.",
      resolve: (h) => (h.dtypes ? Object.entries(h.dtypes).map(([module, dtype]) => ({ module, dtype })) : null),
    }),
    device: t.exposeString("device", { nullable: true }),
    embedModelId: t.exposeString("embedModelId", {
      nullable: true,
      description: "The vectors its background embedder makes while the embedding model is loaded: EMBED_MODEL_ID, with the dtype unless fp32, and after @ the weights' revision (the commit `models pull --embed` recorded). Every process should show the same: embedders that differ hold off.",
    }),
  }),
});

export const StatusRef = builder.objectRef<Status>("Status").implement({
  description: "What an operator asks first: syncs, jobs, workers, throughput and the backlog.",
  fields: (t) => ({
    now: t.expose("now", { type: "DateTime" }),
    lastSync: t.field({
      type: SyncRunRef,
      nullable: true,
      description: "The most recent sync run, finished or not.",
      resolve: (s, _args, ctx) => (s.lastSync ? ctx.db.syncRun.findUnique({ where: { id: s.lastSync.runId } }) : null),
    }),
    lastSuccessfulSync: t.field({
      type: SyncRunRef,
      nullable: true,
      resolve: (s, _args, ctx) => (s.lastSuccessfulSync ? ctx.db.syncRun.findUnique({ where: { id: s.lastSuccessfulSync.runId } }) : null),
    }),
    nextSyncAt: t.expose("nextSyncAt", { type: "DateTime", nullable: true, description: "When SYNC_CRON fires next." }),
    jobs: t.field({ type: JobCountsRef, resolve: (s) => s.jobs }),
    heartbeats: t.field({ type: [HeartbeatRef], resolve: (s) => s.heartbeats }),
    workerAlive: t.boolean({
      description: "At least one describe worker (in `artdesc worker`, `daemon` or `start`) has a fresh heartbeat.",
      resolve: (s) => s.heartbeats.some((h) => h.alive),
    }),
    descriptionsLastHour: t.exposeInt("descriptionsLastHour", { description: "Model descriptions written in the last hour." }),
    averageDescriptionSeconds: t.exposeFloat("averageDescriptionSeconds", { nullable: true }),
    backlog: t.exposeInt("backlog", { description: "Queued and running describe jobs (not the embed job)." }),
    backlogSeconds: t.exposeInt("backlogSeconds", {
      nullable: true,
      description: "Seconds until the backlog is done at the last hour's rate; null when nothing was described in the last hour.",
    }),
    backlogDoneAt: t.expose("backlogDoneAt", { type: "DateTime", nullable: true }),
  }),
});

builder.queryField("status", (t) =>
  t.field({
    type: StatusRef,
    resolve: (_root, _args, ctx) => getStatus(ctx.db, {
        staleAfterS: ctx.config.HEARTBEAT_STALE_S,
        schedule: { cron: ctx.config.SYNC_CRON, timezone: ctx.config.SYNC_TIMEZONE },
      }),
  }),
);
