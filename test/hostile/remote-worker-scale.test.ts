import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { closeDb, createDb, type Db } from "../../src/db.js";
import { encodeJobParams } from "../../src/generation/params.js";
import type { Job } from "../../src/generated/prisma/client.js";
import { enqueueDescribe } from "../../src/jobs/queue.js";
import { ARTDESC_CLI, runCli } from "../support/cli.js";
import { onPostgres, testDatabaseUrl } from "../support/db.js";
import { type ArtdescProcess, listeningBase, spawnArtdesc, tinyModelEnv, waitUntil } from "../support/processes.js";
import { startWikidataWorld, type WikidataWorld } from "../support/wikidata-world/index.js";
import { type FaultServer, proxyTo, startFaultServer } from "./remote-worker-faults.js";

/**
 * Workers on "other machines": `artdesc serve` and three `artdesc worker` processes that share
 * only the database with it: the SQLite file (one machine can share a file) with 20 works, or with
 * TEST_DATABASE=postgresql (`npm run test:postgresql`) a PostgreSQL database, as machines would,
 * with 60 works. Each worker has its own empty IMAGE_DIR and fetches images from the API's /images/
 * (IMAGE_SOURCE_URL). One worker is SIGKILLed in the middle of a description. Where the kernel
 * allows it, that worker runs in its own pid namespace, so the others cannot see that it died
 * (as from another machine) and only its silence for HEARTBEAT_STALE_S frees its job.
 */
const STALE_S = 3;
const WORKS = onPostgres ? 60 : 20;
let world: WikidataWorld;
let model: ReturnType<typeof tinyModelEnv>;
let dir: string;
let apiEnv: Record<string, string>;
let serve: ArtdescProcess;
let base: string;
let db: Db;
const procs: ArtdescProcess[] = [];

/** `unshare --pid --fork` works here (root, or user namespaces allowed). */
const ownPidNamespace = spawnSync("unshare", ["--pid", "--fork", "--mount-proc", "--kill-child", "true"]).status === 0;

beforeAll(async () => {
  world = await startWikidataWorld({ generated: WORKS, hardCases: false, imageEdge: 160 });
  model = tinyModelEnv();
  dir = mkdtempSync(join(tmpdir(), "artdesc-remote-"));
  apiEnv = {
    ...world.env,
    ...model.env,
    DATABASE_URL: await testDatabaseUrl(dir, "shared"),
    IMAGE_DIR: join(dir, "api-images"),
    PORT: "0",
    HOST: "127.0.0.1",
    DESCRIBE_NUM_BEAMS: "2",
    DESCRIBE_MAX_NEW_TOKENS: "24",
    DESCRIBE_MIN_NEW_TOKENS: "24",
    DESCRIBE_TARGET_WORDS: "0",
    HEARTBEAT_INTERVAL_S: "0.5",
    HEARTBEAT_STALE_S: String(STALE_S),
  };
  // The sync runs where the API's folder is; it queues one describe job per work.
  const sync = runCli(["sync"], apiEnv);
  const { code } = await sync.exit;
  expect(code, sync.output().slice(-3000)).toBe(0);
  serve = spawnArtdesc(["serve"], apiEnv);
  procs.push(serve);
  base = await listeningBase(serve);
  db = await createDb(apiEnv.DATABASE_URL!);
}, 180_000);

afterAll(async () => {
  for (const p of procs) await p.stop("SIGKILL");
  if (db) await closeDb(db);
  await world?.stop();
  model?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function workerEnv(name: string, source: string): Record<string, string> {
  const imageDir = join(dir, `${name}-images`);
  return { ...apiEnv, IMAGE_DIR: imageDir, IMAGE_SOURCE_URL: `${source}/images/` };
}

/**
 * `artdesc worker` in its own pid namespace, with its own /proc as in a container: to the others
 * it runs "elsewhere", and it sees itself as it is (without its own /proc it would judge its own
 * claims dead, reading the host's pid 1 as its own).
 */
function spawnElsewhere(env: Record<string, string>): ArtdescProcess {
  const child = spawn("unshare", ["--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL", process.execPath, ARTDESC_CLI, "worker"], {
    env: { PATH: process.env.PATH ?? "", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const exited = new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? -1)));
  return {
    child,
    output: () => out,
    exited,
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) {
        // The worker first: unshare passes no signal on, and its child is that namespace's pid 1.
        for (const pid of childPids(child.pid!)) process.kill(pid, signal);
        child.kill(signal);
      }
      return exited;
    },
  };
}

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The pid (in our namespace) of the `artdesc worker` process: unshare's child, or the process itself. */
function workerPid(p: ArtdescProcess): number {
  if (!ownPidNamespace) return p.child.pid!;
  const children = childPids(p.child.pid!);
  expect(children).toHaveLength(1);
  return children[0]!;
}

