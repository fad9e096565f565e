import { expect, it } from "vitest";
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
