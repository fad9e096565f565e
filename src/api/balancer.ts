import type { Worker as ClusterWorker } from "node:cluster";
import { createServer, type Server as NetServer, Socket } from "node:net";
import type { Server as HttpServer } from "node:http";
import type { Logger } from "../log.js";

/**
 * How the API processes (API_WORKERS > 1) share the port: the primary process accepts every
 * connection and hands it to the process holding the fewest open ones. node:cluster's own
 * round-robin hands a connection to whichever process answers first, so a burst of keep-alive
 * connections (a load balancer's pool, a client's) often lands unevenly: 8 connections split 5/3,
 * 6/2 or 7/1 in bench:search, and the busy process served them at 1.7 to 5 times the latency of the
 * idle one (BENCHMARKS.md, "Connections spread by count").
 */

/** Messages between the primary and the API processes (`artdesc` marks them as ours). */
export type ApiMessage = { artdesc: "api-ready" } | { artdesc: "api-connection" } | { artdesc: "api-closed" };

/** Connections that arrived before any API process was ready, held (paused) at most. */
export const MAX_WAITING_CONNECTIONS = 512;

/**
 * The index of the process to hand the next connection to: the fewest open connections, and
 * among equals the first after `last` (so equal processes take turns). -1 when none is ready.
 */
export function leastConnected(open: readonly (number | null)[], last: number): number {
  let best = -1;
  for (let step = 1; step <= open.length; step++) {
    const i = (last + step) % open.length;
    const n = open[i];
    if (n == null) continue;
    if (best < 0 || n < open[best]!) best = i;
  }
  return best;
}

interface Slot {
  worker: ClusterWorker;
  /** Connections handed to it and not yet reported closed; null until it says it is ready. */
  open: number | null;
}

/**
 * The primary's side: listens on `port`/`host` (rejects as `listen` does, before any process is
 * forked) and spreads connections over the processes added with `add`. Sockets are passed
 * unread (pauseOnConnect) with TCP_NODELAY already set, as node:http sets it.
 */
export class ConnectionBalancer {
  private readonly slots: Slot[] = [];
  private last = -1;
  private readonly waiting: Socket[] = [];

  private constructor(
    readonly server: NetServer,
    private readonly log: Logger,
  ) {
    server.on("connection", (socket) => this.place(socket));
    // A failed accept (EMFILE) must not end the process: the client retries.
    server.on("error", (err) => log.error({ err }, "accepting a connection failed"));
  }

  static listen(port: number, host: string, log: Logger): Promise<ConnectionBalancer> {
    const server = createServer({ pauseOnConnect: true, noDelay: true });
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve(new ConnectionBalancer(server, log));
      });
    });
  }

  get port(): number {
    const address = this.server.address();
    return typeof address === "object" && address ? address.port : 0;
  }

  /** Takes a forked API process in: it gets connections once it says it is ready, none after it exits. */
  add(worker: ClusterWorker): void {
    const slot: Slot = { worker, open: null };
    this.slots.push(slot);
    worker.on("message", (m: ApiMessage) => {
      if (m?.artdesc === "api-ready") {
        slot.open = 0;
        for (const socket of this.waiting.splice(0)) this.place(socket);
      } else if (m?.artdesc === "api-closed" && slot.open) {
        slot.open--;
        this.log.debug({ worker: worker.process.pid, open: slot.open }, "API connection closed");
      }
    });
    worker.once("exit", () => this.slots.splice(this.slots.indexOf(slot), 1));
  }

  /** Open connections per ready process (null: not ready yet), in the order they were added. */
  openConnections(): (number | null)[] {
    return this.slots.map((s) => s.open);
  }

  private place(socket: Socket, tries = this.slots.length): void {
    const i = leastConnected(this.openConnections(), this.last);
    if (i < 0) {
      if (this.waiting.length >= MAX_WAITING_CONNECTIONS) return void socket.destroy();
      this.waiting.push(socket);
      socket.once("close", () => this.waiting.splice(this.waiting.indexOf(socket) >>> 0, 1));
      return;
    }
    this.last = i;
    const slot = this.slots[i]!;
    slot.open!++;
    slot.worker.send({ artdesc: "api-connection" } satisfies ApiMessage, socket, (err: Error | null) => {
      if (!err) return;
      // The process is exiting: another one takes the connection (or it waits for a new one).
      if (slot.open) slot.open--;
      if (tries > 1 && !socket.destroyed) this.place(socket, tries - 1);
      else socket.destroy();
    });
  }

  close(): Promise<void> {
    for (const socket of this.waiting.splice(0)) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** How an API process talks to its primary: `process` in a forked process, anything alike in a test. */
export interface PrimaryChannel {
  on(event: "message", listener: (m: ApiMessage, handle: unknown) => void): unknown;
  off(event: "message", listener: (m: ApiMessage, handle: unknown) => void): unknown;
  send(m: ApiMessage): void;
}

const processChannel: PrimaryChannel = {
  on: (event, listener) => process.on(event, listener),
  off: (event, listener) => process.off(event, listener),
  send: (m) => {
    // The primary may be gone (shutting down): nothing is waiting for the message then.
    if (process.connected) process.send!(m, undefined, {}, () => {});
  },
};

/**
 * An API process's side: serves the connections the primary hands over on `server`, which never
 * listens itself, and reports each one's end. Call it once the server is ready to answer; the
 * returned function stops taking connections.
 */
export function serveHandedConnections(server: HttpServer, log: Logger, primary: PrimaryChannel = processChannel): () => void {
  // node:http starts the checks behind headersTimeout and requestTimeout (a client sending its
  // request a byte at a time) when its server emits "listening"; this one never listens.
  server.emit("listening");
  const onMessage = (m: ApiMessage, socket: unknown) => {
    if (m?.artdesc !== "api-connection") return;
    // The client may have gone between the hand-over and now: still one fewer for the primary.
    if (!(socket instanceof Socket)) return primary.send({ artdesc: "api-closed" });
    socket.once("close", () => primary.send({ artdesc: "api-closed" }));
    server.emit("connection", socket);
    // A socket that arrives paused (accepted with pauseOnConnect in this process) starts reading.
    socket.resume();
  };
  primary.on("message", onMessage);
  primary.send({ artdesc: "api-ready" });
  log.info("API process ready");
  return () => primary.off("message", onMessage);
}
