import type { Server } from "node:http";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { JOB_POLL_MS, jobWatchStats } from "../../src/graphql/subscriptions.js";
import { createMetricsRegistry, metricsRoute } from "../../src/ops/metrics.js";
import { createHttpApp } from "../../src/server.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { makeArtwork } from "../support/factories.js";
import { serveOnFreePort } from "../support/http.js";
import { waitUntil } from "../support/processes.js";
import { openSse, type SseStream } from "../support/sse.js";

/**
 * Subscriptions as a hostile client uses them: many real SSE streams over HTTP, closed at every
 * moment. What must hold: a closed stream stops costing anything at once (no poll loop, no SQL),
 * streams on one job share one poll, and a client cannot hold more than its share.
 */

const TOKEN = "test-token-0123456789abcdef";
const SUBSCRIBE = `subscription($id: ID!) { jobUpdated(id: $id) { number status progress } }`;

let t: TestDb;
let artworkId: number;
const servers: Server[] = [];
const streams: SseStream[] = [];

beforeAll(async () => {
  t = await createTestDb({ countQueries: true });
  artworkId = (await makeArtwork(t.db)).id;
});
afterEach(async () => {
  for (const s of streams.splice(0)) s.close();
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    s.close();
  }
  // Every test leaves nothing behind, whatever it did.
  await waitUntil("no stream left open", async () => jobWatchStats(t.db).streams === 0, 5_000, 20);
});
afterAll(() => t.close());
beforeEach(async () => {
  await t.db.job.deleteMany();
});

let metricsBase = "";
async function gauges(): Promise<{ streams: number; jobs: number }> {
  const text = await (await fetch(`${metricsBase}/metrics`)).text();
  const value = (name: string) => Number(text.split("\n").find((l) => l.startsWith(`${name} `))?.split(" ")[1]);
  return { streams: value("artdesc_subscriptions_active"), jobs: value("artdesc_subscriptions_polled_jobs") };
}

async function startServer(env: Record<string, string> = {}): Promise<string> {
  const config = loadConfig({ API_TOKEN: TOKEN, GRAPHQL_MAX_SUBSCRIPTIONS_PER_CLIENT: "500", ...env });
  const { server } = createHttpApp({ db: t.db, config }, [metricsRoute(createMetricsRegistry(t.db, { defaultMetrics: false }), 0)]);
  servers.push(server);
  const { base } = await serveOnFreePort(server);
  metricsBase = base;
  return base;
}

async function makeJob(status: "QUEUED" | "RUNNING" = "QUEUED") {
  return t.db.job.create({ data: { kind: "describe", artworkId, params: "{}", dedupeKey: `k${Math.random()}`, status, progressTotal: 100 } });
}

function open(base: string, id: number | string, localAddress?: string): SseStream {
  const s = openSse(base, SUBSCRIBE, { id: String(id) }, { localAddress });
  streams.push(s);
  return s;
}