/** Every file under `root` with its size and modification time. */
function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!existsSync(root)) return out;
  for (const e of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name);
    const s = statSync(p);
    out.set(p.slice(root.length + 1), `${s.size}:${s.mtimeMs}`);
  }
  return out;
}

const logs = () => procs.map((p, i) => `[process ${i}, ${p.child.exitCode ?? p.child.signalCode ?? "running"}]\n${p.output().slice(-3000)}`).join("\n");

describe("scaling out: workers that share only the database", { timeout: 300_000 }, () => {
  it("three workers drain the queue over HTTP; one is killed mid-description; every job succeeds exactly once", async () => {
    try {
      const jobs = await db.job.findMany({ orderBy: { id: "asc" } });
      expect(jobs).toHaveLength(WORKS);
      const apiBefore = snapshot(apiEnv.IMAGE_DIR!);
      expect(apiBefore.size).toBe(WORKS);

      // The first job in queue order is a long one (about a second, where the others take
      // milliseconds), so the worker that claims it first can be caught in the middle of it. It is as
      // long as the parameters allow: progress is written every 500 ms, and a job that ends sooner (4
      // beams and 600 tokens took 0.26-0.44 s on the tiny model) can finish before the test sees it run.
      const first = jobs[0]!;
      await db.job.update({ where: { id: first.id }, data: { params: encodeJobParams({ numBeams: 8, minNewTokens: 1000, maxNewTokens: 1024 }) } });
      const doomedEnv = workerEnv("w0", base);
      const doomed = ownPidNamespace ? spawnElsewhere(doomedEnv) : spawnArtdesc(["worker"], doomedEnv);
      procs.push(doomed);
      const victim = await waitUntil(
        "the long job in progress",
        () => db.job.findFirst({ where: { id: first.id, status: "RUNNING", progress: { gt: 0 } } }),
        120_000,
        20,
      );
      const others = [1, 2].map((i) => spawnArtdesc(["worker"], workerEnv(`w${i}`, base)));
      procs.push(...others);
      // SIGKILL to the worker itself (in its own namespace it is pid 1, and unshare's --kill-child
      // does not reach it there): the unshare process ends with it.
      process.kill(workerPid(doomed), "SIGKILL");
      await doomed.exited;
      const killed = await db.job.findUniqueOrThrow({ where: { id: victim.id } });
      expect(killed.status).toBe("RUNNING");
      expect(killed.holder).toBe(victim.holder);
      const lastBeat = killed.heartbeatAt!.getTime();

      await waitUntil(
        "every job finished",
        async () => (await db.job.count({ where: { status: { in: ["QUEUED", "RUNNING"] } } })) === 0,
        240_000,
        200,
      );

      const after = await db.job.findMany({ orderBy: { id: "asc" }, include: { result: { select: { id: true } } } });
      expect(after.map((j) => j.status)).toEqual(after.map(() => "SUCCEEDED"));
      for (const j of after) expect(j.result, `job ${j.id}`).not.toBeNull();
      // One description per job, none twice: the job id is unique on Description, and nothing else wrote.
      expect(await db.description.count()).toBe(WORKS);
      // The tiny model's byte tokens can decode to U+0000, which the engine drops (PostgreSQL's text type refuses it).
      // (Checked here: SQLite's LIKE ends a pattern at a NUL.)
      const texts = await db.description.findMany({ select: { text: true, rawText: true } });
      expect(texts.filter((d) => `${d.text}${d.rawText}`.includes("\u0000"))).toEqual([]);
      expect(await db.artwork.count({ where: { currentDescriptionId: null, images: { some: { isMain: true } } } })).toBe(0);
      // The killed worker's job was taken again, once, by another worker, after its claim went stale.
      const retried = after.find((j) => j.id === victim.id)!;
      expect(retried.attempts).toBe(2);
      expect(retried.holder).not.toBe(victim.holder);
      if (ownPidNamespace) expect(retried.startedAt!.getTime()).toBeGreaterThanOrEqual(lastBeat + STALE_S * 1000 - 100);
      expect(after.filter((j) => j.id !== victim.id).every((j) => j.attempts === 1)).toBe(true);
      // Nobody wrote into the API's folder; each worker kept only verified copies of its images.
      expect(snapshot(apiEnv.IMAGE_DIR!)).toEqual(apiBefore);
      let kept = 0;
      for (const w of ["w0", "w1", "w2"]) {
        for (const name of snapshot(join(dir, `${w}-images`)).keys()) {
          if (name.startsWith(".write-check")) continue;
          expect(apiBefore.has(name), `${w} kept ${name}`).toBe(true);
          const hash = createHash("sha256").update(readFileSync(join(dir, `${w}-images`, name))).digest("hex");
          expect(name).toBe(`${hash.slice(0, 2)}/${hash}.jpg`);
          kept++;
        }
      }
      expect(kept).toBeGreaterThanOrEqual(WORKS);
      for (const p of others) expect(await p.stop("SIGTERM")).toBe(0);
    } catch (err) {
      throw new Error(`${String(err)}\n--- process output ---\n${logs()}`);
    }
  });

  it("through a hostile network: a corrupted image and a 404 fail their jobs with a clear reason; an outage is waited out; the rest goes on", async () => {
    let proxy: FaultServer | null = null;
    try {
      proxy = await startFaultServer(proxyTo(base), async (name) => Buffer.from(await (await fetch(`${base}/images/${name}`)).arrayBuffer()));
      const config = loadConfig({ ...apiEnv, JOB_MAX_ATTEMPTS: "1" });
      const images = await db.image.findMany({ where: { isMain: true }, orderBy: { id: "asc" }, take: 4 });
      const [corrupt, missing, ok1, ok2] = images as [typeof images[0], typeof images[0], typeof images[0], typeof images[0]];
      proxy.fault(corrupt.localPath!, { kind: "corrupt" });
      proxy.fault(missing.localPath!, { kind: "status", status: 404 });
      const jobs: Job[] = [];
      for (const img of images) {
        jobs.push((await enqueueDescribe(db, config, { artworkId: img.artworkId, imageId: img.id, force: true, reason: "hostile network" })).job);
      }
      // The API is unreachable when the worker starts, and comes back while it retries.
      await proxy.down();
      const worker = spawnArtdesc(["worker"], { ...workerEnv("w3", proxy.base), HTTP_MAX_RETRIES: "8", HTTP_TIMEOUT_MS: "2000", RETRY_AFTER_MAX_S: "1", HTTP_RETRY_BASE_MS: "100" });
      procs.push(worker);
      await waitUntil("a job claimed", () => db.job.findFirst({ where: { id: { in: jobs.map((j) => j.id) }, status: "RUNNING" } }), 120_000, 50);
      await new Promise((r) => setTimeout(r, 1_500));
      await proxy.up();
      const done = await waitUntil(
        "the four jobs finished",
        async () => {
          const rows = await db.job.findMany({ where: { id: { in: jobs.map((j) => j.id) } }, orderBy: { id: "asc" } });
          return rows.every((r) => r.status === "SUCCEEDED" || r.status === "FAILED") ? rows : null;
        },
        180_000,
        200,
      );
      const [c, m, g1, g2] = done as [typeof done[0], typeof done[0], typeof done[0], typeof done[0]];
      expect(c).toMatchObject({ status: "FAILED", attempts: 1 });
      expect(c.error).toMatch(new RegExp(`${corrupt.localPath!.replace(/[./]/g, "\\$&")} from the image source has sha256 .* not the stored`));
      expect(m).toMatchObject({ status: "FAILED", attempts: 1 });
      expect(m.error).toMatch(/\(HTTP 404\)/);
      for (const e of [c.error!, m.error!]) {
        expect(e).not.toContain(dir);
        expect(e).not.toContain(proxy.base);
      }
      expect(g1.status).toBe("SUCCEEDED");
      expect(g2.status).toBe("SUCCEEDED");
      expect(await db.description.count({ where: { jobId: { in: [g1.id, g2.id] } } })).toBe(2);
      expect(await db.description.count({ where: { jobId: { in: [c.id, m.id] } } })).toBe(0);
      expect(ok1.localPath && ok2.localPath).toBeTruthy();
      expect(await worker.stop("SIGTERM")).toBe(0);
    } catch (err) {
      throw new Error(`${String(err)}\n--- process output ---\n${logs()}`);
    } finally {
      await proxy?.close();
    }
  });
});
