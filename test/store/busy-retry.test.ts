import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { expect, it } from "vitest";
import { createDb } from "../../src/db.js";
import { isBusyError, withBusyRetry } from "../../src/store/sqlite-adapter.js";

const busy = () => Object.assign(new Error("database is locked"), { code: "SQLITE_BUSY" });

it("tries again after SQLITE_BUSY until the attempt succeeds", async () => {
  let calls = 0;
  const r = await withBusyRetry(async () => {
    if (++calls < 4) throw busy();
    return "done";
  }, 1_000);
  expect(r).toBe("done");
  expect(calls).toBe(4);
});

it("recognises SQLITE_BUSY from better-sqlite3 and as wrapped by the Prisma adapter, and nothing else", () => {
  expect(isBusyError(busy())).toBe(true);
  expect(isBusyError(Object.assign(new Error("x"), { cause: { kind: "SocketTimeout", originalCode: "SQLITE_BUSY" } }))).toBe(true);
  expect(isBusyError(Object.assign(new Error("x"), { code: "SQLITE_BUSY_RECOVERY" }))).toBe(true);
  expect(isBusyError(Object.assign(new Error("x"), { code: "SQLITE_BUSY_TIMEOUT" }))).toBe(true);
  expect(isBusyError(Object.assign(new Error("x"), { code: "SQLITE_BUSY_SNAPSHOT" }))).toBe(false);
  expect(isBusyError(Object.assign(new Error("x"), { code: "SQLITE_CONSTRAINT_UNIQUE" }))).toBe(false);
  expect(isBusyError(null)).toBe(false);
});

it("throws other errors at once, and SQLITE_BUSY once the wait is over", async () => {
  let calls = 0;
  const other = Object.assign(new Error("no such table"), { code: "SQLITE_ERROR" });
  await expect(withBusyRetry(async () => (calls++, Promise.reject(other)), 1_000)).rejects.toBe(other);
  expect(calls).toBe(1);

  const started = performance.now();
  calls = 0;
  await expect(withBusyRetry(async () => (calls++, Promise.reject(busy())), 120)).rejects.toMatchObject({ code: "SQLITE_BUSY" });
  const took = performance.now() - started;
  expect(took).toBeGreaterThanOrEqual(110);
  expect(took).toBeLessThan(1_000);
  // Backing off: a few attempts, not a busy loop.
  expect(calls).toBeGreaterThan(2);
  expect(calls).toBeLessThan(40);
});

it("a client opening while another connection holds the file (a migration, a closing process removing its WAL) waits for it", async () => {
  // CI saw `artdesc serve` exit with "database is locked" when `artdesc daemon` started beside it:
  // the new connection's first pragma met the other's lock and gave up after 5 ms.
  const dir = mkdtempSync(join(tmpdir(), "artdesc-open-busy-"));
  const file = join(dir, "a.db");
  const holder = new Database(file);
  try {
    holder.exec("CREATE TABLE t (x)");
    holder.exec("BEGIN EXCLUSIVE");
    setTimeout(() => holder.exec("COMMIT"), 150);
    const started = performance.now();
    const db = await createDb(`file:${file}`, { busyTimeoutMs: 5_000 });
    try {
      expect(performance.now() - started).toBeGreaterThanOrEqual(100);
      const [mode] = await db.$queryRawUnsafe<{ journal_mode: string }[]>("PRAGMA journal_mode");
      expect(mode!.journal_mode).toBe("wal");
    } finally {
      await db.$disconnect();
    }
  } finally {
    holder.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
