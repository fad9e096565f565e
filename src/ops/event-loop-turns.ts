/**
 * Turns of the event loop for long runs of work that never waits for I/O. Prisma over
 * better-sqlite3 answers in microtasks and maps its rows in JavaScript between statements, and it
 * sends the statements of concurrent queries one after another: the twenty `artworks(limit: 500)`
 * of one aliased GraphQL query ran back to back in a single turn of the loop (about 1 s on two
 * cores) and held /health and every other request until the last was mapped. Code that may run
 * long calls `turnIfDue()` at safe points (before each SQL statement, before each GraphQL field):
 * past `everyMs` since the loop last turned it waits for one setImmediate, so pending I/O, timers
 * and other requests run; otherwise it costs one clock read.
 */
export const TURN_EVERY_MS = 20;

let lastTurn = performance.now();
let pending: Promise<void> | null = null;

/** A promise of the next turn when one is due, else null (go on at once). */
export function turnIfDue(everyMs = TURN_EVERY_MS): Promise<void> | null {
  if (pending) return pending;
  if (performance.now() - lastTurn < everyMs) return null;
  pending = new Promise((done) =>
    setImmediate(() => {
      lastTurn = performance.now();
      pending = null;
      done();
    }),
  );
  return pending;
}
