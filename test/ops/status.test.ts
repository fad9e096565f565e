import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { createGraphqlApp } from "../../src/graphql/yoga.js";
import { statusCommand } from "../../src/ops/commands.js";
import { checkHeartbeats, getStatus } from "../../src/ops/status.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { makeArtwork } from "../support/factories.js";
import { ARTDESC_CLI, commandIo } from "../support/cli.js";
import { gql } from "../support/graphql.js";

let t: TestDb;
const now = new Date();
const ago = (s: number) => new Date(now.getTime() - s * 1000);
// MODEL_DIR: a folder with no embedding model, wherever the suite runs.
const config = loadConfig({ HEARTBEAT_STALE_S: "60", MODEL_DIR: "/nonexistent/artdesc-models" });

/** A scripted day: two syncs, a queue, a worker that beats and a daemon that stopped beating. */
beforeAll(async () => {
  t = await createTestDb();
  const db = t.db;
  await db.syncRun.create({
    data: { status: "SUCCEEDED", trigger: "schedule", creators: '["Q5432"]', startedAt: ago(3 * 3600), finishedAt: ago(3 * 3600 - 95), seen: 1900, created: 3, updated: 10, unchanged: 1880, removed: 1, failed: 6, imagesDownloaded: 2, jobsQueued: 13 },
  });
  const failed = await db.syncRun.create({
    data: { status: "FAILED", trigger: "manual", creators: '["Q5432"]', startedAt: ago(1800), finishedAt: ago(1790), seen: 20, failed: 2, error: "SPARQL endpoint answered 503" },
  });
  await db.syncFailure.createMany({
    data: [
      { syncRunId: failed.id, stage: "download", reason: "timeout" },
      { syncRunId: failed.id, stage: "download", reason: "404" },
      { syncRunId: failed.id, stage: "details", reason: "bad date" },
    ],
  });
  const counts = { QUEUED: 5, RUNNING: 1, SUCCEEDED: 10, FAILED: 2, CANCELLED: 1 } as const;
  for (const [status, n] of Object.entries(counts)) {
    await db.job.createMany({ data: Array.from({ length: n }, () => ({ status: status as keyof typeof counts })) });
  }
  // The embed job: counted with the jobs, not in the describe backlog.
  await db.job.create({ data: { kind: "embed", status: "QUEUED", priority: -10 } });
  const art = await makeArtwork(db, { qid: "Q1" });
  // Six model descriptions in the last hour (10 to 60 s each), two older ones, one person's text.
  const make = (createdAt: Date, totalMs: number | null, source: "MODEL" | "HUMAN" = "MODEL") =>
    db.description.create({ data: { artworkId: art.id, text: "x", source, createdAt, timings: totalMs == null ? null : JSON.stringify({ totalMs }) } });
  for (let i = 1; i <= 6; i++) await make(ago(i * 500), i * 10_000);
  await make(ago(3700), 5_000);
  await make(ago(7200), 5_000);
  await make(ago(100), null, "HUMAN");
  await db.heartbeat.create({
    data: { id: "worker@box:42", role: "worker", pid: 42, hostname: "box", startedAt: ago(7200), beatAt: ago(5), modelStatus: "loaded", modelId: "HuggingFaceTB/SmolVLM-500M-Instruct", modelRevision: "main", device: "cpu", dtypes: '{"vision_encoder":"fp32"}' },
  });
  await db.heartbeat.create({ data: { id: "daemon@box:7", role: "daemon", pid: 7, hostname: "box", startedAt: ago(7200), beatAt: ago(120) } });
});

afterAll(() => t.close());

