import { expect, it } from "vitest";
import { ConnectionLock, ConnectionLockTimeoutError } from "../../src/store/connection-lock.js";

it("hands the connection over first come, first served", async () => {
  const lock = new ConnectionLock(1_000);
  const order: number[] = [];
  const first = await lock.acquire();
  const waiting = [1, 2, 3].map((n) => lock.acquire().then((release) => (order.push(n), release())));
  expect(lock.waiting).toBe(3);
  expect(lock.heldForMs()).not.toBeNull();
  first();
  first(); // twice is harmless
  await Promise.all(waiting);
  expect(order).toEqual([1, 2, 3]);
  expect(lock.heldForMs()).toBeNull();
});

it("gives up after the wait limit, and aborts a holder that is stuck", async () => {
  const lock = new ConnectionLock(50, 50);
  let aborted = 0;
  let releaseHolder!: () => void;
  releaseHolder = await lock.acquire(() => {
    aborted++;
    releaseHolder();
  });
  const err = await lock.acquire().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ConnectionLockTimeoutError);
  // Node's timers may fire up to 1 ms early by performance.now(); the lock allows for that.
  expect((err as ConnectionLockTimeoutError).heldMs).toBeGreaterThanOrEqual(49);
  expect(aborted).toBe(1);
  expect(lock.waiting).toBe(0);
  // Free again: the next caller gets it at once.
  const release = await lock.acquire();
  release();
});

it("does not abort a holder that is within its limit", async () => {
  const lock = new ConnectionLock(20, 10_000);
  let aborted = false;
  const release = await lock.acquire(() => (aborted = true));
  await expect(lock.acquire()).rejects.toBeInstanceOf(ConnectionLockTimeoutError);
  expect(aborted).toBe(false);
  release();
  expect(await lock.run(() => 42)).toBe(42);
});

it("isDatabaseUnavailable recognises storage failures and lock timeouts, not ordinary errors", async () => {
  const { default: Database } = await import("better-sqlite3");
  const { tmpdir } = await import("node:os");
  const { CommitFailedError, isDatabaseUnavailable } = await import("../../src/db.js");
  let cantOpen: unknown;
  try {
    new Database(tmpdir()); // a folder: SQLITE_CANTOPEN
  } catch (err) {
    cantOpen = err;
  }
  expect(isDatabaseUnavailable(cantOpen)).toBe(true);
  expect(isDatabaseUnavailable(new CommitFailedError(cantOpen))).toBe(true);
  expect(isDatabaseUnavailable(new Error("wrapped", { cause: new ConnectionLockTimeoutError(1, 2) }))).toBe(true);
  expect(isDatabaseUnavailable(new Error("UNIQUE constraint failed"))).toBe(false);
  expect(isDatabaseUnavailable(undefined)).toBe(false);
});
