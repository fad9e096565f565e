import type { IncomingMessage, ServerResponse } from "node:http";
import { collectDefaultMetrics, Counter, Gauge, type Metric, Registry } from "prom-client";
import type { Db } from "../db.js";
import { jobWatchStats } from "../graphql/subscriptions.js";
import { currentQualityCounts, reviewCounts } from "../review/stats.js";
import type { RouteHandler } from "../server.js";
import { dbTime } from "../store/db-clock.js";
import { dialect } from "../store/sql.js";
import { supersededHeartbeats } from "./status.js";

/** Upper bounds (seconds) of the description time histogram. */
export const DESCRIPTION_SECONDS_BUCKETS = [1, 2, 5, 10, 20, 30, 60, 120, 300, 600];

const n = (v: number | bigint | null | undefined) => Number(v ?? 0);

/**
 * Prometheus metrics for /metrics. Syncs and descriptions happen in other components and
 * processes (daemon, worker), so every value is read from the database when scraped, never
 * counted in this process's memory: the figures agree whichever process serves /metrics and
 * survive restarts. The subscription gauges are the exception: open streams live in the API
 * process that holds them.
 */
export function createMetricsRegistry(db: Db, options: { defaultMetrics?: boolean } = {}): Registry {
  const register = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register, prefix: "artdesc_" });

  new Counter({
    name: "artdesc_syncs_total",
    help: "Finished sync runs by outcome (SUCCEEDED, PARTIAL, FAILED, ABORTED).",
    labelNames: ["status"],
    registers: [register],
    async collect() {
      const groups = await db.syncRun.groupBy({ by: ["status"], where: { status: { not: "RUNNING" } }, _count: { _all: true } });
      this.reset();
      for (const s of ["SUCCEEDED", "PARTIAL", "FAILED", "ABORTED"]) this.inc({ status: s }, groups.find((g) => g.status === s)?._count._all ?? 0);
    },
  });

  new Gauge({
    name: "artdesc_sync_running",
    help: "1 while a sync run is in progress.",
    registers: [register],
    async collect() {
      this.set((await db.syncRun.count({ where: { status: "RUNNING" } })) > 0 ? 1 : 0);
    },
  });

  new Counter({
    name: "artdesc_sync_failures_total",
    help: "Works or images that failed in sync runs, by stage (inventory, details, write, imageinfo, download, normalise, removal).",
    labelNames: ["stage"],
    registers: [register],
    async collect() {
      const groups = await db.syncFailure.groupBy({ by: ["stage"], _count: { _all: true } });
      this.reset();
      for (const g of groups) this.inc({ stage: g.stage }, g._count._all);
    },
  });

  new Counter({
    name: "artdesc_descriptions_total",
    help: "Descriptions written, by source (MODEL, HUMAN); experiments' texts are not counted.",
    labelNames: ["source"],
    registers: [register],
    async collect() {
      const groups = await db.description.groupBy({ by: ["source"], where: { experimentId: null }, _count: { _all: true } });
      this.reset();
      for (const s of ["MODEL", "HUMAN"]) this.inc({ source: s }, groups.find((g) => g.source === s)?._count._all ?? 0);
    },
  });

  new Counter({
    name: "artdesc_description_flags_total",
    help: "Current descriptions of active artworks carrying each quality flag (docs/quality.md); counted at scrape time.",
    labelNames: ["flag"],
    registers: [register],
    async collect() {
      const counts = await currentQualityCounts(db);
      this.reset();
      for (const { flag, count } of counts.byFlag) this.inc({ flag }, count);
    },
  });

  new Counter({
    name: "artdesc_reviews_total",
    help: "Verdicts given on descriptions (reviewDescription), by verdict (APPROVED, REJECTED, NEEDS_WORK).",
    labelNames: ["verdict"],
    registers: [register],
    async collect() {
      const counts = await reviewCounts(db);
      this.reset();
      for (const { verdict, count } of counts) this.inc({ verdict }, count);
    },
  });

  new Gauge({
    name: "artdesc_queue_depth",
    help: "Describe jobs waiting (queued) and in progress (running).",
    labelNames: ["status"],
    registers: [register],
    async collect() {
      const groups = await db.job.groupBy({ by: ["status"], where: { status: { in: ["QUEUED", "RUNNING"] } }, _count: { _all: true } });
      for (const s of ["QUEUED", "RUNNING"] as const) {
        this.set({ status: s.toLowerCase() }, groups.find((g) => g.status === s)?._count._all ?? 0);
      }
    },
  });

  new Gauge({
    name: "artdesc_heartbeat_age_seconds",
    help: "Seconds since each daemon or worker process last beat (a killed process's row is left out once the same role restarted on its host).",
    labelNames: ["role", "id"],
    registers: [register],
    async collect() {
      const beats = await db.heartbeat.findMany({ select: { id: true, role: true, hostname: true, startedAt: true, beatAt: true } });
      this.reset();
      const now = (await dbTime(db)).getTime();
      // An alert on the age would otherwise fire for the week such a row is kept, after every restart.
      const superseded = supersededHeartbeats(beats);
      for (const b of beats) if (!superseded.has(b.id)) this.set({ role: b.role, id: b.id }, Math.max(0, (now - b.beatAt.getTime()) / 1000));
    },
  });

  new Gauge({
    name: "artdesc_subscriptions_active",
    help: "jobUpdated streams open in the API process that serves this scrape.",
    registers: [register],
    collect() {
      this.set(jobWatchStats(db).streams);
    },
  });

  new Gauge({
    name: "artdesc_subscriptions_polled_jobs",
    help: "Jobs the API process that serves this scrape polls for its open streams (one poll loop each).",
    registers: [register],
    collect() {
      this.set(jobWatchStats(db).watchedKeys);
    },
  });

  register.registerMetric(descriptionSecondsHistogram(db) as unknown as Metric);
  return register;
}

