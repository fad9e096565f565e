/** A caller waited longer than the limit for the database connection (another transaction holds it). */
export class ConnectionLockTimeoutError extends Error {
  override name = "ConnectionLockTimeoutError";
  constructor(
    readonly waitedMs: number,
    /** How long the holder had held the connection when the wait gave up. */
    readonly heldMs: number,
  ) {
    super(`the database connection stayed busy for ${Math.round(waitedMs)} ms (a transaction has held it for ${Math.round(heldMs)} ms)`);
  }
}

/** Hands back the connection; calling it twice is harmless. */
export type Release = () => void;

interface Holder {
  since: number;
  /** Ends the holder's work by force (a transaction rolls back); must release. */
  abort?: () => void;
}

interface Waiter {
  grant: (release: Release) => void;
  holder: Holder;
}

/**
 * First come, first served ownership of one SQLite connection, with a bounded wait. A holder that
 * keeps the connection longer than `stuckAfterMs` is taken to be stuck: the next waiter that gives
 * up aborts it, so one lost release cannot freeze every later write (the failure mode of the
 * mutex inside @prisma/adapter-better-sqlite3 6.19, which a failed COMMIT never releases).
 */
/**
 * Node's timers run on the event loop's clock, which is read once per turn and kept in whole
 * milliseconds, so a timer may fire up to a millisecond before `performance.now()` says its
 * delay has passed (seen in CI: 49.55 ms for a 50 ms timer).
 */
const TIMER_SLACK_MS = 1;

export class ConnectionLock {
  #holder: Holder | null = null;
  readonly #queue: Waiter[] = [];

  constructor(
    readonly waitMs: number,
    readonly stuckAfterMs: number = waitMs,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Waits (at most `waitMs`) for the connection; `abort` is how a stuck holder is ended. */
  acquire(abort?: () => void, waitMs = this.waitMs): Promise<Release> {
    const holder: Holder = { since: 0, abort };
    if (!this.#holder) return Promise.resolve(this.#grant(holder));
    return new Promise((resolve, reject) => {
      const started = this.now();
      const waiter: Waiter = { holder, grant: (release) => (clearTimeout(timer), resolve(release)) };
      const timer = setTimeout(() => {
        const i = this.#queue.indexOf(waiter);
        if (i < 0) return; // granted: the grant arrives on the next turn of the event loop
        this.#queue.splice(i, 1);
        const current = this.#holder;
        const held = current ? this.now() - current.since : 0;
        reject(new ConnectionLockTimeoutError(this.now() - started, held));
        if (current && held >= this.stuckAfterMs - TIMER_SLACK_MS) current.abort?.();
      }, waitMs);
      this.#queue.push(waiter);
    });
  }

  /** Runs `fn` while holding the connection. */
  async run<T>(fn: () => Promise<T> | T): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /** How long the current holder has held the connection, or null when it is free. */
  heldForMs(): number | null {
    return this.#holder ? this.now() - this.#holder.since : null;
  }

  get waiting(): number {
    return this.#queue.length;
  }

  #grant(holder: Holder): Release {
    holder.since = this.now();
    this.#holder = holder;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (this.#holder !== holder) return;
      this.#holder = null;
      const next = this.#queue.shift();
      // The next holder starts on a later turn of the event loop: the statements of concurrent
      // queries, and Prisma's mapping of their rows, never run back to back in one turn.
      if (next) {
        const granted = this.#grant(next.holder);
        setImmediate(() => next.grant(granted));
      }
    };
  }
}
