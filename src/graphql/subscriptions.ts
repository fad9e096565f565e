import { GraphQLError } from "graphql";
import { type ClientRequestLike, clientKey, clientOf, type TrustedProxies } from "../api/client-address.js";
import type { Db } from "../db.js";
import type { Job } from "../generated/prisma/client.js";

/**
 * Subscriptions that watch a database row. The writer may be another process (a worker), so the
 * row is polled; one poll loop per watched key serves every stream on it (fan-out), and the loop
 * stops when its last stream goes. A stream ends when the client goes (its request's AbortSignal
 * or the iterator's return(), whichever comes first), when the row reaches a final state, or when
 * the row disappears.
 *
 * Why not an async generator with a sleep: Yoga ends a cancelled SSE response by calling return()
 * on the iterator, but a generator that is busy (awaiting its sleep, with a next() pending) only
 * sees return() at its next `yield`, and a watch loop that yields only on change may never yield
 * again: every closed stream kept polling. These streams are plain iterator objects whose return()
 * takes effect at once.
 */

/** How a watched row is read and compared. */
export interface PollSource<V> {
  /** What is watched, for messages ("job"). */
  noun: string;
  /** The current values of `keys` in one read; a key that does not exist is absent from the map. */
  loadMany(keys: readonly number[]): Promise<Map<number, V>>;
  /** The observable state of a value: streams get a value only when this changes. */
  version(value: V): string;
  /** A final value is sent, then every stream on the key ends. */
  isFinal(value: V): boolean;
}

export interface StreamLimits {
  /** Streams one client (see clientKey) may hold open at once. */
  perClient: number;
  /** Streams the whole process may hold open at once. */
  total: number;
}

export interface OpenOptions {
  /** Who is asking (see clientKey); the per-client limit counts by it. */
  client: string;
  /** Aborted when the client goes (Yoga: the Fetch request's signal). */
  signal?: AbortSignal;
  limits: StreamLimits;
}

/** Too many streams open, for this client or in total. A GraphQLError, so Yoga shows it unmasked. */
export class SubscriptionLimitError extends GraphQLError {
  override name = "SubscriptionLimitError";
  constructor(
    readonly scope: "client" | "server",
    readonly limit: number,
  ) {
    super(
      scope === "client"
        ? `Too many open subscriptions from this client (at most ${limit}); close one first`
        : `Too many open subscriptions on this server (at most ${limit}); try again later`,
      { extensions: { code: "TOO_MANY_SUBSCRIPTIONS", scope, limit, http: { status: 429 } } },
    );
  }
}

/** The watched key does not exist (any more): the subscription's error, or the stream's last event. */
export class WatchedKeyNotFoundError extends GraphQLError {
  override name = "WatchedKeyNotFoundError";
  constructor(
    readonly noun: string,
    readonly key: number,
  ) {
    super(`No ${noun} with id ${key}`, { extensions: { code: "NOT_FOUND" } });
  }
}

interface Topic<V> {
  key: number;
  streams: Set<Stream<V>>;
  /** The last value sent, for streams that join later. */
  current: V | undefined;
  version: string | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Settles after the first read: the key exists (true), does not (false), or the read failed. */
  first: Promise<boolean>;
  closed: boolean;
}

type Waiter<V> = { resolve: (r: IteratorResult<V, undefined>) => void; reject: (err: unknown) => void };

/**
 * One client's stream: it holds only the newest value not yet taken (a slow client skips
 * intermediate states, never the final one), so its memory is bounded whatever the client does.
 */
class Stream<V> implements AsyncIterableIterator<V, undefined> {
  private pending: { value: V } | undefined;
  private error: { err: unknown } | undefined;
  /** Pending next() calls, oldest first (graphql-js pulls one at a time, but nothing relies on it). */
  private readonly waiters: Waiter<V>[] = [];
  ended = false;

  constructor(private readonly onEnd: (s: Stream<V>) => void) {}

  push(value: V): void {
    if (this.ended) return;
    const w = this.waiters.shift();
    if (w) w.resolve({ value, done: false });
    else this.pending = { value };
  }

