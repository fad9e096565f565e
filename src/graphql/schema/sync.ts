import { nextCronMatch } from "../../jobs/cron.js";
import { byKey, connectionPageSizes, pageSize } from "../limits/page-size.js";
import { builder } from "../builder.js";
import { SyncRunStatusEnum } from "./enums.js";

const MAX_SYNC_RUNS = 100;
export const DEFAULT_SYNC_RUNS = 20;

builder.prismaObject("SyncFailure", {
  description: "A work or image that failed in a sync run; the rest of the run went on.",
  fields: (t) => ({
    stage: t.exposeString("stage", { description: "inventory, details, write, imageinfo, download, normalise or removal." }),
    itemQid: t.exposeString("itemQid", { nullable: true }),
    fileTitle: t.exposeString("fileTitle", { nullable: true }),
    reason: t.exposeString("reason"),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
  }),
});

export const SyncRunRef = builder.prismaNode("SyncRun", {
  id: { field: "id" },
  description: "One sync with Wikidata and Commons, and what it found.",
  fields: (t) => ({
    number: t.exposeInt("id", { description: "The run's number (SyncRun.id in the database; `artdesc status` and the logs' runId)." }),
    status: t.expose("status", { type: SyncRunStatusEnum }),
    trigger: t.exposeString("trigger", { description: "manual, schedule or startup." }),
    full: t.exposeBoolean("full", {
      description: "Labels and every image's Commons record were refreshed (by --full, or when the last such run is a week old); --full also re-reads every work.",
    }),
    creators: t.field({ type: ["String"], select: { creators: true }, resolve: (r) => JSON.parse(r.creators) as string[] }),
    startedAt: t.expose("startedAt", { type: "DateTime" }),
    finishedAt: t.expose("finishedAt", { type: "DateTime", nullable: true }),
    durationSeconds: t.float({
      description: "To the finish, or to now while running.",
      select: { startedAt: true, finishedAt: true },
      resolve: (r) => ((r.finishedAt ?? new Date()).getTime() - r.startedAt.getTime()) / 1000,
    }),
    seen: t.exposeInt("seen", { description: "Works in the inventories." }),
    created: t.exposeInt("created"),
    updated: t.exposeInt("updated", { description: "Works already in the mirror whose Wikidata revision or attribution changed (and works that came back)." }),
    unchanged: t.exposeInt("unchanged", { description: "Works whose revision and attribution had not changed (a full run reads them again all the same)." }),
    removed: t.exposeInt("removed", { description: "Works that left the inventory (merged, deleted or no longer by the creator)." }),
    skippedNoImage: t.exposeInt("skippedNoImage", { description: "Works written without any image." }),
    failed: t.exposeInt("failed"),
    imagesDownloaded: t.exposeInt("imagesDownloaded"),
    imagesUnchanged: t.exposeInt("imagesUnchanged"),
    jobsQueued: t.exposeInt("jobsQueued"),
    error: t.exposeString("error", { nullable: true, description: "Why the run failed as a whole." }),
    failures: t.relation("failures", {
      description: `The run's failures, oldest first: the first \`limit\` (default ${DEFAULT_FAILURES}, at most ${MAX_FAILURES}); \`failed\` counts them all.`,
      args: { limit: t.arg.int({ defaultValue: DEFAULT_FAILURES }) },
      query: (args) => ({ orderBy: { id: "asc" }, take: pageSize("limit", args.limit, DEFAULT_FAILURES, MAX_FAILURES) }),
    }),
  }),
});

const DEFAULT_FAILURES = 100;
const MAX_FAILURES = 1000;

builder.queryFields((t) => ({
  syncRuns: t.prismaField({
    type: ["SyncRun"],
    description: "Sync runs, newest first.",
    args: { limit: t.arg.int({ defaultValue: DEFAULT_SYNC_RUNS, description: `At most ${MAX_SYNC_RUNS}.` }) },
    resolve: (query, _root, args, ctx) => {
      const limit = pageSize("limit", args.limit, DEFAULT_SYNC_RUNS, MAX_SYNC_RUNS);
      return ctx.db.syncRun.findMany({ ...query, orderBy: { id: "desc" }, take: limit });
    },
  }),
  syncRunsConnection: t.prismaConnection(
    {
      type: "SyncRun",
      cursor: "id",
      description: `Sync runs as a Relay connection, newest first: pages of up to ${MAX_SYNC_RUNS} (${DEFAULT_SYNC_RUNS} unless first or last is given).`,
      maxSize: MAX_SYNC_RUNS,
      defaultSize: DEFAULT_SYNC_RUNS,
      resolve: (query, _root, args, ctx) => {
        connectionPageSizes(args, MAX_SYNC_RUNS);
        // By key, as jobs: a cursor's run may have been pruned since.
        const page = byKey(query, args, "desc");
        return ctx.db.syncRun.findMany({ ...page.query, where: page.where, orderBy: { id: "desc" } });
      },
    },
    {},
    {},
  ),
  lastSyncRun: t.prismaField({
    type: "SyncRun",
    nullable: true,
    description: "The newest sync run, whatever its status.",
    resolve: (query, _root, _args, ctx) => ctx.db.syncRun.findFirst({ ...query, orderBy: { id: "desc" } }),
  }),
  nextSyncAt: t.field({
    type: "DateTime",
    description: "When the schedule (SYNC_CRON in SYNC_TIMEZONE) next starts a sync.",
    resolve: (_root, _args, ctx) => nextCronMatch(ctx.config.SYNC_CRON, ctx.config.SYNC_TIMEZONE),
  }),
}));
