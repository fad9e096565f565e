/**
 * Failed API-token checks per client address (see clientKey in graphql/subscriptions.ts: IPv4, or an
 * IPv6 /64). A client that presents a wrong token `maxFailures` times within `windowMs` is refused
 * every token check, right or wrong, until the oldest of those failures leaves the window. The API
 * token may be as short as 16 characters and chosen by a person, so guessing it must be slow.
 * Bounded: at most `maxClients` addresses are remembered, the least recently failing forgotten
 * first (a forgotten client starts again from nothing, which costs an attacker nothing it had).
 */
export interface AuthThrottleLimits {
  /** Wrong tokens one client may present per window; 0 turns the throttle off. */
  maxFailures: number;
  windowMs: number;
  maxClients: number;
}

export class AuthThrottle {
  /** Per client, the times of its recent failures, oldest first (at most maxFailures). */
  readonly #failures = new Map<string, number[]>();

  constructor(
    readonly limits: AuthThrottleLimits,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds until `client` may try a token again, or 0 when it may now. */
  retryAfterS(client: string): number {
    if (this.limits.maxFailures < 1) return 0;
    const times = this.#recent(client);
    if (times.length < this.limits.maxFailures) return 0;
    return Math.max(1, Math.ceil((times[0]! + this.limits.windowMs - this.now()) / 1000));
  }

  /** Records one wrong token from `client`. */
  fail(client: string): void {
    if (this.limits.maxFailures < 1) return;
    const times = this.#recent(client);
    times.push(this.now());
    if (times.length > this.limits.maxFailures) times.shift();
    this.#failures.delete(client);
    this.#failures.set(client, times);
    if (this.#failures.size > this.limits.maxClients) this.#failures.delete(this.#failures.keys().next().value!);
  }

  get clients(): number {
    return this.#failures.size;
  }

  /** The client's failures still inside the window (older ones dropped). */
  #recent(client: string): number[] {
    const times = this.#failures.get(client);
    if (!times) return [];
    const since = this.now() - this.limits.windowMs;
    while (times.length > 0 && times[0]! <= since) times.shift();
    if (times.length === 0) this.#failures.delete(client);
    return times;
  }
}

/** The throttle's limits from the configuration. */
export function authThrottleLimits(config: { AUTH_MAX_FAILURES: number; AUTH_FAILURE_WINDOW_S: number }): AuthThrottleLimits {
  return { maxFailures: config.AUTH_MAX_FAILURES, windowMs: config.AUTH_FAILURE_WINDOW_S * 1000, maxClients: 10_000 };
}
