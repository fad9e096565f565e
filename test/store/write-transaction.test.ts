import { spawn } from "node:child_process";
import { afterAll, beforeAll, expect, it } from "vitest";
import { writeTransaction } from "../../src/db.js";
import { createTestDb, onPostgres, type TestDb } from "../support/db.js";

let t: TestDb;
beforeAll(async () => {
  t = await createTestDb();
});
afterAll(() => t.close());

/** Another process that holds the write lock for `holdMs`, writing a lease row, then commits. */
function otherWriter(file: string, holdMs: number): Promise<void> {
  const script = `
    const Database = require("better-sqlite3");
    const db = new Database(process.argv[1], { timeout: 15000 });
    db.prepare("BEGIN IMMEDIATE").run();
    db.prepare("INSERT INTO Lease (name, holder, expiresAt, acquiredAt) VALUES ('other', 'x', '2999-01-01', '2000-01-01')").run();
    process.stdout.write("locked\\n");
    setTimeout(() => { db.prepare("COMMIT").run(); process.exit(0); }, ${holdMs});`;
  const child = spawn(process.execPath, ["-e", script, file], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    child.stdout.once("data", () => resolve());
    child.once("error", reject);
  });
}

// SQLite-only: the other process holds SQLite's write lock through better-sqlite3 (PostgreSQL's
// turn-taking is tested in test/store/postgres-store.test.ts).
it.skipIf(onPostgres)("waits for another process's write lock instead of failing when it reads before it writes", async () => {
  await otherWriter(t.file, 300);
  const seen = await writeTransaction(t.db, async (tx) => {
    const other = await tx.lease.findUnique({ where: { name: "other" } });
    await tx.lease.create({ data: { name: "mine", holder: "y", expiresAt: new Date() } });
    return other?.holder ?? null;
  });
  // It ran after the other process committed, so it saw that row.
  expect(seen).toBe("x");
  expect(await t.db.lease.count()).toBe(2);
});
