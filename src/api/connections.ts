import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Logger } from "../log.js";
import { RateLimitedLog } from "../ops/rate-limited-log.js";
import { clientKey, type TrustedProxies } from "./client-address.js";

/**
 * What one connection and one client address may hold of an API process.
 *
 * Node hands every request it parses to the handler at once, pipelined ones included, and goes on
 * with them after their client has gone: 20,000 requests written down one connection in a single
 * send kept a process building pages for 48 s after the client closed it, with /health unanswered.
 * So a connection's requests run one at a time, in order (HTTP/1.1 answers them in order anyway),
 * those of a connection that closed are dropped unread, and a connection that sends more than
 * `MAX_PIPELINED` ahead of its answers is closed: no browser or HTTP library pipelines that deep.
 */
export const MAX_PIPELINED = 16;

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

interface Queue {
  tail: Promise<void>;
  /** Requests accepted on the connection and not yet started. */
  waiting: number;
}

/**
 * `handle`, run for one request of a connection at a time; a request whose connection or request
 * closed before its turn is not run. `onTooMany` hears of a connection closed for pipelining past
 * `maxPipelined`.
 */
export function oneRequestAtATime(handle: Handler, onTooMany: (socket: Socket) => void, maxPipelined = MAX_PIPELINED): Handler {
  const queues = new WeakMap<Socket, Queue>();
  return (req, res) => {
    const socket = req.socket;
    let queue = queues.get(socket);
    if (!queue) queues.set(socket, (queue = { tail: Promise.resolve(), waiting: 0 }));
    if (queue.waiting >= maxPipelined) {
      if (!socket.destroyed) onTooMany(socket);
      socket.destroy();
      return Promise.resolve();
    }
    const q = queue;
    q.waiting++;
    const run = q.tail.then(() => {
      q.waiting--;
      if (socket.destroyed || req.destroyed) return;
      return handle(req, res);
    });
    q.tail = run.catch(() => undefined);
    return run;
  };
}

/**
 * Closes each new connection from a client (an address; IPv6 by its /64) that already holds `max`
 * open ones in this process (0: no limit), so one client cannot take every file descriptor (idle
 * connections) or hold memory with half-sent bodies on thousands of them. Addresses of
 * TRUSTED_PROXIES are not limited: a reverse proxy carries many clients. Refusals are logged at
 * most once a minute per client (`repeated`: how many were held back since its last line).
 */
export function limitConnectionsPerClient(server: Server, max: number, proxies: TrustedProxies, log: Logger): void {
  if (max <= 0) return;
  const open = new Map<string, number>();
  const warnings = new RateLimitedLog(log);
  server.on("connection", (socket: Socket) => {
    if (!socket.remoteAddress || proxies.has(socket.remoteAddress)) return;
    // Counted as the other per-client limits count: IPv6 by its /64, IPv4-mapped IPv6 as IPv4.
    const client = clientKey(socket.remoteAddress);
    const n = open.get(client) ?? 0;
    if (n >= max) {
      socket.destroy();
      warnings.warn(`connection-limit ${client}`, { client, open: n, event: "connection-limit" }, "a connection refused: the client holds HTTP_MAX_CONNECTIONS_PER_CLIENT open ones");
      return;
    }
    open.set(client, n + 1);
    socket.once("close", () => {
      const left = (open.get(client) ?? 1) - 1;
      if (left > 0) open.set(client, left);
      else open.delete(client);
    });
  });
}
