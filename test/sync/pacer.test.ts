import { expect, it } from "vitest";
import { yieldToEventLoop } from "../../src/sync/sync.js";

/**
 * Runs CPU-bound steps of 2 ms for `ms` (busy, as the sync is while Prisma maps a work's rows),
 * calling `between` after each, while a timer is re-armed every millisecond (a lease renewal, an
 * HTTP timeout); returns how late that timer fired at worst, in ms.
 */
async function worstTimerDelay(between: () => Promise<void> | void, ms = 300): Promise<number> {
  let worst = 0;
  let armedAt = performance.now();
  let timer: NodeJS.Timeout;
  const arm = () => {
    armedAt = performance.now();
    timer = setTimeout(() => {
      worst = Math.max(worst, performance.now() - armedAt - 1);
      arm();
    }, 1);
  };
  arm();
  const start = performance.now();
  while (performance.now() - start < ms) {
    const t = performance.now();
    while (performance.now() - t < 2) {
      // busy
    }
    await between();
  }
  clearTimeout(timer!);
  // The last stretch, if the timer never got a turn.
  return Math.max(worst, performance.now() - armedAt - 1);
}

it("yieldToEventLoop lets timers run between the sync's steps; awaiting a resolved promise does not", async () => {
  expect(await worstTimerDelay(yieldToEventLoop)).toBeLessThan(50);
  // Microtasks run before the loop turns: the timer waits for the whole stretch of work.
  expect(await worstTimerDelay(() => Promise.resolve())).toBeGreaterThan(250);
});
