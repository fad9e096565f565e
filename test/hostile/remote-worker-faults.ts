import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { dirname, join } from "node:path";
import { imageRoute } from "../../src/api/images.js";
import { listen } from "../../src/server.js";
import { localPathFor } from "../../src/sync/images.js";

/**
 * A hostile stand-in for the API's /images/ route: by default it passes each request on (to the
 * real imageRoute, or to a running `artdesc serve`), and for the files given faults it answers
 * what a broken network or a broken API would: a status, corrupted or cut-short bytes, too many
 * bytes, a stall, no answer, a reset. It can also go down (stop listening) and come back.
 */
export type Fault =
  | { kind: "status"; status: number; headers?: Record<string, string> }
  | { kind: "corrupt" }
  /** Declares the whole length, sends half, then closes the connection. */
  | { kind: "cut" }
  /** Sends the first half with a matching Content-Length: a whole answer with the wrong bytes. */
  | { kind: "short" }
  /** Declares a huge Content-Length. */
  | { kind: "declared-huge" }
  /** Chunked, with no length: the real bytes, then junk until the client hangs up. */
  | { kind: "endless" }
  /** Headers at once, then no byte of the body. */
  | { kind: "stall" }
  /** No answer at all. */
  | { kind: "hang" }
  | { kind: "reset" };

export interface FaultServer {
  base: string;
  /** The next `times` requests for `name` (default: every one) get `fault`. */
  fault(name: string, fault: Fault, times?: number): void;
  clear(): void;
  /** Requests seen per file name. */
  requests: Map<string, number>;
  /** Bytes written for `endless` answers before the client hung up. */
  endlessBytes: number;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startFaultServer(pass: (req: IncomingMessage, res: ServerResponse) => Promise<void>, fetchBytes: (name: string) => Promise<Buffer>): Promise<FaultServer> {
  const faults = new Map<string, { fault: Fault; left: number }[]>();
  const requests = new Map<string, number>();
  const sockets = new Set<Socket>();
  const state = { endlessBytes: 0 };
  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    const name = decodeURIComponent((req.url ?? "").split("?")[0]!.replace(/^\/images\//, ""));
    requests.set(name, (requests.get(name) ?? 0) + 1);
    const queue = faults.get(name) ?? [];
    const head = queue[0];
    if (!head) return pass(req, res);
    if (--head.left <= 0) queue.shift();
    const f = head.fault;
    switch (f.kind) {
      case "status":
        res.writeHead(f.status, { "content-type": "text/plain", ...f.headers }).end(`status ${f.status}`);
        return;
      case "corrupt": {
        const bytes = Buffer.from(await fetchBytes(name));
        bytes[bytes.length >> 1]! ^= 0xff;
        res.writeHead(200, { "content-type": "image/jpeg", "content-length": bytes.length }).end(bytes);
        return;
      }
      case "cut": {
        const bytes = await fetchBytes(name);
        res.writeHead(200, { "content-type": "image/jpeg", "content-length": bytes.length });
        res.write(bytes.subarray(0, bytes.length >> 1), () => res.destroy());
        return;
      }
      case "short": {
        const half = (await fetchBytes(name)).subarray(0, 100);
        res.writeHead(200, { "content-type": "image/jpeg", "content-length": half.length }).end(half);
        return;
      }
      case "declared-huge":
        res.writeHead(200, { "content-type": "image/jpeg", "content-length": 5_000_000_000 });
        res.write(Buffer.alloc(1000));
        return;
      case "endless": {
        res.writeHead(200, { "content-type": "image/jpeg" });
        res.write(await fetchBytes(name));
        const junk = Buffer.alloc(64 * 1024, 0x55);
        const more = () => {
          while (!res.destroyed && res.write(junk)) state.endlessBytes += junk.length;
          if (!res.destroyed) res.once("drain", more);
        };
        res.on("close", () => res.removeAllListeners("drain"));
        more();
        return;
      }
      case "stall":
        res.writeHead(200, { "content-type": "image/jpeg", "content-length": (await fetchBytes(name)).length });
        res.flushHeaders();
        return;
      case "hang":
        return;
      case "reset":
        req.socket.destroy();
        return;
    }
  };
  let server: Server = createServer((req, res) => void handler(req, res).catch(() => res.destroy()));
  const track = (s: Server) => s.on("connection", (sock) => (sockets.add(sock), sock.on("close", () => sockets.delete(sock))));
  track(server);
  const { port } = await listen(server, 0, "127.0.0.1");
  const shut = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
  return {
    base: `http://127.0.0.1:${port}`,
    fault(name, fault, times = Number.POSITIVE_INFINITY) {
      faults.set(name, [...(faults.get(name) ?? []), { fault, left: times }]);
    },
    clear: () => faults.clear(),
    requests,
    get endlessBytes() {
      return state.endlessBytes;
    },
    down: shut,
    async up() {
      server = createServer((req, res) => void handler(req, res).catch(() => res.destroy()));
      track(server);
      // The same port: a client configured with this base must find it again.
      await listen(server, port, "127.0.0.1");
    },
    close: shut,
  };
}

/** Passes a request on to a running API (`artdesc serve`) and streams its answer back. */
export function proxyTo(apiBase: string): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    const upstream = await fetch(new URL(req.url ?? "/", apiBase), { method: req.method ?? "GET" });
    const headers: Record<string, string> = {};
    upstream.headers.forEach((v, k) => {
      if (k !== "transfer-encoding" && k !== "connection") headers[k] = v;
    });
    res.writeHead(upstream.status, headers);
    res.end(Buffer.from(await upstream.arrayBuffer()));
  };
}

/** The API's real /images/ route over `apiDir`, behind a fault server. */
export function imageApiWithFaults(apiDir: string): Promise<FaultServer> {
  const route = imageRoute(apiDir);
  return startFaultServer(
    async (req, res) => {
      if (!(await route(req, res))) res.writeHead(404).end();
    },
    async (name) => readFileSync(join(apiDir, name)),
  );
}

/** Stores `data` in `apiDir` under its content-hash name, as the sync does. */
export function storeByHash(apiDir: string, data: Buffer): { localPath: string; localHash: string; localBytes: number } {
  const localHash = createHash("sha256").update(data).digest("hex");
  const localPath = localPathFor(localHash);
  mkdirSync(dirname(join(apiDir, localPath)), { recursive: true });
  writeFileSync(join(apiDir, localPath), data);
  return { localPath, localHash, localBytes: data.length };
}