/**
 * artdesc_description_seconds: a histogram built by the database from every model description's
 * recorded total time (timings.totalMs). prom-client's Histogram only takes observations one at
 * a time, so this metric hands the registry its bucket counts directly.
 */
function descriptionSecondsHistogram(db: Db) {
  const name = "artdesc_description_seconds";
  const help = "Time to describe one image (model descriptions, from their recorded timings; experiments' texts not counted).";
  const sql = dialect(db);
  const buckets = DESCRIPTION_SECONDS_BUCKETS.map((le, i) => `${sql.countWhere(`s <= ${le}`)} AS b${i}`).join(", ");
  // Texts whose timings are not JSON or have no numeric totalMs are left out (s is NULL).
  const query = `SELECT COUNT(s) AS count, SUM(s) AS sum, ${buckets}
         FROM (SELECT ${sql.jsonNumber("timings", "totalMs")} / 1000.0 AS s FROM "Description"
               WHERE source = 'MODEL' AND "experimentId" IS NULL) t`;
  return {
    name,
    help,
    type: "histogram",
    aggregator: "sum",
    async get() {
      const [row] = await db.$queryRawUnsafe<Record<string, number | bigint | null>[]>(query);
      const values = DESCRIPTION_SECONDS_BUCKETS.map((le, i) => ({ metricName: `${name}_bucket`, labels: { le }, value: n(row?.[`b${i}`]) }));
      values.push({ metricName: `${name}_bucket`, labels: { le: "+Inf" as unknown as number }, value: n(row?.count) });
      return {
        name,
        help,
        type: "histogram",
        aggregator: "sum",
        values: [...values, { metricName: `${name}_sum`, labels: {}, value: Number(row?.sum ?? 0) }, { metricName: `${name}_count`, labels: {}, value: n(row?.count) }],
      };
    },
  };
}

/**
 * How long one reading of the figures answers every scrape (ms), counted from when it ended. A
 * reading runs several aggregate queries over whole tables (about a second at 200,000
 * descriptions), and anyone may ask for /metrics: scrapes in a loop, however many, then cost one
 * reading per 10 s, and a reading in progress is shared, never started twice. Prometheus scrapes
 * every 15 s or more.
 */
export const METRICS_REUSE_MS = 10_000;

/** GET /metrics in Prometheus text format. */
export function metricsRoute(register: Registry, reuseMs = METRICS_REUSE_MS): RouteHandler {
  let kept: { until: number; body: Promise<string> } | null = null;
  const read = () => {
    if (kept && performance.now() < kept.until) return kept.body;
    const entry = { until: Number.POSITIVE_INFINITY, body: register.metrics() };
    kept = entry;
    entry.body.then(
      () => void (entry.until = performance.now() + reuseMs),
      // A failed reading is not kept for the next scrape.
      () => {
        if (kept === entry) kept = null;
      },
    );
    return entry.body;
  };
  return async (req: IncomingMessage, res: ServerResponse) => {
    if (new URL(req.url ?? "/", "http://local").pathname !== "/metrics") return false;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return true;
    }
    const body = await read();
    res.writeHead(200, { "content-type": register.contentType }).end(req.method === "HEAD" ? undefined : body);
    return true;
  };
}
