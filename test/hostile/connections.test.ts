import type { IncomingMessage, ServerResponse } from "node:http";
import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_PIPELINED } from "../../src/api/connections.js";
import { loadConfig } from "../../src/config.js";
import { createHttpApp, SERVER_LIMITS } from "../../src/server.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { serveOnFreePort } from "../support/http.js";
import { capturingLogger } from "../support/log.js";

/**
 * What one connection and one client address may hold, through a real server on 127.0.0.1: a
 * connection's pipelined requests run one at a time and in order, not at all once it has closed,
 * and a connection that pipelines too deep is closed; an address past HTTP_MAX_CONNECTIONS_PER_CLIENT
 * open connections gets no more; a client that sends nothing is cut soon after headersTimeout.
 */
const MAX_PER_CLIENT = 4;
const BODY_BYTES = 1_000_000;
const config = loadConfig({ HTTP_MAX_CONNECTIONS_PER_CLIENT: String(MAX_PER_CLIENT), HTTP_BODY_BYTES_IN_FLIGHT: String(BODY_BYTES) });
const { lines, log } = capturingLogger("warn");
let t: TestDb;
let port = 0;
let base = "";
let close = () => {};
let server: import("node:http").Server;

/** /slow?i=N: answers N after 20 ms; counts how many ran and how many ran at once. */
const slow = { started: [] as number[], running: 0, most: 0 };
async function slowRoute(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  const url = new URL(req.url ?? "/", "http://local");
  if (url.pathname !== "/slow") return false;
  const i = Number(url.searchParams.get("i"));
  slow.started.push(i);
  slow.most = Math.max(slow.most, ++slow.running);
  await new Promise((r) => setTimeout(r, 20));
  slow.running--;
  res.writeHead(200, { "content-type": "text/plain", "content-length": String(String(i).length) }).end(String(i));
  return true;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pipelined = (from: number, count: number) => Array.from({ length: count }, (_, k) => `GET /slow?i=${from + k} HTTP/1.1\r\nHost: x\r\n\r\n`).join("");

function open(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1", () => resolve(s));
    s.once("error", reject);
  });
}

/** Everything the server sends on `socket` until it closes it (or `ms` pass), and whether it closed. */
function readAll(socket: Socket, ms: number): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    let text = "";
    socket.setEncoding("utf8").on("data", (c: string) => (text += c));
    socket.on("error", () => {});
    const timer = setTimeout(() => resolve({ text, closed: false }), ms);
    socket.once("close", () => (clearTimeout(timer), resolve({ text, closed: true })));
  });
}

const bodies = (text: string) => [...text.matchAll(/\r\n\r\n(\d+)/g)].map((m) => Number(m[1]));

beforeAll(async () => {
  t = await createTestDb();
  ({ server } = createHttpApp({ db: t.db, config, log }, [slowRoute]));
  ({ base, close } = await serveOnFreePort(server));
  port = Number(new URL(base).port);
});
afterAll(async () => {
  close();
  await t.close();
});

