import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { AuthThrottle, authThrottleLimits } from "./api/auth-throttle.js";
import { clientKey, clientOf, trustedProxies } from "./api/client-address.js";
import { limitConnectionsPerClient, MAX_PIPELINED, oneRequestAtATime } from "./api/connections.js";
import { healthRoutes } from "./api/health.js";
import { imageRoute } from "./api/images.js";
import { refusedConnection } from "./api/refused-body.js";
import type { AppDeps, Yoga } from "./graphql/yoga.js";
import { graphiqlAssetRoute } from "./graphql/graphiql.js";
import { bearerToken, createGraphqlApp, isAuthorized, refusalCorsHeaders } from "./graphql/yoga.js";
import { createLogger, type Logger } from "./log.js";
import { RateLimitedLog } from "./ops/rate-limited-log.js";
import { workbenchRoute } from "./web/index.js";

export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean> | boolean;

/**
 * How long a client may take, in one place. Node's defaults let a slow client hold a socket for
 * minutes (headersTimeout 60 s, requestTimeout 300 s) with up to 2,000 headers; a client that
 * sends its request a byte at a time is cut off after these, and one that stops reading its answer
 * after socketIdleTimeout. A long response that keeps moving (a subscription stream) is not cut.
 */
export const SERVER_LIMITS = {
  /** The request line and headers must arrive within this (ms). */
  headersTimeout: 10_000,
  /** The whole request, body included, must arrive within this (ms). */
  requestTimeout: 30_000,
  /** An idle kept-alive connection is closed after this (ms). */
  keepAliveTimeout: 5_000,
  /**
   * A connection on which nothing moves either way for this long is closed (ms): a client that
   * stops reading its answer no longer holds the socket and the answer's buffers. Subscription
   * streams send a ping every 12 s, so a live one is never cut.
   */
  socketIdleTimeout: 60_000,
  /** Bytes of the request line and headers together (431 when exceeded). */
  maxHeaderSize: 16_384,
  /** Headers Node parses per request; the rest are dropped. */
  maxHeadersCount: 100,
  /**
   * How often Node looks for connections past headersTimeout or requestTimeout (ms). Its default, 30 s,
   * let a slow client keep its connection up to 30 s past either.
   */
  connectionsCheckingInterval: 1_000,
} as const;

/** The client went away while sending its body: nothing to answer, and not the server's failure. */
export class ClientAbortError extends Error {
  override name = "ClientAbortError";
  constructor() {
    super("the client closed the connection while sending the body");
  }
}

/** A request refused before it reached GraphQL (too large, too long, encoded). */
export class RequestRefusedError extends Error {
  override name = "RequestRefusedError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/**
 * The path of a request's URL. A request target in absolute form ("GET http://host/graphql", which
 * HTTP/1.1 servers must accept) is made its path and query, as every route reads them. A URL no
 * parser can read ("//", "//:x"), or one that the Host header makes unreadable ("a b", "x:99999":
 * the Fetch adapter under Yoga builds `http://<Host><path>` and answered 500 with the error's stack
 * as the body), is the client's error (400), refused before any route parses it, never a 500 with
 * an error in the log.
 */
function requestPath(req: IncomingMessage): string {
  try {
    const target = req.url ?? "/";
    if (!target.startsWith("/") && target !== "*") {
      const absolute = new URL(target);
      req.url = `${absolute.pathname}${absolute.search}`;
    }
    // An empty Host is allowed (RFC 9112, 3.2): the adapter then uses the local address.
    new URL(`http://${req.headers.host || "localhost"}${req.url}`);
    return new URL(req.url ?? "/", "http://local").pathname;
  } catch {
    throw new RequestRefusedError(400, "BAD_URL", "The request URL cannot be parsed");
  }
}

export interface HttpApp {
  yoga: Yoga;
  server: Server;
  /**
   * Resolves once no request is being handled, or after `timeoutMs`. A request whose client went
   * away (or whose socket a shutdown closed) may still be executing; the database must stay open
   * until it is done.
   */
  drain(timeoutMs: number): Promise<void>;
}

/**
 * The HTTP server: /graphql (and GraphiQL, its files under /graphiql/), /health (liveness), /ready (readiness: a write probe),
 * /images/<file> from IMAGE_DIR, the workbench (web/: /, /artworks/..., /jobs, /status, /thumbs/...), plus any extra routes (tried first, in order; a route returns
 * true when it answered). An unexpected error answers 500 and goes to `log` with its stack.
 */
