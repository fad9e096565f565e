import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, expect, it } from "vitest";
import { WRITE_FAILED } from "../../src/api/health.js";
import { closeDb, createDb } from "../../src/db.js";
import { migrate } from "../../src/store/migrate.js";
import { runCli, type CliProcess } from "../support/cli.js";
import { makeArtwork } from "../support/factories.js";
import { listeningBase, waitForHealth, waitUntil } from "../support/processes.js";

/**
 * A real failing disk: RLIMIT_FSIZE of 1 byte on the server process makes every write to the
 * database file fail with EFBIG, which SQLite reports as SQLITE_IOERR_WRITE when COMMIT writes the
 * WAL. Lifting the limit is the disk coming back. (Node ignores SIGXFSZ; stdout is a pipe, which
 * the limit does not cover.)
 */
const TOKEN = "store-helper-token-0123456789";
let dir: string;
let file: string;
let base: string;
let server: CliProcess;

const limitWrites = (on: boolean) => execFileSync("prlimit", ["--pid", String(server.child.pid), `--fsize=${on ? "1" : "unlimited"}:`]);

async function gql(query: string, variables: Record<string, unknown> = {}) {
  const started = performance.now();
  const res = await fetch(`${base}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ query, variables }),
    // A frozen writer shows up as a hang: fail the test instead.
    signal: AbortSignal.timeout(20_000),
  });
  return { ms: performance.now() - started, status: res.status, body: (await res.json()) as { data?: any; errors?: { message: string; extensions?: { code?: string } }[] } };
}

async function timed(path: string) {
  const started = performance.now();
  const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(5_000) });
  return { ms: performance.now() - started, status: res.status, body: (await res.json()) as Record<string, string> };
}

const SET = `mutation($text: String!) { setDescription(id: "Q4242", text: $text) { __typename ... on Description { text source } ... on Error { message } } }`;
const REGENERATE = `mutation { regenerateDescription(id: "Q4243", force: true) { __typename ... on Job { status } ... on Error { message } } }`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "artdesc-store-failure-"));
  file = join(dir, "a.db");
  migrate(file);
  const db = await createDb(`file:${file}`);
  await makeArtwork(db, { qid: "Q4242" });
  await makeArtwork(db, { qid: "Q4243" });
  await closeDb(db);
  server = runCli(["serve"], { DATABASE_URL: `file:${file}`, IMAGE_DIR: join(dir, "images"), PORT: "0", HOST: "127.0.0.1", API_WORKERS: "1", API_TOKEN: TOKEN });
  base = await listeningBase(server);
  await waitForHealth(base);
}, 90_000);

afterAll(async () => {
  server?.child.kill("SIGKILL");
  await server?.exit;
  rmSync(dir, { recursive: true, force: true });
});

it("a write that cannot reach the disk fails its request; later writes work once the disk does", async () => {
  expect((await gql(SET, { text: "Before the failure." })).body.data.setDescription.__typename).toBe("Description");
  expect((await timed("/ready")).status).toBe(200);

  limitWrites(true);
  try {
    // Interactive transaction (setDescription), then nested and plain writes (regenerate queues a job).
    for (const [query, vars] of [[SET, { text: "Lost to the disk." }], [SET, { text: "Lost again." }], [REGENERATE, {}]] as const) {
      const r = await gql(query, vars);
      expect(r.body.errors?.length, JSON.stringify(r.body)).toBeGreaterThan(0);
      expect(r.ms).toBeLessThan(10_000);
      // A clear, retryable error (not "Unexpected error."), without the file's path or SQLite's code.
      expect(r.status, JSON.stringify(r.body)).toBe(503);
      expect(r.body.errors![0]!.extensions?.code).toBe("DATABASE_UNAVAILABLE");
      expect(r.body.errors![0]!.message).toMatch(/^The database cannot take writes right now \(disk full or failing/);
      expect(JSON.stringify(r.body)).not.toMatch(/SQLITE|\/tmp\/|a\.db/);
    }
    // Liveness stays fast and green (a restart cures no disk); readiness says why writes fail.
    const live = await timed("/health");
    expect(live.status).toBe(200);
    expect(live.ms).toBeLessThan(1_000);
    const ready = await waitUntil("/ready to report the failing disk", async () => {
      const r = await timed("/ready");
      return r.status === 503 ? r : null;
    }, 10_000);
    expect(ready.body.status).toBe("unavailable");
    // A fixed reason: SQLite's message (and the file's path) go to the log only, once a minute.
    expect(ready.body.writer).toBe(WRITE_FAILED);
    expect(ready.ms).toBeLessThan(1_000);
    // Past /ready's one-second reuse: another write probe fails, and is not logged again.
    await new Promise((r) => setTimeout(r, 1_100));
    expect((await timed("/ready")).status).toBe(503);
    await new Promise((r) => setTimeout(r, 200));
    const warnings = server.output().split("\n").filter((l) => l.includes('"event":"health-probe"'));
    expect(warnings, server.output()).toHaveLength(1);
    expect(JSON.parse(warnings[0]!)).toMatchObject({ level: 40, probe: "write" });
  } finally {
    limitWrites(false);
  }

  // The disk is back: the very next writes succeed, through every path.
  const after = await gql(SET, { text: "After the failure." });
  expect(after.body.data?.setDescription, JSON.stringify(after.body)).toEqual({ __typename: "Description", text: "After the failure.", source: "HUMAN" });
  expect((await gql(REGENERATE)).body.data?.regenerateDescription.__typename).toBe("Job");
  await waitUntil("/ready to recover", async () => (await timed("/ready")).status === 200, 10_000);

  // What failed left nothing behind; what succeeded is there.
  const check = new Database(file, { readonly: true });
  try {
    const texts = (check.prepare(`SELECT text FROM "Description" ORDER BY id`).all() as { text: string }[]).map((r) => r.text);
    expect(texts).toEqual(["Before the failure.", "After the failure."]);
  } finally {
    check.close();
  }
  // Every kind of failure went to the log, with SQLite's code, once a minute: not a line per write.
  const failed = server.output().split("\n").filter((l) => l.includes('"msg":"database write failed"')).map((l) => JSON.parse(l) as { what: string; err: { message: string } });
  expect(failed.length).toBeGreaterThan(0);
  const kinds = failed.map((f) => `${f.what}: ${f.err.message.split("\n")[0]}`);
  expect(new Set(kinds).size, kinds.join("\n")).toBe(kinds.length);
  expect(server.output()).toMatch(/SQLITE_IOERR/);
  // Each answered DATABASE_UNAVAILABLE is logged with its cause.
  expect(server.output()).toMatch(/"msg":"the database cannot take writes \(answered DATABASE_UNAVAILABLE\)"/);
}, 120_000);
