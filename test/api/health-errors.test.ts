import { copyFileSync, renameSync } from "node:fs";
import { createServer } from "node:http";
import { afterAll, beforeAll, expect, it } from "vitest";
import { DATABASE_UNAVAILABLE, healthRoutes } from "../../src/api/health.js";
import { createTestDb, onPostgres, type TestDb } from "../support/db.js";
import { serveOnFreePort } from "../support/http.js";
import { capturingLogger } from "../support/log.js";

/**
 * /health and /ready are public: when the database cannot be read they say so with a fixed word,
 * never the error (which can name the database file or a server's host and port). The error goes
 * to the log as a warning, once a minute however often the probes come.
 */
let t: TestDb;
let base: string;
let close = () => {};
let lines: Record<string, any>[] = [];

beforeAll(async () => {
  t = await createTestDb();
  const captured = capturingLogger();
  lines = captured.lines;
  const routes = healthRoutes(t.db, captured.log);
  ({ base, close } = await serveOnFreePort(
    createServer(async (req, res) => {
      if (!(await routes(req, res, new URL(req.url ?? "/", "http://local").pathname))) res.writeHead(404).end();
    }),
  ));
});
afterAll(async () => {
  close();
  await t.close();
});

const probe = async (path: string) => {
  const started = performance.now();
  const r = await fetch(`${base}${path}`);
  return { status: r.status, text: await r.text(), ms: performance.now() - started };
};

// SQLite: the probe reads the file through a connection of its own, opened on the first probe; a
// file moved away before it cannot be opened, while the process's own connection keeps working.
it.skipIf(onPostgres)("a database that cannot be read: 503 with a fixed word, the error in the log once", async () => {
  const moved = `${t.file}.moved`;
  renameSync(t.file, moved);
  try {
    const answers = [];
    for (let i = 0; i < 20; i++) answers.push(await probe(i % 2 ? "/ready" : "/health"));
    for (const a of answers) {
      expect(a.status).toBe(503);
      expect(a.text).not.toContain(t.dir);
      expect(a.ms).toBeLessThan(1_000);
    }
    expect(JSON.parse(answers[0]!.text)).toEqual({ status: "error", database: DATABASE_UNAVAILABLE });
    expect(JSON.parse(answers[1]!.text)).toEqual({ status: "unavailable", database: DATABASE_UNAVAILABLE });
    await new Promise((r) => setImmediate(r));
    const warnings = lines.filter((l) => l.event === "health-probe");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 40, probe: "read" });
    // The whole error, for whoever runs the server.
    expect(warnings[0]!.err.message).toBeTruthy();
    expect(warnings[0]!.err.stack).toBeTruthy();
  } finally {
    renameSync(moved, t.file);
  }
  expect(JSON.parse((await probe("/health")).text)).toEqual({ status: "ok", database: "ok" });
});

// SQLite: an open connection keeps reading a file that was deleted or replaced; the process, whose
// connections all hold the old file, is not healthy then (a restore must restart it).
it.skipIf(onPostgres)("a database file deleted or replaced while the process has it open: 503 until the same file is back", async () => {
  expect((await probe("/health")).status).toBe(200);
  const moved = `${t.file}.moved`;
  renameSync(t.file, moved);
  try {
    expect((await probe("/health")).status).toBe(503);
    expect((await probe("/ready")).status).toBe(503);
  } finally {
    renameSync(moved, t.file);
  }
  // The same file back under its name: healthy again.
  expect((await probe("/health")).status).toBe(200);
  // A copy put in its place (a restore): another file, which this process's connections do not hold.
  copyFileSync(t.file, `${t.file}.copy`);
  renameSync(`${t.file}.copy`, t.file);
  const answer = await probe("/health");
  expect(answer.status).toBe(503);
  expect(answer.text).not.toContain(t.dir);
});