export function createHttpApp(deps: AppDeps & { log?: Logger }, extraRoutes: RouteHandler[] = []): HttpApp {
  const yoga = createGraphqlApp(deps);
  const log = deps.log ?? createLogger(deps.config.LOG_LEVEL);
  const health = healthRoutes(deps.db, log);
  const images = imageRoute(deps.config.IMAGE_DIR, log);
  const authThrottle = new AuthThrottle(authThrottleLimits(deps.config));
  const workbench = workbenchRoute({ yoga, config: deps.config, log, authThrottle });
  const { GRAPHQL_MAX_BODY_BYTES: maxBody, HTTP_MAX_URL_BYTES: maxUrl } = deps.config;
  let handling = 0;
  const drained = new Set<() => void>();
  const { maxHeaderSize, requestTimeout, headersTimeout, keepAliveTimeout, connectionsCheckingInterval } = SERVER_LIMITS;
  // Once a minute per client: a client repeating it must not write the log as fast as it sends.
  const warnings = new RateLimitedLog(log);
  const inTurn = oneRequestAtATime(
    (req, res) => handle(req, res),
    (socket) => {
      const client = clientKey(socket.remoteAddress);
      warnings.warn(`pipelining ${client}`, { client, event: "pipelining" }, `a connection closed: it sent more than ${MAX_PIPELINED} requests ahead of their answers`);
    },
  );
  const budget = new BodyBudget(deps.config.HTTP_BODY_BYTES_IN_FLIGHT);
  const server = createServer({ maxHeaderSize, requestTimeout, headersTimeout, keepAliveTimeout, connectionsCheckingInterval }, async (req, res) => {
    bodyBudgets.set(req, budget);
    handling++;
    try {
      await inTurn(req, res);
    } finally {
      if (--handling === 0) for (const wake of drained) wake();
    }
  });
  limitConnectionsPerClient(server, deps.config.HTTP_MAX_CONNECTIONS_PER_CLIENT, trustedProxies(deps.config.TRUSTED_PROXIES), log);
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    try {
      if (Buffer.byteLength(req.url ?? "") > maxUrl) {
        throw new RequestRefusedError(414, "URL_TOO_LONG", `The request URL is longer than ${maxUrl} bytes (HTTP_MAX_URL_BYTES); send the query in a POST body`);
      }
      const path = requestPath(req);
      for (const route of [graphiqlAssetRoute, ...extraRoutes]) if (await route(req, res)) return;
      if (await health(req, res, path)) return;
      if (await images(req, res)) return;
      if (await workbench(req, res)) return;
      checkBearer(req, deps.config, authThrottle, log);
      // Yoga would read and parse a body of any size before a limit could look at it.
      if (req.method !== "GET" && req.method !== "HEAD" && req.method !== "OPTIONS") {
        (req as IncomingMessage & { body?: Buffer }).body = await readBody(req, maxBody);
      }
      await yoga(req, res);
    } catch (err) {
      if (err instanceof RequestRefusedError) return refuse(res, err, refusalCorsHeaders(req.headers.origin, deps.config.CORS_ORIGINS));
      if (err instanceof ClientAbortError) {
        deps.log?.debug({ method: req.method, url: req.url }, "request aborted by the client");
        res.destroy();
        return;
      }
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end("internal error");
      if (deps.log) deps.log.error({ err, method: req.method, url: req.url }, "request failed");
      else console.error(err);
    }
  };
  server.maxHeadersCount = SERVER_LIMITS.maxHeadersCount;
  server.timeout = SERVER_LIMITS.socketIdleTimeout;
  // Once listening, a failed accept (EMFILE when out of file descriptors) is an 'error' event:
  // with no listener it would end the process; the client retries, so it is logged and no more.
  server.once("listening", () => server.on("error", (err) => log.error({ err }, "accepting a connection failed")));
  const drain = (timeoutMs: number) =>
    new Promise<void>((resolve) => {
      if (handling === 0) return resolve();
      const done = () => {
        clearTimeout(timer);
        drained.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      drained.add(done);
    });
  return { yoga, server, drain };
}

/**
 * Bytes of request bodies an app holds while reading them, all requests together, at most. Each body
 * has its own limit; this one bounds thousands of half-sent bodies at once (6,000 connections from
 * many addresses, each holding 256 KB of a form it never finished, took 1.5 GB). A body whose
 * chunk would pass it while others hold some is refused with 503 and Retry-After; a body alone is
 * never refused by it, however large its own limit.
 */
