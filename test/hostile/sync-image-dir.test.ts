import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { closeDb, createDb } from "../../src/db.js";
import { createLogger } from "../../src/log.js";
import { migrate } from "../../src/store/migrate.js";
import { checkImageDir, ImageDirError } from "../../src/sync/images.js";
import { runSync } from "../../src/sync/sync.js";
import { runCli } from "../support/cli.js";
import { createTestDb } from "../support/db.js";
import { startWikidataWorld, type WikidataWorld } from "../support/wikidata-world/index.js";

/**
 * An IMAGE_DIR that cannot take a file fails the run once, at start or at the first write, with one
 * clear error and a non-zero exit; never one failure per image and a SUCCEEDED run. We run as root
 * here, and chmod does not stop root: the folder is made unwritable for real (a regular file in its
 * place, an immutable folder, a read-only or full file system).
 */

let world: WikidataWorld;
let dir: string;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  world = await startWikidataWorld({ generated: 8, hardCases: false });
  dir = mkdtempSync(join(tmpdir(), "artdesc-imagedir-"));
});
afterAll(async () => {
  await world?.stop();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tryRun(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** A folder whose file system is mounted with these options (tmpfs), or null where mounting is not allowed. */
function mounted(name: string, options: string): string | null {
  const at = join(dir, name);
  mkdirSync(at, { recursive: true });
  if (!tryRun("mount", ["-t", "tmpfs", "-o", options, "tmpfs", at])) return null;
  cleanups.push(() => void tryRun("umount", [at]));
  return at;
}

/** A folder marked immutable (chattr +i: not even root may add a file), or null where the file system cannot. */
function immutable(name: string): string | null {
  const at = join(dir, name);
  mkdirSync(at, { recursive: true });
  if (!tryRun("chattr", ["+i", at])) return null;
  cleanups.push(() => void tryRun("chattr", ["-i", at]));
  return at;
}

function aFile(name: string): string {
  const at = join(dir, name);
  writeFileSync(at, "I am a file, not a folder");
  return at;
}

async function syncIn(imageDir: string) {
  const t = await createTestDb();
  cleanups.push(() => t.close());
  const before = world.requests.length;
  const summary = await runSync({ db: t.db, config: loadConfig({ ...world.env, DATABASE_URL: t.url, IMAGE_DIR: imageDir }), log: createLogger("silent") });
  const run = await t.db.syncRun.findUniqueOrThrow({ where: { id: summary.runId }, include: { failures: true } });
  return { summary, run, t, requests: world.requests.slice(before) };
}

describe("artdesc sync with an unwritable IMAGE_DIR (child process)", () => {
  it("IMAGE_DIR is a regular file: exit 1, one clear error, the run recorded FAILED, nothing fetched", async () => {
    const imageDir = aFile("images-file");
    const db = join(dir, "cli.db");
    const before = world.requests.length;
    const p = runCli(["sync"], { ...world.env, DATABASE_URL: `file:${db}`, IMAGE_DIR: imageDir, LOG_LEVEL: "warn" });
    const { code } = await p.exit;
    const out = p.output();
    expect(code).toBe(1);
    expect(out).toMatch(/sync run 1: FAILED/);
    expect(out).toMatch(/error:\s+IMAGE_DIR is not writable \((EEXIST|ENOTDIR)/);
    expect(out).toMatch(/failed: 0\b/);
    expect(out).not.toMatch(/sync item failed/);
    // The log line (for the operator) has the path; the stored run does not.
    expect(out.split("\n").filter((l) => l.includes("sync failed"))).toHaveLength(1);
    expect(world.requests.length).toBe(before);
    const conn = await createDb(`file:${db}`);
    try {
      const run = await conn.syncRun.findFirstOrThrow({ include: { failures: true } });
      expect(run).toMatchObject({ status: "FAILED", failed: 0, failures: [] });
      expect(run.error).toMatch(/^IMAGE_DIR is not writable/);
      expect(run.error).not.toContain(dir);
    } finally {
      await closeDb(conn);
    }
  });

  it("artdesc daemon refuses to start (exit 2) and says why, before any run", async () => {
    const db = join(dir, "daemon.db");
    migrate(db);
    const p = runCli(["daemon"], { ...world.env, DATABASE_URL: `file:${db}`, IMAGE_DIR: join(aFile("daemon-file"), "images"), LOG_LEVEL: "warn" });
    const { code } = await p.exit;
    expect(code).toBe(2);
    expect(p.output()).toMatch(/IMAGE_DIR is not writable \(ENOTDIR/);
    const conn = await createDb(`file:${db}`);
    try {
      expect(await conn.syncRun.count()).toBe(0);
    } finally {
      await closeDb(conn);
    }
  });
});

describe("each way a folder is unwritable is a setup failure, not a failure per image", () => {
  it.each<[string, () => string | null, RegExp]>([
    ["a regular file where the folder should be", () => aFile("plain-file"), /EEXIST|ENOTDIR/],
    ["a folder below a regular file", () => join(aFile("parent-file"), "images"), /ENOTDIR/],
    ["an immutable folder (chattr +i)", () => immutable("immutable"), /EPERM: operation not permitted/],
    ["a read-only file system", () => mounted("readonly", "ro,size=1m"), /EROFS: read-only file system/],
    // Node 20's mkdir({ recursive: true }) never returns for such a path: the check must still answer.
    ["a folder under /proc", () => `/proc/${process.pid}/images`, /ENOENT|EACCES|EPERM|EROFS/],
  ])("%s: checkImageDir throws ImageDirError, and a run is FAILED before any request", async (_name, make, code) => {
    const imageDir = make();
    if (!imageDir) return void console.warn(`skipped: this machine cannot make ${_name}`);
    const err = await checkImageDir({ IMAGE_DIR: imageDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageDirError);
    expect((err as Error).message).toMatch(code);
    expect((err as Error).message).not.toContain(dir);
    const { summary, run, requests } = await syncIn(imageDir);
    expect(summary).toMatchObject({ status: "FAILED", failed: 0, imagesDownloaded: 0 });
    expect(run.error).toMatch(code);
    expect(run.failures).toEqual([]);
    expect(requests).toEqual([]);
  });

  it("a disk that fills up mid-run (ENOSPC): the run stops at the first full write, FAILED, with one error", async () => {
    // tmpfs counts whole pages: four small JPEGs fill 16 KiB; the world has eight.
    const imageDir = mounted("full", "size=16k");
    if (!imageDir) return void console.warn("skipped: this machine cannot mount a tmpfs");
    const { summary, run, t } = await syncIn(imageDir);
    expect(summary.status).toBe("FAILED");
    expect(summary.error).toMatch(/^IMAGE_DIR is not writable \(ENOSPC: no space left on device\)/);
    expect(run.failures.filter((f) => f.stage === "normalise" || f.stage === "download")).toEqual([]);
    const stored = await t.db.image.count({ where: { localPath: { not: null } } });
    expect(stored).toBeGreaterThan(0);
    expect(stored).toBeLessThan(8);
    // No temporary file is left behind.
    const files = readdirSync(imageDir, { recursive: true }).map(String);
    expect(files.filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });
});
