import { expect, it } from "vitest";
import { sharedPacer, yieldToEventLoop, type SyncPacer } from "../../src/sync/sync.js";

/** Runs CPU-bound steps of 2 ms for `ms`, giving way with `pace` after each; returns the share of time left to others. */
async function shareLeft(pace: SyncPacer, ms = 300): Promise<number> {
  const start = performance.now();
  let working = 0;
  while (performance.now() - start < ms) {
    const t = performance.now();
    while (performance.now() - t < 2) {
      // busy, as the sync is while Prisma maps a work's rows
    }
    working += performance.now() - t;
    await pace();
  }
  return 1 - working / (performance.now() - start);
}

it("the shared pace leaves the thread to others for about half the time; a plain turn leaves almost none", async () => {
  expect(await shareLeft(sharedPacer(10, 10))).toBeGreaterThan(0.35);
  expect(await shareLeft(yieldToEventLoop)).toBeLessThan(0.2);
});
