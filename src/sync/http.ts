import { readFileSync } from "node:fs";
import type { Config } from "../config.js";

/**
 * The one polite fetch for every Wikimedia request: a User-Agent that names a contact, a timeout on
 * every request, Retry-After honoured on 429 and maxlag answers (a host that asks for longer than
 * RETRY_AFTER_MAX_S is left alone until then: its requests fail, and the run records them),
 * exponential backoff with jitter on 5xx, resets and timeouts, and a bounded number of retries.
 * Policy: https://meta.wikimedia.org/wiki/User-Agent_policy and
 * https://www.mediawiki.org/wiki/Manual:Maxlag_parameter
 */

const APP_VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

export type HttpConfig = Pick<Config, "USER_AGENT_CONTACT" | "HTTP_TIMEOUT_MS" | "HTTP_MAX_RETRIES" | "RETRY_AFTER_MAX_S" | "HTTP_RETRY_BASE_MS" | "HTTP_MAX_BODY_BYTES">;

/** Longest exponential backoff between two tries (5xx, timeouts, resets); Retry-After has its own cap. */
export const BACKOFF_MAX_MS = 60_000;

/** A sync cannot start: the configuration breaks Wikimedia's rules. */
export class SyncConfigError extends Error {
  override name = "SyncConfigError";
}

