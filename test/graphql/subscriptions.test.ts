import { describe, expect, it } from "vitest";
import { PollingHub, type PollSource, SubscriptionLimitError, WatchedKeyNotFoundError } from "../../src/graphql/subscriptions.js";

/** An in-memory row store: the test moves values, the hub polls them. */
function memorySource() {
  const rows = new Map<number, { state: string; n: number }>();
  let loads = 0;
  let failNext: Error | null = null;
  const source: PollSource<{ state: string; n: number }> = {
    noun: "row",
    loadMany: async (keys) => {
      loads++;
      if (failNext) {
        const err = failNext;
        failNext = null;
        throw err;
      }
      const found = new Map<number, { state: string; n: number }>();
      for (const key of keys) {
        const row = rows.get(key);
        if (row) found.set(key, { ...row });
      }
      return found;
    },
    version: (v) => `${v.state}:${v.n}`,
    isFinal: (v) => v.state === "done",
  };
  return { rows, source, loads: () => loads, fail: (err: Error) => (failNext = err) };
}

const POLL = 10;
const LIMITS = { perClient: 100, total: 1000 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("PollingHub", () => {
  it("return() on a stream waiting for a change ends it at once and stops the poll", async () => {
    const m = memorySource();
    m.rows.set(1, { state: "queued", n: 0 });
    const hub = new PollingHub(m.source, POLL);
    const stream = await hub.watch(1, { client: "a", limits: LIMITS });
    expect((await stream.next()).value).toEqual({ state: "queued", n: 0 });
    const waiting = stream.next();
    await sleep(POLL * 3);
    await stream.return!();
    expect(await waiting).toEqual({ value: undefined, done: true });
    expect([hub.streams, hub.watchedKeys]).toEqual([0, 0]);
    const loads = m.loads();
    await sleep(POLL * 5);
    expect(m.loads()).toBe(loads);
  });

  it("an aborted signal ends the stream and frees its slot", async () => {
    const m = memorySource();
    m.rows.set(1, { state: "queued", n: 0 });
    const hub = new PollingHub(m.source, POLL);
    const ctrl = new AbortController();
    const stream = await hub.watch(1, { client: "a", signal: ctrl.signal, limits: { perClient: 1, total: 1 } });
    await stream.next();
    const waiting = stream.next();
    ctrl.abort();
    expect(await waiting).toEqual({ value: undefined, done: true });
    expect(hub.streams).toBe(0);
    // An already aborted request opens nothing at all.
    const late = await hub.watch(1, { client: "a", signal: ctrl.signal, limits: { perClient: 1, total: 1 } });
    expect(await late.next()).toEqual({ value: undefined, done: true });
    expect([hub.streams, hub.watchedKeys]).toEqual([0, 0]);
  });

  it("many streams on one key share one read per tick and all get each change, then the final value", async () => {
    const m = memorySource();
    m.rows.set(1, { state: "running", n: 0 });
    const hub = new PollingHub(m.source, POLL);
    const streams = await Promise.all(Array.from({ length: 50 }, () => hub.watch(1, { client: "a", limits: LIMITS })));
    expect(m.loads()).toBe(1);
    for (const s of streams) expect((await s.next()).value).toEqual({ state: "running", n: 0 });
    const before = m.loads();
    const started = performance.now();
    await sleep(POLL * 5);
    // One read per beat for all 50 streams (one per stream would be 50 per beat). The beats are
    // counted from the time that really passed: a loaded machine may sleep longer than asked.
    const beats = Math.ceil((performance.now() - started) / POLL);
    expect(m.loads() - before).toBeLessThanOrEqual(beats + 1);
    m.rows.set(1, { state: "running", n: 1 });
    for (const s of streams) expect((await s.next()).value).toEqual({ state: "running", n: 1 });
    m.rows.set(1, { state: "done", n: 2 });
    for (const s of streams) {
      expect((await s.next()).value).toEqual({ state: "done", n: 2 });
      expect((await s.next()).done).toBe(true);
    }
    expect([hub.streams, hub.watchedKeys]).toEqual([0, 0]);
  });

  it("streams on many keys share one read per beat, whenever each was opened", async () => {
    const m = memorySource();
    for (let k = 1; k <= 40; k++) m.rows.set(k, { state: "running", n: 0 });
    const hub = new PollingHub(m.source, POLL);
    const streams = [];
    for (let k = 1; k <= 40; k++) {
      streams.push(await hub.watch(k, { client: `c${k}`, limits: LIMITS }));
      if (k % 10 === 0) await sleep(3); // opened at different moments of the beat
    }
    expect(hub.watchedKeys).toBe(40);
    const before = m.loads();
    const started = performance.now();
    await sleep(POLL * 10);
    // About one read per beat for all 40 keys (one read per key per beat would be 400), beats
    // counted from the time that really passed.
    const beats = Math.ceil((performance.now() - started) / POLL);
    expect(m.loads() - before).toBeLessThanOrEqual(beats + 5);
    m.rows.set(7, { state: "done", n: 1 });
    expect((await streams[6]!.next()).value).toEqual({ state: "running", n: 0 });
    expect((await streams[6]!.next()).value).toEqual({ state: "done", n: 1 });
    for (const s of streams) await s.return!();
    expect([hub.streams, hub.watchedKeys]).toEqual([0, 0]);
  });

  it("a slow stream keeps only the newest value, never losing the final one", async () => {
    const m = memorySource();
    m.rows.set(1, { state: "running", n: 0 });
    const hub = new PollingHub(m.source, POLL);
    const stream = await hub.watch(1, { client: "a", limits: LIMITS });
    for (let n = 1; n <= 5; n++) {
      m.rows.set(1, { state: "running", n });
      await sleep(POLL * 3);
    }
    m.rows.set(1, { state: "done", n: 6 });
    await sleep(POLL * 3);
    expect((await stream.next()).value).toEqual({ state: "done", n: 6 });
    expect((await stream.next()).done).toBe(true);
  });

  it("caps streams per client and in total, and gives slots back when streams end", async () => {
    const m = memorySource();
    m.rows.set(1, { state: "queued", n: 0 });
    const hub = new PollingHub(m.source, POLL);
    const limits = { perClient: 2, total: 3 };
    const a1 = await hub.watch(1, { client: "a", limits });
    await hub.watch(1, { client: "a", limits });
    await expect(hub.watch(1, { client: "a", limits })).rejects.toSatisfy((e) => e instanceof SubscriptionLimitError && e.scope === "client");
    await hub.watch(1, { client: "b", limits });
    await expect(hub.watch(1, { client: "c", limits })).rejects.toSatisfy((e) => e instanceof SubscriptionLimitError && e.scope === "server");
    await a1.return!();
    await hub.watch(1, { client: "a", limits });
    expect(hub.streams).toBe(3);
    hub.close();
    expect([hub.streams, hub.watchedKeys]).toEqual([0, 0]);
  });

  it("a missing key is refused without holding a slot; a key deleted while watched ends its streams with the same error", async () => {
    const m = memorySource();
    const hub = new PollingHub(m.source, POLL);
    await expect(hub.watch(9, { client: "a", limits: { perClient: 1, total: 1 } })).rejects.toBeInstanceOf(WatchedKeyNotFoundError);
    expect([hub.streams, hub.watchedKeys]).toEqual([0, 0]);
    m.rows.set(9, { state: "queued", n: 0 });
    const stream = await hub.watch(9, { client: "a", limits: { perClient: 1, total: 1 } });
    await stream.next();
    m.rows.delete(9);
    await expect(stream.next()).rejects.toBeInstanceOf(WatchedKeyNotFoundError);
    expect((await stream.next()).done).toBe(true);
    expect([hub.streams, hub.watchedKeys]).toEqual([0, 0]);
  });

  it("a failed read ends the key's streams with that error and stops", async () => {
    const m = memorySource();
    m.rows.set(1, { state: "queued", n: 0 });
    const hub = new PollingHub(m.source, POLL);
    const stream = await hub.watch(1, { client: "a", limits: LIMITS });
    await stream.next();
    const boom = new Error("database is locked");
    m.fail(boom);
    await expect(stream.next()).rejects.toBe(boom);
    expect([hub.streams, hub.watchedKeys]).toEqual([0, 0]);
    m.fail(boom);
    await expect(hub.watch(1, { client: "a", limits: LIMITS })).rejects.toBe(boom);
    expect([hub.streams, hub.watchedKeys]).toEqual([0, 0]);
  });
});
