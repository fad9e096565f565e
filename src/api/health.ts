import type { IncomingMessage, ServerResponse } from "node:http";
import { type Db, probeRead, probeWrite, writerStatus } from "../db.js";
import type { Logger } from "../log.js";
import { RateLimitedLog } from "../ops/rate-limited-log.js";
import { ConnectionLockTimeoutError } from "../store/connection-lock.js";

/** How long /ready waits for the connection and the write lock (SQLite's, or PostgreSQL's advisory one) before it answers. */
const READY_WAIT_MS = 500;
/** /ready's answer is reused this long: a flood of probes costs one write a second. */
const READY_REUSE_MS = 1_000;

/**
 * What the public answers say when a probe fails. Fixed words: the error itself can name the
 * database file's path or a server's host and port, so it goes to the log only (ProbeFailures).
 */
export const DATABASE_UNAVAILABLE = "unavailable";
export const WRITE_FAILED = "cannot write (disk full, failing or read-only)";

interface Answer {
  status: number;
  body: Record<string, string>;
}

/** Told of each failed probe, with the full error (and the writer's last failure); must return at once. */
export type ProbeFailures = (probe: "read" | "write", err: unknown, lastFailure?: string) => void;

const unheard: ProbeFailures = () => {};

/**
 * Liveness, cheap and never waiting for the writer: 200 `{"status":"ok","database":"ok"}` while
 * the database can be read and no transaction has held the connection past its limit; 503
 * otherwise (a stuck writer is what a restart cures). On PostgreSQL the read is a query, so the
 * answer is a promise.
 */
export function health(db: Db, failed: ProbeFailures = unheard): Answer | Promise<Answer> {
  let read: void | Promise<void>;
  const unreadable = (err: unknown): Answer => {
    failed("read", err);
    return { status: 503, body: { status: "error", database: DATABASE_UNAVAILABLE } };
  };
  try {
    read = probeRead(db);
  } catch (err) {
    return unreadable(err);
  }
  return read instanceof Promise ? read.then(() => writerHealth(db), unreadable) : writerHealth(db);
}

const stuckFor = (w: { heldForMs: number | null }) => `stuck: a transaction has held the connection for ${Math.round((w.heldForMs ?? 0) / 1000)} s`;

function writerHealth(db: Db): Answer {
  const w = writerStatus(db);
  if (w.stuck) return { status: 503, body: { status: "error", database: "ok", writer: stuckFor(w) } };
  return { status: 200, body: { status: "ok", database: "ok" } };
}

/**
 * Readiness: can this process write now? Commits a real write within READY_WAIT_MS. 503 with the
 * reason when the writer is stuck, or the file cannot be written (full disk, I/O error, read-only).
 */
export async function readiness(db: Db, probe?: () => Promise<Answer>, failed: ProbeFailures = unheard): Promise<Answer> {
  const live = await health(db, failed);
  if (live.status !== 200) return { status: 503, body: { ...live.body, status: "unavailable" } };
  return probe ? probe() : writeProbe(db, failed);
}

async function writeProbe(db: Db, failed: ProbeFailures): Promise<Answer> {
  try {
    const writer = await probeWrite(db, READY_WAIT_MS);
    return { status: 200, body: { status: "ready", database: "ok", writer } };
  } catch (err) {
    const w = writerStatus(db);
    // Our connection was busy with a transaction that is not (yet) stuck: writes wait, they work.
    if (err instanceof ConnectionLockTimeoutError && !w.stuck && !w.lastFailure) {
      return { status: 200, body: { status: "ready", database: "ok", writer: "busy" } };
    }
    failed("write", err, w.lastFailure?.message);
    return { status: 503, body: { status: "unavailable", database: "ok", writer: w.stuck ? stuckFor(w) : WRITE_FAILED } };
  }
}

/**
 * `/health` and `/ready` (GET and HEAD). A failed probe's error goes to `log` as a warning, each kind
 * at most once a minute (a supervisor probing every second must not flood it); the answers carry a
 * fixed word.
 */
export function healthRoutes(db: Db, log: Logger): (req: IncomingMessage, res: ServerResponse, path: string) => Promise<boolean> {
  const warnings = new RateLimitedLog(log);
  const failed: ProbeFailures = (probe, err, lastFailure) =>
    void warnings.warn(
      `${probe}-probe`,
      { event: "health-probe", probe, err, ...(lastFailure ? { lastFailure } : {}) },
      probe === "read" ? "health probe: the database cannot be read" : "readiness probe: the database cannot take a write",
    );
  let cached: { at: number; answer: Promise<Answer> } | null = null;
  // Liveness is checked every time; only the write probe's answer is reused.
  const ready = () =>
    readiness(
      db,
      () => {
        const now = performance.now();
        if (!cached || now - cached.at > READY_REUSE_MS) cached = { at: now, answer: writeProbe(db, failed) };
        return cached.answer;
      },
      failed,
    );
  return async (req, res, path) => {
    if (path !== "/health" && path !== "/ready") return false;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return true;
    }
    const { status, body } = path === "/health" ? await health(db, failed) : await ready();
    const json = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store", "content-length": Buffer.byteLength(json) });
    res.end(req.method === "HEAD" ? undefined : json);
    return true;
  };
}
