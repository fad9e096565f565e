import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import type { Logger } from "../../src/log.js";
import { logDescription, logSyncRun } from "../../src/ops/log-events.js";
import { createMetricsRegistry, metricsRoute } from "../../src/ops/metrics.js";

/** How long a reading answers scrapes here (the default, METRICS_REUSE_MS, is 10 s). */
const REUSE_MS = 300;
import { createHttpApp } from "../../src/server.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { serveOnFreePort } from "../support/http.js";
import { makeArtwork } from "../support/factories.js";

let t: TestDb;
let base: string;
let close: () => void;

beforeAll(async () => {
  t = await createTestDb();
  const { server } = createHttpApp({ db: t.db, config: loadConfig({}) }, [metricsRoute(createMetricsRegistry(t.db), REUSE_MS)]);
  ({ base, close } = await serveOnFreePort(server));
});

afterAll(async () => {
  close();
  await t.close();
});

const scrape = async () => {
  const res = await fetch(`${base}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text();
};
const value = (text: string, series: string) => {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line == null ? undefined : Number(line.slice(series.length + 1));
};

describe("/metrics", () => {
  it("reads every figure from the database at scrape time, so other processes' work counts", async () => {
    const empty = await scrape();
    expect(value(empty, 'artdesc_syncs_total{status="SUCCEEDED"}')).toBe(0);
    expect(value(empty, 'artdesc_descriptions_total{source="MODEL"}')).toBe(0);
    expect(value(empty, "artdesc_description_seconds_count")).toBe(0);
    expect(empty).toContain("# TYPE artdesc_description_seconds histogram");
    expect(empty).toContain("artdesc_process_cpu_user_seconds_total");

    // What a daemon and a worker in other processes would have written.
    const run = await t.db.syncRun.create({ data: { status: "SUCCEEDED", finishedAt: new Date() } });
    const bad = await t.db.syncRun.create({ data: { status: "FAILED", finishedAt: new Date(), error: "boom" } });
    await t.db.syncRun.create({ data: { status: "RUNNING" } });
    await t.db.syncFailure.createMany({
      data: [
        { syncRunId: run.id, stage: "download", reason: "404" },
        { syncRunId: bad.id, stage: "download", reason: "timeout" },
        { syncRunId: bad.id, stage: "inventory", reason: "503" },
      ],
    });
    const art = await makeArtwork(t.db);
    for (const ms of [1500, 4000, 9000, 45_000]) {
      await t.db.description.create({ data: { artworkId: art.id, text: "x", source: "MODEL", timings: JSON.stringify({ totalMs: ms }) } });
    }
    await t.db.description.create({ data: { artworkId: art.id, text: "x", source: "MODEL", timings: null } });
    await t.db.job.createMany({ data: [{ status: "QUEUED" }, { status: "QUEUED" }, { status: "RUNNING" }, { status: "SUCCEEDED" }] });
    await t.db.heartbeat.create({ data: { id: "w1", role: "worker", pid: 1, hostname: "h", beatAt: new Date(Date.now() - 30_000) } });
    // A start process killed an hour ago, and the one its supervisor started after it.
    await t.db.heartbeat.create({ data: { id: "s-old", role: "start", pid: 2, hostname: "h", startedAt: new Date(Date.now() - 7_200_000), beatAt: new Date(Date.now() - 3_600_000) } });
    await t.db.heartbeat.create({ data: { id: "s-new", role: "start", pid: 3, hostname: "h", startedAt: new Date(Date.now() - 3_500_000), beatAt: new Date() } });

    // Scrapes within the reuse time of a reading get that reading: a loop of scrapes costs one reading.
    await new Promise((r) => setTimeout(r, REUSE_MS + 50));
    const started = performance.now();
    const before = value(await scrape(), 'artdesc_descriptions_total{source="HUMAN"}');
    await t.db.description.create({ data: { artworkId: art.id, text: "y", source: "HUMAN" } });
    const again = value(await scrape(), 'artdesc_descriptions_total{source="HUMAN"}');
    if (performance.now() - started < REUSE_MS - 100) expect(again).toBe(before);
    await new Promise((r) => setTimeout(r, REUSE_MS + 50));
    const m = await scrape();
    expect(value(m, 'artdesc_syncs_total{status="SUCCEEDED"}')).toBe(1);
    expect(value(m, 'artdesc_syncs_total{status="FAILED"}')).toBe(1);
    expect(value(m, "artdesc_sync_running")).toBe(1);
    expect(value(m, 'artdesc_sync_failures_total{stage="download"}')).toBe(2);
    expect(value(m, 'artdesc_sync_failures_total{stage="inventory"}')).toBe(1);
    expect(value(m, 'artdesc_descriptions_total{source="MODEL"}')).toBe(5);
    expect(value(m, 'artdesc_descriptions_total{source="HUMAN"}')).toBe(1);
    expect(value(m, 'artdesc_description_seconds_bucket{le="1"}')).toBe(0);
    expect(value(m, 'artdesc_description_seconds_bucket{le="2"}')).toBe(1);
    expect(value(m, 'artdesc_description_seconds_bucket{le="5"}')).toBe(2);
    expect(value(m, 'artdesc_description_seconds_bucket{le="10"}')).toBe(3);
    expect(value(m, 'artdesc_description_seconds_bucket{le="60"}')).toBe(4);
    expect(value(m, 'artdesc_description_seconds_bucket{le="+Inf"}')).toBe(4);
    expect(value(m, "artdesc_description_seconds_sum")).toBeCloseTo(59.5);
    expect(value(m, "artdesc_description_seconds_count")).toBe(4);
    expect(value(m, 'artdesc_queue_depth{status="queued"}')).toBe(2);
    expect(value(m, 'artdesc_queue_depth{status="running"}')).toBe(1);
    expect(value(m, 'artdesc_heartbeat_age_seconds{role="worker",id="w1"}')).toBeGreaterThanOrEqual(30);
    expect(value(m, 'artdesc_heartbeat_age_seconds{role="start",id="s-new"}')).toBeLessThan(30);
    expect(m).not.toContain('id="s-old"');
  });

  it("leaves other paths to the app and refuses other methods", async () => {
    expect((await fetch(`${base}/health`)).status).toBe(200);
    expect((await fetch(`${base}/metrics`, { method: "POST" })).status).toBe(405);
  });
});

describe("log helpers", () => {
  function capture() {
    const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
    const at = (level: string) => (obj: Record<string, unknown>, msg: string) => lines.push({ level, obj, msg });
    return { lines, log: { info: at("info"), warn: at("warn"), error: at("error") } as unknown as Logger };
  }

  it("logSyncRun writes one line with the counts, at a level that follows the outcome", () => {
    const { lines, log } = capture();
    const startedAt = new Date("2026-11-27T03:00:00Z");
    const run = { id: 7, status: "FAILED", trigger: "schedule", full: false, startedAt, finishedAt: new Date("2026-11-27T03:01:35Z"), seen: 10, created: 1, updated: 2, unchanged: 7, removed: 0, skippedNoImage: 0, failed: 3, imagesDownloaded: 1, imagesUnchanged: 0, jobsQueued: 1, error: "SPARQL 503", creators: "[]", holder: null } as const;
    logSyncRun(log, run);
    logSyncRun(log, { ...run, status: "SUCCEEDED", error: null });
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ level: "error", msg: "sync failed", obj: { event: "sync", syncRunId: 7, durationMs: 95_000, failed: 3, error: "SPARQL 503" } });
    expect(lines[1]).toMatchObject({ level: "info", msg: "sync succeeded" });
    expect(lines[1]!.obj).not.toHaveProperty("error");
  });

  it("logDescription writes one line per description", () => {
    const { lines, log } = capture();
    logDescription(log, { artworkQid: "Q1", jobId: 3, durationMs: 12_000, generatedTokens: 180, finishReason: "stop" });
    expect(lines).toEqual([{ level: "info", msg: "description written", obj: { event: "description", artworkQid: "Q1", jobId: 3, durationMs: 12_000, generatedTokens: 180, finishReason: "stop" } }]);
  });
});