  /** No more values: the stream ends after the pending one (with `err`, if given). */
  end(err?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    if (err !== undefined) this.error = { err };
    this.onEnd(this);
    for (const w of this.waiters.splice(0)) {
      if (this.error) {
        w.reject(this.error.err);
        this.error = undefined;
      } else w.resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<V, undefined>> {
    if (this.pending) {
      const { value } = this.pending;
      this.pending = undefined;
      return Promise.resolve({ value, done: false });
    }
    if (this.error) {
      const { err } = this.error;
      this.error = undefined;
      return Promise.reject(err);
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  return(): Promise<IteratorResult<V, undefined>> {
    this.pending = undefined;
    this.error = undefined;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(err?: unknown): Promise<IteratorResult<V, undefined>> {
    return this.return().then(() => Promise.reject(err));
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/**
 * Watches keys of one PollSource for many streams: one poll loop per key, streams capped. The
 * loops wake on a shared beat (multiples of pollMs), and the keys due at one beat are read in one
 * query, so 1,000 watched jobs cost one read per beat, not 1,000.
 */
export class PollingHub<V> {
  private readonly topics = new Map<number, Topic<V>>();
  private readonly perClient = new Map<string, number>();
  private open = 0;
  private readonly due = new Map<Topic<V>, { settle?: (exists: boolean) => void; fail?: (err: unknown) => void }>();
  private flushScheduled = false;

  constructor(
    private readonly source: PollSource<V>,
    private readonly pollMs: number,
  ) {}

  /** Streams open now. */
  get streams(): number {
    return this.open;
  }

  /** Keys polled now (one timer or read in flight each). */
  get watchedKeys(): number {
    return this.topics.size;
  }

  /**
   * A stream of `key`'s value: the current one first, then each change, ending after a final
   * value. Throws SubscriptionLimitError over a limit, WatchedKeyNotFoundError for a missing key.
   */
  async watch(key: number, o: OpenOptions): Promise<AsyncIterableIterator<V, undefined>> {
    if (o.signal?.aborted) return emptyIterator<V>();
    const held = this.perClient.get(o.client) ?? 0;
    if (held >= o.limits.perClient) throw new SubscriptionLimitError("client", o.limits.perClient);
    if (this.open >= o.limits.total) throw new SubscriptionLimitError("server", o.limits.total);

    this.perClient.set(o.client, held + 1);
    this.open++;
    const topic = this.topicFor(key);
    const onAbort = () => void stream.return();
    const stream: Stream<V> = new Stream<V>((s) => {
      o.signal?.removeEventListener("abort", onAbort);
      this.release(o.client);
      this.leave(topic, s);
    });
    topic.streams.add(stream);
    o.signal?.addEventListener("abort", onAbort, { once: true });
    if (topic.current !== undefined) stream.push(topic.current);

    let exists: boolean;
    try {
      exists = await topic.first;
    } catch (err) {
      stream.return();
      throw err;
    }
    if (!exists) {
      stream.return();
      throw new WatchedKeyNotFoundError(this.source.noun, key);
    }
    return stream;
  }

  /** Ends every stream (shutdown). */
  close(): void {
    for (const topic of [...this.topics.values()]) for (const s of [...topic.streams]) s.end();
  }

  private topicFor(key: number): Topic<V> {
    const existing = this.topics.get(key);
    if (existing) return existing;
    let settleFirst!: (exists: boolean) => void;
    let failFirst!: (err: unknown) => void;
    const topic: Topic<V> = {
      key,
      streams: new Set(),
      current: undefined,
      version: undefined,
      timer: undefined,
      first: new Promise<boolean>((resolve, reject) => ((settleFirst = resolve), (failFirst = reject))),
      closed: false,
    };
    // A read that fails before any stream awaited it is still handled (by each stream's end).
    topic.first.catch(() => {});
    this.topics.set(key, topic);
    this.poll(topic, settleFirst, failFirst);
    return topic;
  }

  /** Queues a read of the topic's key; every key queued in this turn is read together. */
  private poll(topic: Topic<V>, settle?: (exists: boolean) => void, fail?: (err: unknown) => void): void {
    topic.timer = undefined;
    this.due.set(topic, { settle, fail });
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => void this.flush());
  }

  private async flush(): Promise<void> {
    this.flushScheduled = false;
    // A topic stopped since it was queued is not read again, unless its first read is still owed.
    const batch = [...this.due].filter(([topic, { settle }]) => !topic.closed || settle);
    this.due.clear();
    const keys = batch.map(([topic]) => topic.key);
    let values: Map<number, V>;
    try {
      values = keys.length ? await this.source.loadMany(keys) : new Map();
    } catch (err) {
      for (const [topic, { fail }] of batch) {
        fail?.(err);
        this.finish(topic, err);
      }
      return;
    }
    for (const [topic, { settle }] of batch) this.deliver(topic, values.get(topic.key) ?? null, settle);
  }

  private deliver(topic: Topic<V>, value: V | null, settleFirst?: (exists: boolean) => void): void {
    settleFirst?.(value !== null);
    if (topic.closed) return;
    if (value === null) return this.finish(topic, new WatchedKeyNotFoundError(this.source.noun, topic.key));
    const version = this.source.version(value);
    if (version !== topic.version) {
      topic.version = version;
      topic.current = value;
      for (const s of topic.streams) s.push(value);
    }
    if (this.source.isFinal(value)) return this.finish(topic);
    // The next beat: a multiple of pollMs, shared by every topic, so their reads go together.
    topic.timer = setTimeout(() => this.poll(topic), this.pollMs - (Date.now() % this.pollMs));
    // A watch never keeps the process alive on its own (shutdown ends the streams anyway).
    topic.timer.unref();
  }

  /** The key is done (final value, gone, or unreadable): every stream on it ends. */
  private finish(topic: Topic<V>, err?: unknown): void {
    this.stop(topic);
    for (const s of [...topic.streams]) s.end(err);
  }

  private leave(topic: Topic<V>, stream: Stream<V>): void {
    topic.streams.delete(stream);
    if (topic.streams.size === 0) this.stop(topic);
  }

  private stop(topic: Topic<V>): void {
    topic.closed = true;
    clearTimeout(topic.timer);
    topic.timer = undefined;
    if (this.topics.get(topic.key) === topic) this.topics.delete(topic.key);
  }

  private release(client: string): void {
    this.open--;
    const held = (this.perClient.get(client) ?? 1) - 1;
    if (held <= 0) this.perClient.delete(client);
    else this.perClient.set(client, held);
  }
}

function emptyIterator<V>(): AsyncIterableIterator<V, undefined> {
  const it: AsyncIterableIterator<V, undefined> = {
    next: () => Promise.resolve({ value: undefined, done: true }),
    return: () => Promise.resolve({ value: undefined, done: true }),
    [Symbol.asyncIterator]: () => it,
  };
  return it;
}

/** What Yoga puts into every GraphQL context besides ours: the Fetch request and, behind node:http, the socket's request. */
interface TransportContext {
  request?: { signal?: AbortSignal; headers?: { get(name: string): string | null } };
  req?: ClientRequestLike;
}

/** The client (see clientOf) and the end-of-request signal of a resolver's context (see server.ts: yoga(req, res)). */
export function transportOf(ctx: object, proxies: TrustedProxies): { client: string; signal: AbortSignal | undefined; accept: string | null } {
  const t = ctx as TransportContext;
  return { client: t.req ? clientOf(t.req, proxies) : clientKey(undefined), signal: t.request?.signal, accept: t.request?.headers?.get("accept") ?? null };
}

/**
 * Whether an Accept header lets a subscription's answer be server-sent events, the only way one
 * streams here: no header, or text/event-stream, text/(any) or (any)/(any), with a q above 0.
 */
export function acceptsEventStream(accept: string | null): boolean {
  if (accept === null || accept.trim() === "") return true;
  return accept.split(",").some((range) => {
    const [type = "", ...params] = range.split(";").map((p) => p.trim().toLowerCase());
    const q = params.find((p) => p.startsWith("q="));
    if (q !== undefined && !(Number(q.slice(2)) > 0)) return false;
    return type === "text/event-stream" || type === "text/*" || type === "*/*";
  });
}

/**
 * A subscription asked for with an Accept header that excludes server-sent events. Refused before
 * its stream opens: yoga would answer 406 without ever ending the stream, which then held one of
 * the client's and the server's subscription slots, and its poll, until the job ended.
 */
export class SubscriptionNotAcceptableError extends GraphQLError {
  override name = "SubscriptionNotAcceptableError";
  constructor(accept: string) {
    super(`Subscriptions stream as server-sent events: send Accept: text/event-stream (got ${JSON.stringify(accept.slice(0, 200))})`, {
      extensions: { code: "NOT_ACCEPTABLE", http: { status: 406 } },
    });
  }
}

/** How often a watched job is read (the worker may be another process). */
export const JOB_POLL_MS = 250;

const FINAL_JOB_STATUSES: ReadonlySet<string> = new Set(["SUCCEEDED", "FAILED", "CANCELLED"]);

export function jobSource(db: Db): PollSource<Job> {
  return {
    noun: "job",
    loadMany: async (ids) => new Map((await db.job.findMany({ where: { id: { in: [...ids] } } })).map((job) => [job.id, job])),
    version: (job) => `${job.status}:${job.progress}:${job.attempts}`,
    isFinal: (job) => FINAL_JOB_STATUSES.has(job.status),
  };
}

const jobHubs = new WeakMap<Db, PollingHub<Job>>();

/** The one job watcher of a database client: every GraphQL app on `db` in this process shares it. */
export function jobWatch(db: Db): PollingHub<Job> {
  let hub = jobHubs.get(db);
  if (!hub) {
    hub = new PollingHub(jobSource(db), JOB_POLL_MS);
    jobHubs.set(db, hub);
  }
  return hub;
}

/** Streams and polled jobs of `db`'s watcher, without creating one (for /metrics). */
export function jobWatchStats(db: Db): { streams: number; watchedKeys: number } {
  const hub = jobHubs.get(db);
  return { streams: hub?.streams ?? 0, watchedKeys: hub?.watchedKeys ?? 0 };
}