describe("status", () => {
  it("reports syncs, jobs, heartbeats, throughput and the backlog estimate", async () => {
    const s = await getStatus(t.db, { staleAfterS: 60, now, schedule: { cron: "0 3 * * *", timezone: "UTC" } });
    expect(s.nextSyncAt).toEqual(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + (now.getUTCHours() >= 3 ? 1 : 0), 3)));
    expect(s.lastSync).toMatchObject({ runId: 2, status: "FAILED", trigger: "manual", seen: 20, failed: 2, error: "SPARQL endpoint answered 503", durationSeconds: 10 });
    expect(s.lastSuccessfulSync).toMatchObject({ status: "SUCCEEDED", creators: ["Q5432"], seen: 1900, created: 3, updated: 10, removed: 1, jobsQueued: 13, durationSeconds: 95 });
    expect(s.jobs).toEqual({ queued: 6, running: 1, succeeded: 10, failed: 2, cancelled: 1 });
    expect(s.heartbeats.map((h) => [h.role, h.alive, Math.round(h.ageSeconds)])).toEqual([["daemon", false, 120], ["worker", true, 5]]);
    expect(s.heartbeats[1]).toMatchObject({ modelStatus: "loaded", modelId: "HuggingFaceTB/SmolVLM-500M-Instruct", device: "cpu", dtypes: { vision_encoder: "fp32" } });
    expect(s.descriptionsLastHour).toBe(6);
    expect(s.averageDescriptionSeconds).toBe(35);
    // Six describe jobs left at six an hour: one hour.
    expect(s.backlog).toBe(6);
    expect(s.backlogSeconds).toBe(3600);
    expect(s.backlogDoneAt!.getTime()).toBe(now.getTime() + 3_600_000);
  });

  it("has no estimate when nothing was described in the last hour, and zero for an empty backlog", async () => {
    const later = new Date(now.getTime() + 2 * 3_600_000);
    const s = await getStatus(t.db, { staleAfterS: 60, now: later });
    expect(s.descriptionsLastHour).toBe(0);
    expect(s.backlogSeconds).toBeNull();
    expect(s.backlogDoneAt).toBeNull();
    const empty = await createTestDb();
    try {
      const e = await getStatus(empty.db, { staleAfterS: 60 });
      expect(e).toMatchObject({ lastSync: null, backlog: 0, backlogSeconds: 0, heartbeats: [] });
    } finally {
      await empty.close();
    }
  });

  it("checks heartbeats: stale ones named, a role can be required", async () => {
    const s = await getStatus(t.db, { staleAfterS: 60, now });
    expect(checkHeartbeats(s)).toEqual({ ok: false, problems: ["daemon daemon@box:7 (pid 7 on box) last beat 120 s ago"] });
    expect(checkHeartbeats(s, "worker")).toEqual({ ok: true, problems: [] });
    expect(checkHeartbeats(s, "daemon").ok).toBe(false);
    expect(checkHeartbeats(s, "start")).toEqual({ ok: false, problems: ["no start heartbeat recorded"] });
    const relaxed = await getStatus(t.db, { staleAfterS: 300, now });
    expect(checkHeartbeats(relaxed).ok).toBe(true);
  });

  it("a dead process's row stops failing the check once a process of its role started after it on its host; --this-host judges one host", async () => {
    const db = await createTestDb();
    try {
      const at = (minutesAgo: number) => new Date(now.getTime() - minutesAgo * 60_000);
      await db.db.heartbeat.createMany({
        data: [
          // gpu1: a worker killed 10 minutes ago, and the one its supervisor started 5 minutes ago.
          { id: "worker@gpu1:10", role: "worker", pid: 10, hostname: "gpu1", startedAt: at(60), beatAt: at(10) },
          { id: "worker@gpu1:11", role: "worker", pid: 11, hostname: "gpu1", startedAt: at(5), beatAt: at(0) },
          // gpu2: a worker whose host was lost; nothing replaced it.
          { id: "worker@gpu2:20", role: "worker", pid: 20, hostname: "gpu2", startedAt: at(60), beatAt: at(30) },
        ],
      });
      const s = await getStatus(db.db, { staleAfterS: 60, now });
      expect(checkHeartbeats(s, "worker")).toEqual({ ok: false, problems: ["worker worker@gpu2:20 (pid 20 on gpu2) last beat 1800 s ago"] });
      expect(checkHeartbeats(s, "worker", "gpu1")).toEqual({ ok: true, problems: [] });
      expect(checkHeartbeats(s, "worker", "gpu2").ok).toBe(false);
      expect(checkHeartbeats(s, "worker", "gpu3")).toEqual({ ok: false, problems: ["no worker heartbeat recorded on gpu3"] });
      const io = commandIo();
      expect(await statusCommand(db.db, config, { check: true, role: "worker", thisHost: true, hostname: "gpu1", now }, io)).toBe(0);
      expect(io.stderr.text).toContain("ok: worker heartbeat fresh on this host");
      expect(await statusCommand(db.db, config, { check: true, role: "worker", now }, io)).toBe(1);
    } finally {
      await db.close();
    }
  });

  it("fails the check when no process ever beat against this database", async () => {
    const empty = await createTestDb();
    try {
      const s = await getStatus(empty.db, { staleAfterS: 60, now });
      expect(checkHeartbeats(s)).toEqual({ ok: false, problems: ["no heartbeat recorded"] });
      expect(checkHeartbeats(s, "worker")).toEqual({ ok: false, problems: ["no worker heartbeat recorded"] });
    } finally {
      await empty.close();
    }
  });

  it("prints the status for an operator", async () => {
    const io = commandIo();
    expect(await statusCommand(t.db, config, { now }, io)).toBe(0);
    const out = io.stdout.text;
    expect(out).toMatch(/^Last sync +#2 FAILED \(manual\) finished .*, took 10 s: seen 20,.*\n +error: SPARQL endpoint answered 503/m);
    expect(out).toMatch(/^Last good +#1 SUCCEEDED \(schedule\)/m);
    expect(out).toMatch(/^Jobs +queued 6, running 1, succeeded 10, failed 2, cancelled 1$/m);
    expect(out).toMatch(/^Process +daemon daemon@box:7: STALE, last beat 2 min ago/m);
    expect(out).toMatch(/^Process +worker worker@box:42: alive, last beat 5 s ago, pid 42 on box, model loaded HuggingFaceTB\/SmolVLM-500M-Instruct@main on cpu$/m);
    expect(out).toMatch(/^Throughput +6 descriptions in the last hour, 35\.0 s each on average$/m);
    expect(out).toMatch(/^Backlog +6 describe jobs, done in about 1 h 0 min/m);
    expect(out).toMatch(/^Semantic +off: Semantic search is off: no embedding model \(Xenova\/multilingual-e5-small\)\. Run artdesc models pull --embed;/m);
    const json = commandIo();
    await statusCommand(t.db, config, { json: true, now }, json);
    expect(JSON.parse(json.stdout.text).jobs.queued).toBe(6);
    expect(JSON.parse(json.stdout.text).semanticSearch).toMatchObject({ enabled: false, installed: false, command: "artdesc models pull --embed" });
  });

  it("is served over GraphQL", async () => {
    const yoga = createGraphqlApp({ db: t.db, config });
    const r = await gql(
      yoga,
      `{ status { lastSync { number status error seen } lastSuccessfulSync { seen creators } jobs { queued running failed }
         heartbeats { role alive modelStatus device dtypes { module dtype } } workerAlive descriptionsLastHour backlog backlogSeconds backlogDoneAt } }`,
    );
    expect(r.errors).toBeUndefined();
    const s = r.data.status;
    expect(s.lastSync).toEqual({ number: 2, status: "FAILED", error: "SPARQL endpoint answered 503", seen: 20 });
    expect(s.lastSuccessfulSync).toEqual({ seen: 1900, creators: ["Q5432"] });
    expect(s.jobs).toEqual({ queued: 6, running: 1, failed: 2 });
    expect(s.workerAlive).toBe(true);
    expect(s.heartbeats).toContainEqual({ role: "worker", alive: true, modelStatus: "loaded", device: "cpu", dtypes: [{ module: "vision_encoder", dtype: "fp32" }] });
    expect(s.backlog).toBe(6);
    // Real time has moved on a little since the rows were written: the rate is still six an hour.
    expect(s.descriptionsLastHour).toBe(6);
    expect(s.backlogSeconds).toBe(3600);
  });
});

