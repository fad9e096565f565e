import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { closeDb, type Db, openDatabase } from "../../src/db.js";
import { createLogger } from "../../src/log.js";
import { syncCommand } from "../../src/sync/command.js";
import { runSync } from "../../src/sync/sync.js";
import { ARTDESC_CLI } from "../support/cli.js";
import { createTestDb, testDatabaseUrl } from "../support/db.js";
import { startWikidataWorld, type WikidataWorld } from "../support/wikidata-world/index.js";

/** The real CLI in a child process (the compiled one users run), against the local world. */
function cli(args: string[], env: Record<string, string>): { child: ChildProcess; done: Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, [ARTDESC_CLI, ...args], {
    env: { PATH: process.env.PATH ?? "", LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d));
  child.stderr!.on("data", (d: Buffer) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, done };
}

/** A child whose images come slowly, and a connection to its database (a second process, as in production). */
async function slowChild(command: string, name: string) {
  const env = { ...world.env, DATABASE_URL: await testDatabaseUrl(dir, name), IMAGE_DIR: `${dir}/${name}-images`, DOWNLOAD_CONCURRENCY: "1", HTTP_TIMEOUT_MS: "5000" };
  // Slow enough that a loaded machine still sees the run in the middle (12 images take 6 s or more).
  world.fault({ target: "image", kind: "slow", delayMs: 500, times: 12 });
  const { child, done } = cli([command], env);
  // Migrates alongside the child (both wait for the other's migration), as a second process would.
  const { db } = await openDatabase(env.DATABASE_URL);
  return { env, child, done, db };
}

async function untilImagesStored(db: Db, n: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while ((await db.image.count({ where: { localPath: { not: null } } })) < n) {
    if (Date.now() > deadline) throw new Error(`fewer than ${n} images stored after 60 s`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

let world: WikidataWorld;
let dir: string;
beforeAll(async () => {
  world = await startWikidataWorld({ generated: 12, hardCases: false });
  dir = mkdtempSync(join(tmpdir(), "artdesc-cli-"));
});
afterAll(async () => {
  await world?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("artdesc sync", () => {
  it("refuses to start without USER_AGENT_CONTACT and says why", async () => {
    const { done } = cli(["sync"], { ...world.env, USER_AGENT_CONTACT: "", DATABASE_URL: await testDatabaseUrl(dir, "refuse") });
    const r = await done;
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/USER_AGENT_CONTACT is not set.*Wikimedia's User-Agent policy/);
    expect(world.requests).toHaveLength(0);
  });

  it("runs once with plain progress lines off a terminal and a summary, exit 0", async () => {
    const { done } = cli(["sync", "--creator", "Q5432"], { ...world.env, DATABASE_URL: await testDatabaseUrl(dir, "once"), IMAGE_DIR: `${dir}/once-images`, LOG_LEVEL: "info" });
    const r = await done;
    expect(r.stderr).toMatch(/^details\s+works 0\/12\s+images 0\/0$/m);
    expect(r.stderr).toMatch(/^done\s+works 12\/12\s+images 12\/12$/m);
    expect(r.stderr).not.toContain("\r");
    expect(r.stdout).toMatch(/^sync run 1: SUCCEEDED \(full\)\n\s+works:\s+12 seen, 12 new/);
    // The JSON log (the run's line among them) goes to stderr with the progress: stdout is the summary alone.
    expect(r.stdout).not.toContain("{");
    expect(r.stderr).toMatch(/^\{.*"event":"sync".*"msg":"sync succeeded"/m);
    expect(r.code).toBe(0);
  });

  it("exits non-zero when the run fails as a whole (progress on a terminal: one rewritten line)", async () => {
    world.fault({ target: "sparql", kind: "500", times: 4 });
    const t = await createTestDb();
    const rt = { db: t.db, log: createLogger("silent"), config: loadConfig({ ...world.env, DATABASE_URL: t.url, IMAGE_DIR: `${dir}/fail-images` }) };
    let progress = "";
    let summary = "";
    const out = Object.assign(new PassThrough(), { isTTY: true }) as unknown as NodeJS.WriteStream;
    out.on("data", (d: Buffer) => (progress += d));
    const summaryOut = new PassThrough().on("data", (d: Buffer) => (summary += d));
    try {
      expect(await syncCommand(rt, { out, summaryOut })).toBe(1);
      expect(summary).toMatch(/^sync run 1: FAILED[\s\S]*error:\s+no inventory could be read/);
      expect(progress).toMatch(/^\rinventory works 0\/0  images 0\/0\x1b\[K\rdone {6}works 0\/0  images 0\/0\x1b\[K\n$/);
    } finally {
      await t.close();
    }
  });

  it("killed mid-run (SIGKILL), the next run continues where it stopped", async () => {
    const { env, child, done, db } = await slowChild("sync", "kill");
    try {
      await untilImagesStored(db, 3);
      child.kill("SIGKILL");
      expect((await done).signal).toBe("SIGKILL");
      const before = await db.image.count({ where: { localPath: { not: null } } });
      expect(before).toBeGreaterThanOrEqual(3);
      expect(before).toBeLessThan(12);
      world.clearFaults();

      const r = await runSync({ db, config: loadConfig(env), log: createLogger("silent") });
      expect(r).toMatchObject({ status: "SUCCEEDED", created: 0, unchanged: 12, imagesDownloaded: 12 - before, failed: 0 });
      expect(await db.image.count({ where: { localPath: { not: null } } })).toBe(12);
      const runs = await db.syncRun.findMany({ orderBy: { id: "asc" } });
      expect(runs.map((x) => x.status)).toEqual(["ABORTED", "SUCCEEDED"]);
      expect(runs[0]!.error).toMatch(/ended before the run finished/);
    } finally {
      await closeDb(db);
    }
  });

  it("artdesc daemon: syncs at start when never synced, and SIGTERM stops it cleanly", async () => {
    const { child, done, db } = await slowChild("daemon", "daemon");
    try {
      await untilImagesStored(db, 1);
      child.kill("SIGTERM");
      const r = await done;
      expect([r.code, r.signal]).toEqual([0, null]);
      const run = await db.syncRun.findFirstOrThrow();
      expect(run).toMatchObject({ trigger: "startup", status: "ABORTED" });
      expect(await db.lease.count()).toBe(0);
    } finally {
      world.clearFaults();
      await closeDb(db);
    }
  });
});
