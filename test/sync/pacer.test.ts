import { expect, it } from "vitest";
import { yieldToEventLoop } from "../../src/sync/sync.js";

/**
 * Runs CPU-bound steps of 2 ms for `ms` (busy, as the sync is while Prisma maps a work's rows),
 * calling `between` after each, while a timer is re-armed as soon as it fires (a lease renewal,
 * an HTTP timeout). Returns how many steps ran and how often the timer fired meanwhile.
 */
async function timerTurns(between: () => Promise<void>, ms = 300): Promise<{ steps: number; fired: number }> {
  let fired = 0;
  let timer: NodeJS.Timeout;
  const arm = () => {
    timer = setTimeout(() => {
      fired++;
      arm();
    }, 0);
  };
  arm();
  let steps = 0;
  const start = performance.now();
  while (performance.now() - start < ms) {
    const t = performance.now();
    while (performance.now() - t < 2) {
      // busy
    }
    steps++;
    await between();
  }
  clearTimeout(timer!);
  return { steps, fired };
}

it("yieldToEventLoop lets timers run between the sync's steps; awaiting a resolved promise does not", async () => {
  const yielding = await timerTurns(yieldToEventLoop);
  expect(yielding.steps).toBeGreaterThan(10);
  // A timer due by the end of a step runs before the next one (about one turn per step).
  expect(yielding.fired).toBeGreaterThan(yielding.steps / 2);
  // Microtasks run before the loop turns: the timer waits for the whole stretch of work.
  expect((await timerTurns(() => Promise.resolve())).fired).toBe(0);
});