describe("pipelined requests", () => {
  it("run one at a time, in order, each answered", async () => {
    slow.started = [];
    slow.most = 0;
    const s = await open();
    s.write(pipelined(0, 8));
    const read = readAll(s, 2_000);
    await sleep(600);
    s.end();
    const { text } = await read;
    expect(bodies(text)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(slow.started).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(slow.most).toBe(1);
  });

  it("of a connection that closed are not worked on", async () => {
    slow.started = [];
    const s = await open();
    s.write(pipelined(100, 12));
    // Gone before the first answer (20 ms).
    await sleep(5);
    s.destroy();
    await sleep(500);
    expect(slow.started.length).toBeLessThanOrEqual(2);
    expect(slow.started[0]).toBe(100);
  });

  it(`close a connection that sends more than ${MAX_PIPELINED} ahead of its answers, after the work in hand`, async () => {
    slow.started = [];
    const before = lines.length;
    const s = await open();
    s.write(pipelined(200, 200));
    const { closed } = await readAll(s, 3_000);
    expect(closed).toBe(true);
    await sleep(200);
    expect(slow.started.length).toBeLessThanOrEqual(MAX_PIPELINED + 1);
    // The same again, twice: still one line a minute for the client, so it cannot flood the log.
    for (let k = 0; k < 2; k++) {
      const again = await open();
      again.write(pipelined(400, 200));
      expect((await readAll(again, 3_000)).closed).toBe(true);
    }
    const pipelining = lines.slice(before).filter((l) => l.event === "pipelining");
    expect(pipelining).toEqual([expect.objectContaining({ client: "127.0.0.1", level: 40 })]);
    // Its first line: nothing held back before it.
    expect(pipelining[0]).not.toHaveProperty("repeated");
    // The server answers others as before.
    expect((await fetch(`${base}/health`)).status).toBe(200);
  });
});

describe("connections per client address", () => {
  it(`holds ${MAX_PER_CLIENT}; the next is closed unanswered until one of them closes; refusals are logged once a minute`, async () => {
    const before = lines.length;
    const held = await Promise.all(Array.from({ length: MAX_PER_CLIENT }, open));
    for (let k = 0; k < 3; k++) {
      const extra = await open();
      extra.write("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
      expect(await readAll(extra, 2_000)).toEqual({ text: "", closed: true });
    }
    // A held connection still works.
    held[0]!.write("GET /slow?i=7 HTTP/1.1\r\nHost: x\r\n\r\n");
    await sleep(200);
    held[0]!.destroy();
    await sleep(100);
    expect((await fetch(`${base}/health`, { headers: { connection: "close" } })).status).toBe(200);
    for (const s of held) s.destroy();
    const refused = lines.slice(before).filter((l) => l.event === "connection-limit");
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ client: "127.0.0.1", open: MAX_PER_CLIENT, level: 40 });
  });
});

describe("bodies being read, all together", () => {
  /** From its own address (127.0.0.N), a POST /graphql that declares 99,000 bytes, sends 98,000 and waits. */
  async function halfSent(n: number): Promise<{ socket: Socket; answer: Promise<{ text: string; closed: boolean }> }> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ port, host: "127.0.0.1", localAddress: `127.0.0.${n}` }, () => resolve(s));
      s.once("error", reject);
    });
    const answer = readAll(socket, 1_500);
    socket.write(`POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 99000\r\n\r\n`);
    socket.write("x".repeat(98_000));
    return { socket, answer };
  }

  it("hold at most HTTP_BODY_BYTES_IN_FLIGHT: past it a body gets 503 with Retry-After, and what a closed one held is given back", async () => {
    const budgetHolds = Math.floor(BODY_BYTES / 98_000);
    for (let round = 0; round < 2; round++) {
      const sent = await Promise.all(Array.from({ length: budgetHolds + 4 }, (_, k) => halfSent(10 + k)));
      const answers = await Promise.all(sent.map((b) => b.answer));
      const busy = answers.filter((a) => a.text.startsWith("HTTP/1.1 503"));
      // Every body past the budget is refused; those within it wait for their last 1,000 bytes.
      expect(busy.length, `round ${round}`).toBeGreaterThanOrEqual(4);
      expect(answers.filter((a) => a.text === "" && !a.closed).length, `round ${round}`).toBeGreaterThanOrEqual(budgetHolds - 1);
      for (const a of busy) {
        expect(a.text.toLowerCase()).toContain("retry-after: 1");
        expect(a.text).toContain('"code":"SERVER_BUSY"');
      }
      for (const b of sent) b.socket.destroy();
      await sleep(100);
    }
    // Nothing is still counted: a whole body goes through.
    const r = await fetch(`${base}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: "{ __typename }", variables: { pad: "x".repeat(90_000) } }) });
    expect(r.status).toBe(200);
  });
});

describe("a client that sends nothing", () => {
  it("is cut within a second and a half of headersTimeout", async () => {
    await sleep(200);
    const s = await open();
    const started = Date.now();
    const { closed } = await readAll(s, SERVER_LIMITS.headersTimeout + 5_000);
    expect(closed).toBe(true);
    const after = Date.now() - started;
    expect(after).toBeGreaterThanOrEqual(SERVER_LIMITS.headersTimeout - 100);
    expect(after).toBeLessThan(SERVER_LIMITS.headersTimeout + 1_500);
  }, 20_000);
});
