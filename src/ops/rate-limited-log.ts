import type { Logger } from "../log.js";

/** How often one kind of repeated warning reaches the log. */
export const REPEATED_WARNING_EVERY_MS = 60_000;

/**
 * Warnings that a client can repeat at will (a probe every second against a broken database, a
 * flood of refused requests): each kind (`key`) is logged at most once per `everyMs`; the ones held
 * back in between are counted, and the next line carries that count as `repeated`. A key may name
 * a client (a kind per client address): past `maxKeys` keys, the one logged longest ago is
 * forgotten, so the set stays bounded whoever sends.
 */
export class RateLimitedLog {
  readonly #last = new Map<string, { at: number; repeated: number }>();

  constructor(
    private readonly log: Logger,
    private readonly everyMs = REPEATED_WARNING_EVERY_MS,
    private readonly now: () => number = () => performance.now(),
    private readonly maxKeys = 10_000,
  ) {}

  /** Logs at warn level unless this key was logged less than `everyMs` ago; true when it was logged. */
  warn(key: string, fields: Record<string, unknown>, message: string): boolean {
    return this.#write("warn", key, fields, message);
  }

  /** As warn, at error level: a failure that repeats while its cause lasts (a full disk, a lost database). */
  error(key: string, fields: Record<string, unknown>, message: string): boolean {
    return this.#write("error", key, fields, message);
  }

  #write(level: "warn" | "error", key: string, fields: Record<string, unknown>, message: string): boolean {
    const now = this.now();
    const last = this.#last.get(key);
    if (last && now - last.at < this.everyMs) {
      last.repeated++;
      return false;
    }
    this.log[level]({ ...fields, ...(last?.repeated ? { repeated: last.repeated } : {}) }, message);
    // Kept in the order logged: the first key is the one logged longest ago.
    this.#last.delete(key);
    if (this.#last.size >= this.maxKeys) this.#last.delete(this.#last.keys().next().value!);
    this.#last.set(key, { at: now, repeated: 0 });
    return true;
  }
}

const perLogger = new WeakMap<Logger, RateLimitedLog>();

/** The RateLimitedLog shared by every caller that logs to `log` (one per logger, made on first use). */
export function rateLimited(log: Logger): RateLimitedLog {
  let r = perLogger.get(log);
  if (!r) perLogger.set(log, (r = new RateLimitedLog(log)));
  return r;
}