describe("artdesc status --check", () => {
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [ARTDESC_CLI, "status", ...args], {
      env: { ...process.env, DATABASE_URL: t.url, HEARTBEAT_STALE_S: "60" },
      encoding: "utf8",
      timeout: 60_000,
    });

  it("exits 1 naming the stale heartbeat, 0 when the required role is fresh", () => {
    const stale = cli("--check");
    expect(stale.stderr).toContain("stale: daemon daemon@box:7 (pid 7 on box) last beat");
    expect(stale.status).toBe(1);
    const worker = cli("--check", "--role", "worker");
    expect(worker.stderr).toContain("ok: worker heartbeat fresh");
    expect(worker.status).toBe(0);
    expect(worker.stdout).toContain("Jobs        queued 6, running 1");
    const typo = cli("--check", "--role", "wroker");
    expect(typo.stderr).toContain('--role "wroker" is not a role that beats: use worker, daemon, start');
    expect(typo.status).toBe(2);
  }, 120_000);

  it("a SQLite file that is not there is an error for the one-shot commands, and nothing is created", () => {
    const dir = mkdtempSync(join(tmpdir(), "artdesc-nodb-"));
    try {
      for (const args of [["status"], ["export", "--format", "jsonl", "--out", join(dir, "out.jsonl")], ["search", "goya"], ["experiment", "list"]]) {
        const run = spawnSync(process.execPath, [ARTDESC_CLI, ...args], {
          cwd: dir,
          env: { ...process.env, DATABASE_URL: "file:./data/artdesc.db" },
          encoding: "utf8",
          timeout: 60_000,
        });
        expect(run.status, args.join(" ")).toBe(2);
        expect(run.stderr).toContain(`there is no database at ${join(dir, "data", "artdesc.db")}`);
        expect(run.stderr).toContain("npx artdesc migrate");
      }
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe("one heartbeat type", () => {
  it("status { heartbeats } and generationDefaults { model workers } are the same ProcessHeartbeat, with the same values", async () => {
    const yoga = createGraphqlApp({ db: t.db, config });
    const fields = "__typename id role pid hostname alive ageSeconds modelStatus modelError modelId modelRevision device dtypes { module dtype }";
    const r = await gql(yoga, `{ status { heartbeats { ${fields} } } generationDefaults { model { ${fields} } workers { ${fields} } } }`);
    expect(r.errors).toBeUndefined();
    const worker = r.data.status.heartbeats.find((h: { role: string }) => h.role === "worker");
    const strip = ({ ageSeconds: _a, ...rest }: Record<string, unknown>) => rest;
    expect(worker.__typename).toBe("ProcessHeartbeat");
    expect(strip(r.data.generationDefaults.model)).toEqual(strip(worker));
    // Only processes that run a worker (they report a model status) are workers.
    expect(r.data.generationDefaults.workers.map(strip)).toEqual([strip(worker)]);
    expect(r.data.generationDefaults.model.ageSeconds).toBeGreaterThanOrEqual(5);
    // A process without a model reports no dtypes (null, the same in both places).
    expect(r.data.status.heartbeats.find((h: { role: string }) => h.role === "daemon").dtypes).toBeNull();
    const types = await gql(yoga, `{ a: __type(name: "WorkerStatus") { name } b: __type(name: "ProcessHeartbeat") { name } }`);
    expect(types.data).toEqual({ a: null, b: { name: "ProcessHeartbeat" } });
  });
});
