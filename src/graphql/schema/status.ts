import { getStatus, type HeartbeatStatus, type JobCounts, type Status, type SyncSummary } from "../../ops/status.js";
import { builder } from "../builder.js";
import { SyncRunStatusEnum } from "./enums.js";

const SyncSummaryRef = builder.objectRef<SyncSummary>("SyncSummary").implement({
  description: "One sync run and what it did.",
  fields: (t) => ({
    id: t.exposeInt("id"),
    status: t.expose("status", { type: SyncRunStatusEnum }),
    trigger: t.exposeString("trigger", { description: '"manual", "schedule" or "startup".' }),
    full: t.exposeBoolean("full"),
    creators: t.exposeStringList("creators"),
    startedAt: t.expose("startedAt", { type: "DateTime" }),
    finishedAt: t.expose("finishedAt", { type: "DateTime", nullable: true }),
    durationSeconds: t.exposeFloat("durationSeconds", { description: "To the finish, or to now while running." }),
    seen: t.exposeInt("seen"),
    created: t.exposeInt("created"),
    updated: t.exposeInt("updated"),
    unchanged: t.exposeInt("unchanged"),
    removed: t.exposeInt("removed"),
    skippedNoImage: t.exposeInt("skippedNoImage"),
    failed: t.exposeInt("failed"),
    imagesDownloaded: t.exposeInt("imagesDownloaded"),
    imagesUnchanged: t.exposeInt("imagesUnchanged"),
    jobsQueued: t.exposeInt("jobsQueued"),
    error: t.exposeString("error", { nullable: true }),
  }),
});

const JobCountsRef = builder.objectRef<JobCounts>("JobStatusCounts").implement({
  fields: (t) => ({
    queued: t.exposeInt("queued"),
    running: t.exposeInt("running"),
    succeeded: t.exposeInt("succeeded"),
    failed: t.exposeInt("failed"),
    cancelled: t.exposeInt("cancelled"),
  }),
});

const ModuleDtypeRef = builder.objectRef<{ module: string; dtype: string }>("HeartbeatDtype").implement({
  fields: (t) => ({ module: t.exposeString("module"), dtype: t.exposeString("dtype") }),
});

const HeartbeatRef = builder.objectRef<HeartbeatStatus>("ProcessHeartbeat").implement({
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
    modelStatus: t.exposeString("modelStatus", { nullable: true, description: '"loaded", "loading", "missing" or "error".' }),
    modelError: t.exposeString("modelError", { nullable: true }),
    modelId: t.exposeString("modelId", { nullable: true }),
    modelRevision: t.exposeString("modelRevision", { nullable: true }),
    dtypes: t.field({
      type: [ModuleDtypeRef],
      nullable: true,
      resolve: (h) => (h.dtypes ? Object.entries(h.dtypes).map(([module, dtype]) => ({ module, dtype })) : null),
    }),
    device: t.exposeString("device", { nullable: true }),
  }),
});

const StatusRef = builder.objectRef<Status>("Status").implement({
  description: "What an operator asks first: syncs, jobs, workers, throughput and the backlog.",
  fields: (t) => ({
    now: t.expose("now", { type: "DateTime" }),
    lastSync: t.field({ type: SyncSummaryRef, nullable: true, description: "The most recent sync run, finished or not.", resolve: (s) => s.lastSync }),
    lastSuccessfulSync: t.field({ type: SyncSummaryRef, nullable: true, resolve: (s) => s.lastSuccessfulSync }),
    nextSyncAt: t.expose("nextSyncAt", { type: "DateTime", nullable: true, description: "When SYNC_CRON fires next." }),
    jobs: t.field({ type: JobCountsRef, resolve: (s) => s.jobs }),
    heartbeats: t.field({ type: [HeartbeatRef], resolve: (s) => s.heartbeats }),
    workerAlive: t.boolean({
      description: "At least one describe worker (in `artdesc worker`, `daemon` or `start`) has a fresh heartbeat.",
      resolve: (s) => s.heartbeats.some((h) => h.alive),
    }),
    descriptionsLastHour: t.exposeInt("descriptionsLastHour", { description: "Model descriptions written in the last hour." }),
    averageDescriptionSeconds: t.exposeFloat("averageDescriptionSeconds", { nullable: true }),
    backlog: t.exposeInt("backlog", { description: "Queued and running jobs." }),
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
