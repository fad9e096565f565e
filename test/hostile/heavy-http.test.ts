import { request } from "node:http";
import { connect } from "node:net";
import { gzipSync } from "node:zlib";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { REFUSED_BODY_DRAIN } from "../../src/api/refused-body.js";
import { createHttpApp, SERVER_LIMITS } from "../../src/server.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { DOCUMENTED_FILES, documentedQueries } from "../support/documented-queries.js";
import { makeArtwork } from "../support/factories.js";
import { serveOnFreePort } from "../support/http.js";
import { capturingLogger } from "../support/log.js";

/**
 * Request size limits in front of Yoga, through a real server on 127.0.0.1: a body over
 * GRAPHQL_MAX_BODY_BYTES is refused with 413 whether it declares its length or streams it in
 * chunks, before Yoga reads or parses it; a URL over HTTP_MAX_URL_BYTES gets 414; a compressed
 * body 415; and the server's timeouts bound slow clients.
 */
const config = loadConfig({});
let t: TestDb;
let base = "";
let port = 0;
let close = () => {};
let server: import("node:http").Server;

beforeAll(async () => {
  t = await createTestDb();
  await makeArtwork(t.db, {});
  ({ server } = createHttpApp({ db: t.db, config, log: pino({ level: "silent" }) }));
  ({ base, close } = await serveOnFreePort(server));
  port = Number(new URL(base).port);
});
afterAll(async () => {
  close();
  await t.close();
});

interface Answer {
  status: number;
  body: string;
}

/** A POST to /graphql written in `chunks` (chunked transfer unless `length` is given). */
function rawPost(chunks: (string | Buffer)[], headers: Record<string, string | number> = {}): Promise<Answer> {
  return new Promise((resolvePromise, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/graphql", method: "POST", headers: { "content-type": "application/json", ...headers } }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (c: string) => (body += c)).on("end", () => resolvePromise({ status: res.statusCode ?? 0, body }));
    });
    // The server may answer and close before the whole body is written.
    req.on("error", reject);
    (async () => {
      for (const c of chunks) {
        if (req.destroyed) return;
        req.write(c);
        await new Promise((r) => setTimeout(r, 5));
      }
      req.end();
    })();
  });
}

const codeOf = (a: Answer) => (JSON.parse(a.body) as { errors: { extensions: { code: string }; message: string }[] }).errors[0]!;
const max = config.GRAPHQL_MAX_BODY_BYTES;

