import { EventEmitter } from "node:events";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { connect, createServer, type Server, type Socket } from "node:net";
import pino from "pino";
import { afterEach, expect, it } from "vitest";
import { type ApiMessage, leastConnected, type PrimaryChannel, serveHandedConnections } from "../../src/api/balancer.js";
import { apiProcessExecArgv, restartDelayMs } from "../../src/api/component.js";

const log = pino({ level: "silent" });

it("a forked API process that dies is replaced at once, twice a minute; after that the wait doubles from 0.5 s to 30 s", () => {
  expect([1, 2, 3, 4, 5, 9, 100].map(restartDelayMs)).toEqual([0, 0, 500, 1_000, 2_000, 30_000, 30_000]);
});

it("leastConnected picks the fewest open connections, takes equals in turn, and skips processes not ready", () => {
  expect(leastConnected([3, 1, 2], -1)).toBe(1);
  // Equals take turns after the last pick.
  expect(leastConnected([0, 0, 0], -1)).toBe(0);
  expect(leastConnected([1, 0, 0], 0)).toBe(1);
  expect(leastConnected([1, 1, 0], 1)).toBe(2);
  expect(leastConnected([1, 1, 1], 2)).toBe(0);
  // A process that is not ready (null) gets nothing, however few it holds.
  expect(leastConnected([null, 5], 1)).toBe(1);
  expect(leastConnected([null, null], -1)).toBe(-1);
  expect(leastConnected([], -1)).toBe(-1);
  // Eight connections at once over two processes: 4 and 4.
  const open = [0, 0];
  let last = -1;
  for (let i = 0; i < 8; i++) open[(last = leastConnected(open, last))]!++;
  expect(open).toEqual([4, 4]);
});

/** A channel standing in for the primary: what the API process sent, and a way to hand it sockets. */
function fakePrimary(): PrimaryChannel & { sent: ApiMessage[]; hand(socket: Socket): void } {
  const events = new EventEmitter();
  const sent: ApiMessage[] = [];
  return {
    sent,
    on: (event, listener) => events.on(event, listener),
    off: (event, listener) => events.off(event, listener),
    send: (m) => void sent.push(m),
    hand: (socket) => events.emit("message", { artdesc: "api-connection" }, socket),
  };
}

const servers: (Server | HttpServer)[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    if ("closeAllConnections" in s) s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

/** A front door as the primary's: accepts unread and passes each socket to `hand`. */
async function frontDoor(hand: (socket: Socket) => void): Promise<number> {
  const front = createServer({ pauseOnConnect: true }, hand);
  servers.push(front);
  await new Promise<void>((r) => front.listen(0, "127.0.0.1", r));
  return (front.address() as { port: number }).port;
}

/** Sends `text` on a new connection; resolves with everything received until the server closes it, or after `ms`. */
function exchange(port: number, text: string, ms = 3_000): Promise<{ received: string; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let received = "";
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ received, closedByServer: false });
    }, ms);
    socket.on("data", (d) => (received += d.toString()));
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ received, closedByServer: true });
    });
    socket.write(text);
  });
}

it("an API process answers the connections handed to it and reports each one's end", async () => {
  const app = createHttpServer((req, res) => res.end(`hello ${req.url}`));
  servers.push(app);
  const primary = fakePrimary();
  serveHandedConnections(app, log, primary);
  expect(primary.sent).toEqual([{ artdesc: "api-ready" }]);
  const port = await frontDoor((socket) => primary.hand(socket));
  const { received } = await exchange(port, "GET /there HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  expect(received).toMatch(/^HTTP\/1.1 200/);
  expect(received).toMatch(/hello \/there$/);
  await expect.poll(() => primary.sent).toEqual([{ artdesc: "api-ready" }, { artdesc: "api-closed" }]);
  // A hand-over whose client went away before it arrived still counts as closed.
  primary.sent.length = 0;
  primary.hand(undefined as never);
  expect(primary.sent).toEqual([{ artdesc: "api-closed" }]);
});

it("a handed-over connection is still cut off when its headers come too slowly (headersTimeout)", async () => {
  const app = createHttpServer({ headersTimeout: 300, requestTimeout: 600, connectionsCheckingInterval: 50 }, (_req, res) => res.end("ok"));
  servers.push(app);
  const primary = fakePrimary();
  serveHandedConnections(app, log, primary);
  const port = await frontDoor((socket) => primary.hand(socket));
  const started = Date.now();
  const { received, closedByServer } = await exchange(port, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ");
  expect(closedByServer).toBe(true);
  expect(received).toMatch(/^HTTP\/1.1 408/);
  expect(Date.now() - started).toBeLessThan(2_500);
});

it("forked API processes get a larger young generation, unless the flags or NODE_OPTIONS already set one", () => {
  expect(apiProcessExecArgv(["--enable-source-maps"])).toEqual(["--enable-source-maps", "--max-semi-space-size=64"]);
  expect(apiProcessExecArgv(["--max-semi-space-size=16"])).toEqual(["--max-semi-space-size=16"]);
  expect(apiProcessExecArgv([], "--enable-source-maps --max_semi_space_size=8")).toEqual([]);
  expect(apiProcessExecArgv([], "--max-semi-space-sizes")).toEqual(["--max-semi-space-size=64"]);
});
