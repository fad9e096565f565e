import { spawn } from "node:child_process";
import { afterAll, beforeAll, expect, it } from "vitest";
import { isDatabaseUnavailable, writeTransaction } from "../../src/db.js";
import { Prisma } from "../../src/generated/prisma/client.js";
import { createTestDb, onPostgres, type TestDb } from "../support/db.js";

let t: TestDb;
beforeAll(async () => {
  t = await createTestDb();
});
afterAll(() => t.close());

/** Another process that holds the write lock for `holdMs`, writing a lease row, then commits. */
function otherWriter(file: string, holdMs: number, name = "other"): Promise<void> {
  const script = `
    const Database = require("better-sqlite3");
    const db = new Database(process.argv[1], { timeout: 15000 });
    db.prepare("BEGIN IMMEDIATE").run();
    db.prepare("INSERT INTO Lease (name, holder, expiresAt, acquiredAt) VALUES ('${name}', 'x', '2999-01-01', '2000-01-01')").run();
    process.stdout.write("locked\\n");
    setTimeout(() => { db.prepare("COMMIT").run(); process.exit(0); }, ${holdMs});`;
  const child = spawn(process.execPath, ["-e", script, file], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    child.stdout.once("data", () => resolve());
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`the other writer exited (${code}) before it took the lock`)));
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

// Prisma's own waits (2 s to begin a transaction, 5 s to run one) once threw a finished description
// away behind another writer (P2028); transactionWaits makes them as long as the store's.
it.skipIf(onPostgres)("waits past Prisma's default 2 s for another process's write lock", async () => {
  await otherWriter(t.file, 3_000, "other-3s");
  const started = performance.now();
  await writeTransaction(t.db, (tx) => tx.lease.create({ data: { name: "after-3s", holder: "y", expiresAt: new Date() } }));
  expect(performance.now() - started).toBeGreaterThan(2_500);
  expect(await t.db.lease.findUnique({ where: { name: "after-3s" } })).not.toBeNull();
});

it.skipIf(onPostgres)("waits past Prisma's default 2 s for a transaction of this process", async () => {
  const slow = writeTransaction(t.db, async (tx) => {
    await tx.lease.create({ data: { name: "slow", holder: "y", expiresAt: new Date() } });
    await new Promise((resolve) => setTimeout(resolve, 3_000));
  });
  await new Promise((resolve) => setTimeout(resolve, 50));
  await writeTransaction(t.db, (tx) => tx.lease.create({ data: { name: "behind-slow", holder: "y", expiresAt: new Date() } }));
  await slow;
  expect(await t.db.lease.count({ where: { name: { in: ["slow", "behind-slow"] } } })).toBe(2);
});

it("counts a transaction that could not begin or ran out of time (P2028) as unavailable, not as a bug", () => {
  const err = new Prisma.PrismaClientKnownRequestError("Transaction API error: Unable to start a transaction in the given time.", { code: "P2028", clientVersion: "6" });
  expect(isDatabaseUnavailable(err)).toBe(true);
  expect(isDatabaseUnavailable(new Prisma.PrismaClientKnownRequestError("Unique constraint failed", { code: "P2002", clientVersion: "6" }))).toBe(false);
});