export class BodyBudget {
  held = 0;
  constructor(readonly limit: number) {}
}

/** Each request's app's budget (set as the request arrives), for readBody wherever it is called. */
const bodyBudgets = new WeakMap<IncomingMessage, BodyBudget>();

/**
 * The body, at most `max` bytes: a larger Content-Length is refused before any byte is read, a
 * streamed (chunked) body as soon as it passes the limit. A compressed body is refused: its size
 * says nothing about what it expands to. While it is read, its bytes count against its app's
 * BodyBudget.
 */
export async function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const encoding = req.headers["content-encoding"];
  if (encoding && encoding !== "identity") {
    throw new RequestRefusedError(415, "UNSUPPORTED_ENCODING", `Content-Encoding "${encoding}" is not accepted; send the body uncompressed`);
  }
  const tooLarge = () => new RequestRefusedError(413, "BODY_TOO_LARGE", `The request body is larger than ${max} bytes (GRAPHQL_MAX_BODY_BYTES)`);
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > max) throw tooLarge();
  const budget = bodyBudgets.get(req);
  const busy = () =>
    new RequestRefusedError(503, "SERVER_BUSY", "The server is reading too many request bodies at once (HTTP_BODY_BYTES_IN_FLIGHT); try again shortly", { "retry-after": "1" });
  return new Promise((resolvePromise, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (err?: Error) => {
      req.off("data", onData).off("end", onEnd).off("error", onError).off("aborted", onAborted).off("close", onAborted);
      if (budget) budget.held -= size;
      size = 0;
      if (err) {
        // Read no more; the socket stays open for the answer, which closes it.
        req.pause();
        reject(err);
      }
    };
    const onData = (chunk: Buffer) => {
      if (size + chunk.length > max) return stop(tooLarge());
      if (budget && budget.held + chunk.length > budget.limit && budget.held > size) return stop(busy());
      size += chunk.length;
      if (budget) budget.held += chunk.length;
      chunks.push(chunk);
    };
    const onEnd = () => {
      stop();
      resolvePromise(Buffer.concat(chunks));
    };
    const onAborted = () => stop(new ClientAbortError());
    const onError = () => stop(new ClientAbortError());
    // "close" too: whatever ends the request early (a timeout, a reset) gives its bytes back.
    req.on("data", onData).on("end", onEnd).on("error", onError).on("aborted", onAborted).on("close", onAborted);
  });
}

/**
 * A GraphQL request's bearer token against the throttle: a client past AUTH_MAX_FAILURES wrong
 * tokens gets 429 for any token (so a right guess tells it nothing), and a wrong one counts. A
 * request without a token (no Authorization, an empty one, "Bearer" alone, another scheme) is
 * anonymous and never counted; nor is anything when no API_TOKEN is set.
 */
function checkBearer(req: IncomingMessage, config: AppDeps["config"], throttle: AuthThrottle, log: Logger): void {
  const token = config.API_TOKEN;
  const header = req.headers.authorization;
  if (!token || bearerToken(header) === null) return;
  const client = clientOf(req, trustedProxies(config.TRUSTED_PROXIES));
  const wait = throttle.retryAfterS(client);
  if (wait > 0) {
    throw new RequestRefusedError(429, "TOO_MANY_AUTH_FAILURES", `Too many wrong API tokens from this address; try again in ${wait} s (AUTH_MAX_FAILURES)`, { "retry-after": String(wait) });
  }
  if (!isAuthorized(header ?? null, token)) {
    throttle.fail(client);
    log.warn({ client, event: "auth-failure", via: "graphql" }, "a wrong API token");
  }
}

/**
 * A GraphQL-shaped JSON error (refusedConnection: a body not yet read whole is drained, else the
 * connection closes), with the CORS headers yoga would have given the asking origin.
 */
function refuse(res: ServerResponse, err: RequestRefusedError, cors: Record<string, string>): void {
  if (res.headersSent) return void res.destroy();
  refusedConnection(res);
  const body = JSON.stringify({ errors: [{ message: err.message, extensions: { code: err.code } }] });
  res.writeHead(err.status, { ...cors, ...err.headers, "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

export function listen(server: Server, port: number, host: string): Promise<{ port: number; host: string }> {
  return new Promise((resolvePromise, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      const addr = server.address();
      resolvePromise({ port: typeof addr === "object" && addr ? addr.port : port, host });
    });
  });
}