/** A request that failed for good (after retries, or at once for a 4xx). */
export class HttpError extends Error {
  override name = "HttpError";
  constructor(
    message: string,
    readonly url: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/**
 * A 200 answer whose body is not what was asked for: JSON cut short by a WDQS timeout, an HTML error
 * page, or JSON that lacks what the request asked for. Retried like a transient failure; thrown
 * again once the retries are spent.
 */
export class BadResponseError extends Error {
  override name = "BadResponseError";
}

export function userAgent(contact: string): string {
  // Node's fetch is undici; the policy asks for "<client>/<version> (<contact>) <library>/<version>".
  return `artdesc/${APP_VERSION} (${contact}) undici/${process.versions.undici ?? "unknown"}`;
}

/** Throws SyncConfigError, saying why, when no contact is configured. */
export function requireContact(contact: string | undefined): string {
  if (!contact?.trim()) {
    throw new SyncConfigError(
      "USER_AGENT_CONTACT is not set. Wikimedia's User-Agent policy (https://meta.wikimedia.org/wiki/User-Agent_policy) " +
        "blocks clients that do not name a contact; set USER_AGENT_CONTACT to a URL or an e-mail address where you can be reached.",
    );
  }
  return contact.trim();
}

export interface RequestOptions {
  method?: "GET" | "POST";
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
  /**
   * Only URLs it accepts are fetched: the first, and each redirect, which is then followed here
   * (at most MAX_REDIRECTS) instead of by fetch. Any other is an HttpError, never retried.
   */
  allowUrl?: (url: URL) => boolean;
}

/** Redirects followed for one request, at most, when its URLs are checked (allowUrl). */
export const MAX_REDIRECTS = 5;

/** Checks a parsed answer against what was asked for: returns it typed, or throws BadResponseError. */
export type AnswerParser<T> = (json: unknown) => T;

export interface HttpClient {
  readonly userAgent: string;
  /**
   * GETs or POSTs and parses JSON, then `parse` validates it; an unparsable body, an HTML page, a
   * `maxlag` error and an answer `parse` refuses (BadResponseError) are retried.
   */
  json<T>(url: string, options?: RequestOptions & { parse?: AnswerParser<T> }): Promise<T>;
  /** The whole body as bytes (an image). A connection reset mid-body is retried. */
  bytes(url: string, options?: RequestOptions): Promise<Buffer>;
}

export interface HttpClientDeps {
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
}

/** The Content-Type of an HTML page: what a proxy or an overloaded server answers 200 with instead of the thing asked for. */
const HTML_TYPE = /^\s*text\/html/i;

class RetryableError extends Error {
  constructor(
    message: string,
    /** Seconds the server asked us to wait, when it said. */
    readonly retryAfterS?: number,
  ) {
    super(message);
  }
}

export function createHttpClient(config: HttpConfig, deps: HttpClientDeps = {}): HttpClient {
  const ua = userAgent(requireContact(config.USER_AGENT_CONTACT));
  const sleep = deps.sleep ?? abortableSleep;
  const random = deps.random ?? Math.random;
  const baseMs = config.HTTP_RETRY_BASE_MS;
  const retryAfterCapMs = config.RETRY_AFTER_MAX_S * 1000;
  /** Hosts that asked for a longer wait than RETRY_AFTER_MAX_S, and until when: not asked anything before then. */
  const quietUntil = new Map<string, number>();

  /** fetch, and with `allowUrl`, each hop checked before it is asked for (redirects followed here). */
  async function fetchChecked(url: string, init: RequestInit, allowUrl: RequestOptions["allowUrl"]): Promise<Response> {
    if (!allowUrl) return fetch(url, init);
    let current = new URL(url);
    for (let hop = 0; ; hop++) {
      if (!allowUrl(current)) throw new HttpError(`${hop ? "redirected to" : "a URL on"} a host that is not allowed (${current.protocol}//${current.host})`, url);
      const res = await fetch(current, { ...init, redirect: "manual" });
      const location = res.status >= 300 && res.status < 400 ? res.headers.get("location") : null;
      if (location === null) return res;
      await res.body?.cancel().catch(() => undefined);
      if (hop === MAX_REDIRECTS) throw new HttpError(`more than ${MAX_REDIRECTS} redirects`, url);
      current = new URL(location, current);
    }
  }

  async function request<T>(url: string, options: RequestOptions, read: (res: Response) => Promise<T>): Promise<T> {
    let lastError: unknown;
    const host = new URL(url).host;
    const quietFor = (quietUntil.get(host) ?? 0) - Date.now();
    if (quietFor > 0) {
      throw new HttpError(`${host} asked to be left alone for ${Math.ceil(quietFor / 1000)} s more (Retry-After), so it was not asked: ${url}`, url);
    }
    for (let attempt = 0; attempt <= config.HTTP_MAX_RETRIES; attempt++) {
      options.signal?.throwIfAborted();
      const timeout = AbortSignal.timeout(config.HTTP_TIMEOUT_MS);
      const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
      try {
        const res = await fetchChecked(url, {
          method: options.method ?? "GET",
          headers: { "user-agent": ua, "accept-encoding": "gzip", ...options.headers },
          body: options.body,
          signal,
        }, options.allowUrl);
        if (res.status === 429 || res.status >= 500) {
          await res.body?.cancel().catch(() => undefined);
          throw new RetryableError(`HTTP ${res.status}`, retryAfter(res.headers.get("retry-after")));
        }
        if (!res.ok) {
          await res.body?.cancel().catch(() => undefined);
          throw new HttpError(`HTTP ${res.status} ${res.statusText} for ${url}`, url, res.status);
        }
        // The body is read under the same timeout, so a stalled transfer is a timeout too.
        return await read(res);
      } catch (err) {
        if (options.signal?.aborted) throw options.signal.reason;
        if (err instanceof HttpError) throw err;
        lastError = err;
        const askedMs = err instanceof RetryableError && err.retryAfterS !== undefined ? err.retryAfterS * 1000 : undefined;
        // Asking again before the server said is what gets a client banned (wikimedia.md): a wait
        // longer than this client keeps a run open for fails the request now, and a later run asks.
        if (askedMs !== undefined && askedMs > retryAfterCapMs) {
          quietUntil.set(host, Date.now() + askedMs);
          throw new HttpError(
            `${describeError(err as Error)}: the server asked to wait ${Math.ceil(askedMs / 1000)} s before asking again, longer than RETRY_AFTER_MAX_S (${config.RETRY_AFTER_MAX_S} s), so it was not asked again: ${url}`,
            url,
          );
        }
        if (attempt === config.HTTP_MAX_RETRIES) break;
        await sleep(askedMs ?? backoff(attempt, baseMs, BACKOFF_MAX_MS, random), options.signal);
      }
    }
    const reason = lastError instanceof Error ? describeError(lastError) : String(lastError);
    const message = `${reason} after ${config.HTTP_MAX_RETRIES + 1} attempt(s): ${url}`;
    throw lastError instanceof BadResponseError ? new BadResponseError(message) : new HttpError(message, url);
  }

  return {
    userAgent: ua,
    json: <T>(url: string, options: RequestOptions & { parse?: AnswerParser<T> } = {}) =>
      request(url, options, async (res) => {
        const text = (await readCapped(res, url, config.HTTP_MAX_BODY_BYTES)).toString("utf8");
        const type = res.headers.get("content-type") ?? "";
        // A proxy or an overloaded server can answer 200 with an HTML error page.
        if (HTML_TYPE.test(type) || /^\s*</.test(text)) {
          throw new BadResponseError(`an HTML page (${text.length} bytes) instead of JSON`);
        }
        let parsed: unknown;
        try {
          parsed = parseJson(text);
        } catch {
          // WDQS answers 200 and then cuts the JSON short when a query times out.
          throw new BadResponseError(`incomplete JSON (${text.length} bytes)${text.includes("TimeoutException") ? ": query timed out" : ""}`);
        }
        const apiError = (parsed as { error?: { code?: string; info?: string } } | null)?.error;
        if (apiError?.code === "maxlag") {
          throw new RetryableError(`maxlag: ${apiError.info ?? "database lagged"}`, retryAfter(res.headers.get("retry-after")) ?? 5);
        }
        return options.parse ? options.parse(parsed) : (parsed as T);
      }),
    // Images are compressed already: asked for as they are, so Content-Length can tell a body cut
    // short (undici's gunzip returns half a gzip stream without an error).
    bytes: (url: string, options: RequestOptions = {}) =>
      request(url, { ...options, headers: { "accept-encoding": "identity", ...options.headers } }, async (res) => {
        // A proxy or an overloaded server can answer 200 with an HTML error page: tried again, and
        // never taken for a file that is not an image (which would be remembered as refused).
        if (HTML_TYPE.test(res.headers.get("content-type") ?? "")) {
          await res.body?.cancel().catch(() => undefined);
          throw new RetryableError("an HTML page instead of the file");
        }
        const body = await readCapped(res, url, config.HTTP_MAX_BODY_BYTES);
        // Content-Length counts the bytes sent: for a compressed answer (a server that compressed
        // anyway), fetch has decompressed them, and only the decoder can tell.
        const encoding = (res.headers.get("content-encoding") ?? "identity").trim().toLowerCase();
        const expected = encoding === "identity" ? Number(res.headers.get("content-length")) : 0;
        if (expected && body.length !== expected) throw new RetryableError(`body cut short (${body.length} of ${expected} bytes)`);
        return body;
      }),
  };
}

/**
 * The body, at most `max` bytes after decompression (so a gzip bomb stops at the cap too): a larger
 * declared Content-Length is refused before anything is read, a longer stream as soon as it passes
 * the cap. Either is an HttpError, not retried: the same URL would answer the same again.
 */
export async function readCapped(res: Response, url: string, max: number): Promise<Buffer> {
  const tooLarge = (what: string) => new HttpError(`the answer is larger than ${max} bytes (HTTP_MAX_BODY_BYTES; ${what}) for ${url}`, url, res.status);
  const declared = Number(res.headers.get("content-length"));
  // Content-Length counts the encoded bytes; when it alone passes the cap, so would the body.
  if (Number.isFinite(declared) && declared > max) {
    await res.body?.cancel().catch(() => undefined);
    throw tooLarge(`${declared} declared`);
  }
  if (!res.body) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge("cut off while reading");
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, size);
}

/** Full jitter between half and all of base * 2^attempt, never above the cap. */
export function backoff(attempt: number, baseMs: number, capMs: number, random: () => number): number {
  const d = Math.min(capMs, baseMs * 2 ** attempt);
  return d / 2 + random() * (d / 2);
}

/** Retry-After in seconds: a number of seconds or an HTTP date. */
export function retryAfter(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  if (/^\d+(\.\d+)?$/.test(header.trim())) return Number(header);
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, (at - now) / 1000);
}

function describeError(err: Error): string {
  if (err.name === "TimeoutError") return "timed out";
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return `${err.message} (${cause.code})`;
  return err.message;
}

/** Waits `ms`; rejects with the signal's reason as soon as it is aborted. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * JSON whose strings carry no U+0000: no label or file name means one, and PostgreSQL's text type
 * refuses it (a work whose Wikidata label had one would fail on every run there). JSON can only
 * carry it escaped, so a text without the escape needs no second look.
 */
export function parseJson(text: string): unknown {
  if (!text.includes("\\u0000")) return JSON.parse(text);
  return JSON.parse(text, (_key, value: unknown) => (typeof value === "string" ? value.replaceAll("\u0000", "") : value));
}
