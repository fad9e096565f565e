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

/**
 * Long synchronous pieces of work (a search over SQLite: better-sqlite3 holds the thread for the
 * whole statement, up to about 100 ms for the heaviest accepted query), one at a time, each started
 * in a later turn of the loop than the one before it ended. turnIfDue lets every waiting resolver go
 * on in the same turn, so sixteen clients' searches ran back to back and held /health for over a
 * second; in a lane, pending I/O (health probes, other requests) runs between any two of them.
 * The lane is held for the synchronous part only: work that returns a promise (PostgreSQL) lets the
 * next start at once, and its result is awaited outside the lane.
 */
export class TurnLane {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(work: () => T): Promise<Awaited<T>> {
    // Boxed, so that a promise the work returns is not awaited while the lane is held.
    const done = this.tail.then(nextTurn).then(() => ({ value: work() }));
    this.tail = done.catch(() => undefined);
    return done.then((box) => box.value as Awaited<T>);
  }
}

/** The next turn of the loop: after the I/O that is pending now has run. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