describe("request body limit", () => {
  it("the documented and default limits fit: the longest documented query is far below GRAPHQL_MAX_BODY_BYTES", () => {
    const longest = Math.max(...DOCUMENTED_FILES.flatMap((f) => documentedQueries(f)).map((q) => Buffer.byteLength(JSON.stringify({ query: q }))));
    // A document of GRAPHQL_MAX_TOKENS tokens of 10 bytes each fits too.
    expect(longest).toBeLessThan(max / 10);
    expect(config.GRAPHQL_MAX_TOKENS * 10).toBeLessThan(max);
  });

  it("a body that declares a length over the limit gets 413 BODY_TOO_LARGE before it is sent", async () => {
    const req = request({ host: "127.0.0.1", port, path: "/graphql", method: "POST", headers: { "content-type": "application/json", "content-length": 50_000_000 } });
    const answer = await new Promise<Answer>((resolvePromise, reject) => {
      req.on("response", (res) => {
        let body = "";
        res.setEncoding("utf8").on("data", (c: string) => (body += c)).on("end", () => resolvePromise({ status: res.statusCode ?? 0, body }));
      });
      req.on("error", reject);
      req.write("{");
    });
    req.destroy();
    expect(answer.status).toBe(413);
    expect(codeOf(answer)).toEqual({ message: `The request body is larger than ${max} bytes (GRAPHQL_MAX_BODY_BYTES)`, extensions: { code: "BODY_TOO_LARGE" } });
  });

  it.each([
    ["100,000 ids in a variable (1.4 MB, one write)", [JSON.stringify({ query: "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", variables: { ids: Array(100_000).fill("QXJ0d29yazox") } })]],
    ["a chunked body that never ends its JSON", ['{"query": "{ stats { artworks } }", "pad": "', ...Array.from({ length: 40 }, () => "x".repeat(8_000))]],
    ["a long string of spaces after a valid document", [`{"query": "{ stats { artworks } }"${" ".repeat(max)}}`]],
  ])("%s: 413", async (_name, chunks) => {
    // The server answers 413 as soon as the body passes the limit, then reads and drops the rest:
    // closing at once let the kernel answer the unread bytes with a reset, and a client still
    // writing saw EPIPE or ECONNRESET instead of the 413 (one in four 1.4 MB bodies sent in one write).
    for (let i = 0; i < 10; i++) {
      const answer = await rawPost(chunks);
      expect(answer.status, answer.body).toBe(413);
      expect(codeOf(answer).extensions.code).toBe("BODY_TOO_LARGE");
    }
  });

  it("a refused body is read and dropped up to REFUSED_BODY_DRAIN.bytes, then the connection is cut", async () => {
    const total = 3 * REFUSED_BODY_DRAIN.bytes;
    const started = performance.now();
    const outcome = await new Promise<{ answer: string; written: number }>((resolvePromise) => {
      let answer = "";
      let written = 0;
      const socket = connect(port, "127.0.0.1", async () => {
        socket.write(`POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${total}\r\n\r\n`);
        const chunk = Buffer.alloc(64 * 1024, 32);
        while (written < total && !socket.destroyed) {
          written += chunk.length;
          if (!socket.write(chunk)) await new Promise((r) => socket.once("drain", r));
        }
      });
      socket.setEncoding("utf8").on("data", (d: string) => (answer += d));
      // The cut: a reset or a broken pipe on the next write, then the socket closes.
      socket.on("error", () => {});
      socket.once("close", () => resolvePromise({ answer, written }));
      socket.once("drain", () => {});
    });
    expect(outcome.answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(outcome.answer).toContain("BODY_TOO_LARGE");
    // Read past the answer (closing at once took no more than the sockets' buffers, a few MB), then
    // cut by its size well before the client had sent it all, not by the time limit.
    expect(outcome.written).toBeGreaterThan(REFUSED_BODY_DRAIN.bytes);
    expect(outcome.written).toBeLessThan(total);
    expect(performance.now() - started).toBeLessThan(REFUSED_BODY_DRAIN.ms);
  });

  it("after a refused body has been read to its end, the same connection answers the next request", async () => {
    const size = 2 * 1024 * 1024;
    const answers = await new Promise<string>((resolvePromise, reject) => {
      let text = "";
      const socket = connect(port, "127.0.0.1", () => {
        socket.write(`POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\n\r\n`);
        socket.write(Buffer.alloc(size, 32));
        socket.write(`GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
      });
      socket.setEncoding("utf8").on("data", (d: string) => (text += d));
      socket.once("error", reject);
      socket.once("close", () => resolvePromise(text));
    });
    const statuses = [...answers.matchAll(/HTTP\/1\.1 (\d+) /g)].map((m) => m[1]);
    expect(statuses).toEqual(["413", "200"]);
  });

  it("a body just under the limit still runs", async () => {
    const query = "{ stats { artworks } }";
    const body = JSON.stringify({ query: query + " ".repeat(max - Buffer.byteLength(JSON.stringify({ query })) - 10) });
    expect(Buffer.byteLength(body)).toBeGreaterThan(max - 20);
    const answer = await rawPost([body]);
    expect(answer.status, answer.body).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ data: { stats: { artworks: 1 } } });
  });

  it("a gzip body gets 415: 100 KB compressed could be 100 MB of JSON", async () => {
    const zipped = gzipSync(JSON.stringify({ query: "{ stats { artworks } }", pad: " ".repeat(5_000_000) }));
    expect(zipped.length).toBeLessThan(max);
    const answer = await rawPost([zipped], { "content-encoding": "gzip", "content-length": zipped.length });
    expect(answer.status).toBe(415);
    expect(codeOf(answer).extensions.code).toBe("UNSUPPORTED_ENCODING");
  });

  it("/health answers while a client streams an oversized body", async () => {
    const pending = rawPost(Array.from({ length: 30 }, () => "x".repeat(10_000))).catch(() => null);
    const started = performance.now();
    expect((await fetch(`${base}/health`)).status).toBe(200);
    expect(performance.now() - started).toBeLessThan(1000);
    expect((await pending)?.status ?? 413).toBe(413);
  });
});

describe("refusals a browser app on another origin can read", () => {
  it("a 413 or 414 written before GraphQL carries the CORS headers yoga gives the same origin, and none for another", async () => {
    const open = createHttpApp({ db: t.db, config: loadConfig({ CORS_ORIGINS: "https://app.example.org" }), log: pino({ level: "silent" }) });
    const served = await serveOnFreePort(open.server);
    try {
      const big = JSON.stringify({ query: "{ __typename }", pad: "x".repeat(max) });
      const post = (origin: string) => fetch(`${served.base}/graphql`, { method: "POST", headers: { origin, "content-type": "application/json" }, body: big });
      const allowed = await post("https://app.example.org");
      expect(allowed.status).toBe(413);
      expect(allowed.headers.get("access-control-allow-origin")).toBe("https://app.example.org");
      expect(allowed.headers.get("access-control-allow-credentials")).toBe("true");
      expect(allowed.headers.get("access-control-expose-headers")).toBe("retry-after, etag");
      expect(allowed.headers.get("vary")).toBe("Origin");
      const long = await fetch(`${served.base}/graphql?query=${"x".repeat(config.HTTP_MAX_URL_BYTES)}`, { headers: { origin: "https://app.example.org" } });
      expect(long.status).toBe(414);
      expect(long.headers.get("access-control-allow-origin")).toBe("https://app.example.org");
      const other = await post("https://evil.example");
      expect(other.status).toBe(413);
      expect(other.headers.get("access-control-allow-origin")).toBeNull();
      expect(other.headers.get("vary")).toBe("Origin");
    } finally {
      served.close();
    }
    // Without CORS_ORIGINS (this file's server): no CORS header on a refusal either.
    const closed = await fetch(`${base}/graphql`, { method: "POST", headers: { origin: "https://app.example.org", "content-type": "application/json" }, body: JSON.stringify({ pad: "x".repeat(max) }) });
    expect(closed.status).toBe(413);
    expect(closed.headers.get("access-control-allow-origin")).toBeNull();
    expect(closed.headers.get("vary")).toBeNull();
  });
});

describe("a client that goes away while sending its body", () => {
  it("is not logged as the server's failure, and the server goes on answering", async () => {
    const { lines, log } = capturingLogger("debug");
    const app = createHttpApp({ db: t.db, config, log });
    const served = await serveOnFreePort(app.server);
    try {
      const p = Number(new URL(served.base).port);
      for (const path of ["/graphql", "/review"]) {
        const socket = connect(p, "127.0.0.1");
        await new Promise((r) => socket.once("connect", r));
        socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nverdict=`);
        await new Promise((r) => setTimeout(r, 100));
        socket.destroy();
      }
      await new Promise((r) => setTimeout(r, 200));
      expect(lines.filter((l) => (l.level as number) >= 40).map((l) => l.msg)).toEqual([]);
      expect(lines.filter((l) => l.msg === "request aborted by the client").length).toBeGreaterThanOrEqual(1);
      expect((await fetch(`${served.base}/health`)).status).toBe(200);
    } finally {
      served.close();
    }
  });
});

describe("a failed accept (out of file descriptors)", () => {
  it("is logged each time and the server goes on answering; it does not end the process", async () => {
    const { lines, log } = capturingLogger();
    const app = createHttpApp({ db: t.db, config, log });
    const served = await serveOnFreePort(app.server);
    try {
      // What net.Server emits when accept() fails; a second one found no listener before.
      for (let i = 0; i < 3; i++) app.server.emit("error", Object.assign(new Error("accept EMFILE"), { code: "EMFILE", syscall: "accept" }));
      expect(lines.filter((l) => l.msg === "accepting a connection failed")).toHaveLength(3);
      expect((await fetch(`${served.base}/health`)).status).toBe(200);
    } finally {
      served.close();
    }
  });
});

describe("URL and header limits, timeouts", () => {
  it("a GET whose URL is over HTTP_MAX_URL_BYTES gets 414 URL_TOO_LONG; a short one runs", async () => {
    const long = await fetch(`${base}/graphql?query=${encodeURIComponent("{ stats { artworks } }")}&pad=${"a".repeat(config.HTTP_MAX_URL_BYTES)}`);
    expect(long.status).toBe(414);
    expect(((await long.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code).toBe("URL_TOO_LONG");
    const short = await fetch(`${base}/graphql?query=${encodeURIComponent("{ stats { artworks } }")}`, { headers: { accept: "application/json" } });
    expect(short.status).toBe(200);
  });

  it("a URL no parser can read (\"//\", \"//:x\") gets 400 BAD_URL, not a 500 with an error in the log", async () => {
    for (const path of ["//", "///", "//:x/graphql"]) {
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request({ host: "127.0.0.1", port, path, method: "GET" }, (res) => {
          let body = "";
          res.setEncoding("utf8").on("data", (c: string) => (body += c)).on("end", () => resolve({ status: res.statusCode!, body }));
        });
        req.on("error", reject).end();
      });
      expect(answer.status).toBe(400);
      expect(JSON.parse(answer.body)).toEqual({ errors: [{ message: "The request URL cannot be parsed", extensions: { code: "BAD_URL" } }] });
    }
  });

  it("a Host header that makes the URL unreadable gets 400 BAD_URL, not a 500 with the stack and the install path", async () => {
    const send = (path: string, host: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request({ host: "127.0.0.1", port, path, method: "GET", headers: { host } }, (res) => {
          let body = "";
          res.setEncoding("utf8").on("data", (c: string) => (body += c)).on("end", () => resolve({ status: res.statusCode!, body }));
        });
        req.on("error", reject).end();
      });
    // An empty Host is allowed (RFC 9112): served.
    expect((await send("/", "")).status).toBe(200);
    for (const host of ["a b", "[::1", "x:99999", "a%"]) {
      for (const path of ["/graphql?query=%7B__typename%7D", "/x", "/images/x.jpg"]) {
        const answer = await send(path, host);
        expect(answer.status, `${host} ${path}`).toBe(400);
        expect(JSON.parse(answer.body).errors[0].extensions.code).toBe("BAD_URL");
      }
    }
  });

  it("a request target in absolute form (GET http://host/path, which HTTP/1.1 servers accept) is served as its path", async () => {
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port, path: "http://evil.example/graphql?query=%7B__typename%7D", method: "GET", headers: { accept: "application/json" } }, (res) => {
        let body = "";
        res.setEncoding("utf8").on("data", (c: string) => (body += c)).on("end", () => resolve({ status: res.statusCode!, body }));
      });
      req.on("error", reject).end();
    });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ data: { __typename: "Query" } });
  });

  it("a kept answer carries one quoted ETag over HTTP, and a GET sending it back gets 304", async () => {
    const path = `/graphql?query=${encodeURIComponent("{ stats { artworks } }")}`;
    const get = (headers: Record<string, string> = {}) =>
      new Promise<{ status: number; raw: string[] }>((resolve, reject) => {
        const req = request({ host: "127.0.0.1", port, path, method: "GET", headers: { accept: "application/json", ...headers } }, (res) => {
          res.resume().on("end", () => resolve({ status: res.statusCode!, raw: res.rawHeaders }));
        });
        req.on("error", reject).end();
      });
    let answer = await get();
    for (let i = 0; i < 3 && !answer.raw.some((h) => h.toLowerCase() === "etag"); i++) answer = await get();
    // rawHeaders: name, value, name, value…
    const values = answer.raw.flatMap((h, i) => (i % 2 === 0 && h.toLowerCase() === "etag" ? [answer.raw[i + 1]!] : []));
    expect(values).toHaveLength(1);
    expect(values[0]).toMatch(/^"[^"]+"$/);
    expect((await get({ "if-none-match": values[0]! })).status).toBe(304);
  });

  it("headers over 16 KB get 431 from Node", async () => {
    const res = await fetch(`${base}/health`, { headers: { "x-big": "a".repeat(20_000) } }).catch(() => null);
    expect(res?.status ?? 431).toBe(431);
  });

  it("slow clients are bounded: headers within 10 s, the whole request within 30 s, idle keep-alive 5 s, 100 headers", () => {
    expect(server.headersTimeout).toBe(SERVER_LIMITS.headersTimeout);
    expect(server.requestTimeout).toBe(SERVER_LIMITS.requestTimeout);
    expect(server.keepAliveTimeout).toBe(SERVER_LIMITS.keepAliveTimeout);
    expect(server.maxHeadersCount).toBe(SERVER_LIMITS.maxHeadersCount);
    expect(server.timeout).toBe(SERVER_LIMITS.socketIdleTimeout);
    expect(SERVER_LIMITS.headersTimeout).toBeLessThanOrEqual(10_000);
    // Longer than a subscription stream's 12 s between pings.
    expect(SERVER_LIMITS.socketIdleTimeout).toBeGreaterThan(12_000);
  });
});