/** SELECTs of one job by id (what a poll runs), seen over `ms`. */
async function jobReadsDuring(ms: number): Promise<number> {
  t.queries.length = 0;
  await new Promise((r) => setTimeout(r, ms));
  return t.queries.filter((q) => /^SELECT .*FROM [`"]?(main[`"]?\.)?[`"]?Job[`"]? WHERE .*[`"]?id[`"]? (= \?|IN \()/s.test(q)).length;
}

async function expectAllStopped(): Promise<void> {
  // Promptly: well within two poll intervals of the clients going.
  const started = Date.now();
  await waitUntil("streams and poll loops to stop", async () => {
    const g = await gauges();
    return g.streams === 0 && g.jobs === 0;
  }, 3_000, 20);
  expect(Date.now() - started).toBeLessThan(2_000);
  expect(await jobReadsDuring(JOB_POLL_MS * 4)).toBe(0);
}

describe("closed streams stop polling", () => {
  it("streams closed right after the request was sent", async () => {
    const base = await startServer();
    const job = await makeJob();
    const opened = Array.from({ length: 50 }, () => open(base, job.id));
    for (const s of opened) s.close();
    await expectAllStopped();
  });

  it("streams closed as soon as the response headers came (the server already holds them)", async () => {
    const base = await startServer();
    const job = await makeJob();
    const opened = Array.from({ length: 50 }, () => open(base, job.id));
    await Promise.all(opened.map(async (s) => {
      expect(await s.status).toBe(200);
      s.close();
    }));
    await expectAllStopped();
  });

  it("streams closed after their first event", async () => {
    const base = await startServer();
    const job = await makeJob();
    const opened = Array.from({ length: 100 }, () => open(base, job.id));
    const first = await Promise.all(opened.map((s) => s.event(0)));
    expect(first.every((e) => e.data.jobUpdated.status === "QUEUED")).toBe(true);
    expect(await gauges()).toEqual({ streams: 100, jobs: 1 });
    for (const s of opened) s.close();
    await expectAllStopped();
  });

  it("streams closed mid-stream, while the job makes progress", async () => {
    const base = await startServer();
    const job = await makeJob("RUNNING");
    const opened = Array.from({ length: 40 }, () => open(base, job.id));
    await Promise.all(opened.map((s) => s.event(0)));
    for (let p = 1; p <= 3; p++) {
      await t.db.job.update({ where: { id: job.id }, data: { progress: p * 10 } });
      await Promise.all(opened.map((s) => s.event(p)));
    }
    expect(opened[0]!.events.map((e) => e.data.jobUpdated.progress)).toEqual([0, 10, 20, 30]);
    // Half go while the job keeps moving; the others still get every change.
    for (const s of opened.slice(0, 20)) s.close();
    await t.db.job.update({ where: { id: job.id }, data: { progress: 40 } });
    await Promise.all(opened.slice(20).map((s) => s.event(4)));
    await waitUntil("20 streams left", async () => (await gauges()).streams === 20, 3_000, 20);
    for (const s of opened.slice(20)) s.close();
    await expectAllStopped();
  });

  it("streams on many different jobs", async () => {
    const base = await startServer();
    const jobs = await Promise.all(Array.from({ length: 30 }, () => makeJob()));
    const opened = jobs.flatMap((j) => [open(base, j.id), open(base, j.id)]);
    await Promise.all(opened.map((s) => s.event(0)));
    expect(await gauges()).toEqual({ streams: 60, jobs: 30 });
    for (const s of opened) s.close();
    await expectAllStopped();
  });

  it("a job left RUNNING with no change keeps no loop once its only stream goes", async () => {
    const base = await startServer();
    const job = await makeJob("RUNNING");
    const s = open(base, job.id);
    await s.event(0);
    await new Promise((r) => setTimeout(r, JOB_POLL_MS * 3));
    s.close();
    await expectAllStopped();
  });
});

describe("one poll per job", () => {
  it("100 streams on one job cost one read per tick, like one stream", async () => {
    const base = await startServer();
    const job = await makeJob();
    const opened = Array.from({ length: 100 }, () => open(base, job.id));
    await Promise.all(opened.map((s) => s.event(0)));
    const window = JOB_POLL_MS * 8;
    const reads = await jobReadsDuring(window);
    // About window / poll interval reads (timers drift on a busy machine), never one per stream.
    expect(reads).toBeGreaterThan(0);
    expect(reads).toBeLessThanOrEqual(window / JOB_POLL_MS + 1);
  });

  it("a stream joining a watched job gets its current state at once, then the same changes", async () => {
    const base = await startServer();
    const job = await makeJob("RUNNING");
    const early = open(base, job.id);
    await early.event(0);
    await t.db.job.update({ where: { id: job.id }, data: { progress: 7 } });
    await early.event(1);
    const late = open(base, job.id);
    expect((await late.event(0)).data.jobUpdated.progress).toBe(7);
    await t.db.job.update({ where: { id: job.id }, data: { progress: 9 } });
    expect((await late.event(1)).data.jobUpdated.progress).toBe(9);
    expect((await early.event(2)).data.jobUpdated.progress).toBe(9);
    expect((await gauges()).jobs).toBe(1);
  });
});

describe("streams end with their job", () => {
  it.each(["SUCCEEDED", "FAILED", "CANCELLED"] as const)("every stream gets %s last, then completes, and the loop stops", async (final) => {
    const base = await startServer();
    const job = await makeJob("RUNNING");
    const opened = Array.from({ length: 10 }, () => open(base, job.id));
    await Promise.all(opened.map((s) => s.event(0)));
    await t.db.job.update({ where: { id: job.id }, data: { status: final, progress: 50, finishedAt: new Date() } });
    for (const s of opened) {
      expect(await s.ended).toBe("complete");
      expect(s.events.at(-1).data.jobUpdated).toMatchObject({ status: final, progress: 50 });
    }
    await expectAllStopped();
  });

  it("a stream on a finished job sends its state once and completes", async () => {
    const base = await startServer();
    const job = await t.db.job.update({ where: { id: (await makeJob()).id }, data: { status: "SUCCEEDED" } });
    const s = open(base, job.id);
    expect(await s.ended).toBe("complete");
    expect(s.events.map((e) => e.data.jobUpdated.status)).toEqual(["SUCCEEDED"]);
    await expectAllStopped();
  });

  it("a job deleted while watched ends its streams with NOT_FOUND, not a masked error", async () => {
    const base = await startServer();
    const job = await makeJob();
    const opened = [open(base, job.id), open(base, job.id)];
    await Promise.all(opened.map((s) => s.event(0)));
    await t.db.job.delete({ where: { id: job.id } });
    for (const s of opened) {
      const last = await s.event(1);
      expect(last.errors[0]).toMatchObject({ message: `No job with id ${job.id}`, extensions: { code: "NOT_FOUND" } });
      expect(await s.ended).toBe("complete");
    }
    await expectAllStopped();
  });

  it("an unknown job is refused with NOT_FOUND and holds no slot", async () => {
    const base = await startServer({ GRAPHQL_MAX_SUBSCRIPTIONS_PER_CLIENT: "1" });
    for (let i = 0; i < 3; i++) {
      const s = open(base, 424242);
      expect((await s.event(0)).errors[0]).toMatchObject({ message: "No job with id 424242", extensions: { code: "NOT_FOUND" } });
      expect(await s.ended).toBe("complete");
    }
    await expectAllStopped();
  });
});

describe("streams per client and in total are capped", () => {
  it("a client past GRAPHQL_MAX_SUBSCRIPTIONS_PER_CLIENT is refused with TOO_MANY_SUBSCRIPTIONS; another address is not", async () => {
    const base = await startServer({ GRAPHQL_MAX_SUBSCRIPTIONS_PER_CLIENT: "3" });
    const job = await makeJob();
    const mine = [open(base, job.id), open(base, job.id), open(base, job.id)];
    await Promise.all(mine.map((s) => s.event(0)));
    const refused = open(base, job.id);
    expect(await refused.status).toBe(429);
    expect((await refused.event(0)).errors[0]).toMatchObject({
      message: expect.stringMatching(/Too many open subscriptions from this client \(at most 3\)/),
      extensions: { code: "TOO_MANY_SUBSCRIPTIONS", scope: "client", limit: 3 },
    });
    // Another machine (another loopback address) has its own share.
    const other = open(base, job.id, "127.0.0.2");
    expect((await other.event(0)).data.jobUpdated.status).toBe("QUEUED");
    // A closed stream gives its slot back.
    mine[0]!.close();
    await waitUntil("the slot to come back", async () => (await gauges()).streams === 3, 3_000, 20);
    const again = open(base, job.id);
    expect((await again.event(0)).data.jobUpdated.status).toBe("QUEUED");
  });

  it("past GRAPHQL_MAX_SUBSCRIPTIONS in total, every client is refused", async () => {
    const base = await startServer({ GRAPHQL_MAX_SUBSCRIPTIONS_PER_CLIENT: "3", GRAPHQL_MAX_SUBSCRIPTIONS: "4" });
    const job = await makeJob();
    const held = [open(base, job.id), open(base, job.id), open(base, job.id, "127.0.0.2")];
    await Promise.all(held.map((s) => s.event(0)));
    await open(base, job.id, "127.0.0.3").event(0);
    const refused = open(base, job.id, "127.0.0.4");
    expect((await refused.event(0)).errors[0].extensions).toMatchObject({ code: "TOO_MANY_SUBSCRIPTIONS", scope: "server", limit: 4 });
  });

  it("a subscription whose Accept excludes server-sent events is refused with 406 NOT_ACCEPTABLE and holds no slot", async () => {
    const base = await startServer({ GRAPHQL_MAX_SUBSCRIPTIONS_PER_CLIENT: "2" });
    const job = await makeJob();
    for (const accept of ["application/json", "application/graphql-response+json", "multipart/mixed", "text/event-stream;q=0, application/json"]) {
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${base}/graphql`, {
          method: "POST",
          headers: { "content-type": "application/json", accept },
          body: JSON.stringify({ query: SUBSCRIBE, variables: { id: String(job.id) } }),
        });
        expect(res.status, accept).toBe(406);
        const raw = await res.text();
        // Yoga writes the error in JSON where the client accepts it (not for multipart/mixed alone).
        if (accept === "multipart/mixed") continue;
        const body = JSON.parse(raw) as { errors: { message: string; extensions: { code: string } }[] };
        expect(body.errors[0]!.extensions.code).toBe("NOT_ACCEPTABLE");
        expect(body.errors[0]!.message).toMatch(/^Subscriptions stream as server-sent events: send Accept: text\/event-stream/);
      }
    }
    expect((await gauges()).streams).toBe(0);
    // The client's two slots are all still there.
    const held = [open(base, job.id), open(base, job.id)];
    for (const s of held) expect((await s.event(0)).data.jobUpdated.status).toBe("QUEUED");
  });

  it("refused and failed subscriptions never hold a slot", async () => {
    const base = await startServer({ GRAPHQL_MAX_SUBSCRIPTIONS_PER_CLIENT: "2" });
    const job = await makeJob();
    const held = [open(base, job.id), open(base, job.id)];
    await Promise.all(held.map((s) => s.event(0)));
    for (let i = 0; i < 5; i++) expect((await open(base, job.id).event(0)).errors[0].extensions.code).toBe("TOO_MANY_SUBSCRIPTIONS");
    for (let i = 0; i < 5; i++) expect((await open(base, "x").event(0)).errors[0].extensions.code).toBe("BAD_USER_INPUT");
    expect((await gauges()).streams).toBe(2);
  });
});
