import { createHash, randomUUID } from "node:crypto";
import { useResponseCache, type Cache } from "@graphql-yoga/plugin-response-cache";
import type { ExecutionResult } from "graphql";
import { getOperationAST } from "graphql";
import type { Plugin } from "graphql-yoga";
import { BoundedLru, type LruBounds } from "./bounded-lru.js";

/**
 * Answers kept at most, bytes of all kept answers (as JSON) together at most, and how many times a
 * request must be asked (under one database version) before its answer is kept.
 */
export type ResponseCacheBounds = LruBounds & { minAsks: number };

/**
 * Fields and types whose answer depends on the clock, not only on the database (ages, "alive",
 * durations to now, the next cron time): an answer that holds one is never kept. Type names
 * count wherever an object of the type appears in the answer; `Type.field` wherever the field
 * is asked for. test/graphql/response-cache.test.ts checks that each still exists in the schema.
 */
export const CLOCK_DEPENDENT = [
  "Query.status",
  "Query.nextSyncAt",
  "ProcessHeartbeat",
  "SyncRun.durationSeconds",
] as const;

/**
 * Answers to queries, kept until the next commit to the database by anyone. `version` is the
 * database's commit counter (dataVersion, src/store/data-version.ts), read when a request's key is made, before anything of
 * the request runs, and again at every lookup and store:
 * - the key hashes the version with the document, operation name, variables and session, so a
 *   request that starts after a commit can never name an answer kept before it (nor can an ETag
 *   sent in If-None-Match: the lookup drops every kept answer once the version has moved);
 * - an answer is stored only while the version it was keyed under is still the current one: one
 *   whose execution overlapped a commit may mix data from before and after it, and is dropped.
 * An answer is kept from the `minAsks`-th time its request is asked (2 by default), as CDNs "cache
 * on second hit": most requests are never asked twice before the next commit (a search typed once,
 * a query tried in GraphiQL, anything while a worker commits descriptions every few seconds). Each
 * kept answer is a tree of objects that lives until it is pushed out: keeping every one made a
 * quarter of what a search promotes into the old heap, for the garbage collector to copy and later
 * drop (BENCHMARKS.md, "A memory leak, and one-off answers").
 * Bounded in entries and bytes, least recently used first.
 */
export class ResponseCacheStore<V extends number | Promise<number> = number> implements Cache {
  readonly #answers: BoundedLru<ExecutionResult>;
  /**
   * How many times each recent key was handed out under the current version (every key made under
   * an earlier one is forgotten when the version moves; bounded: a forgotten key is just not stored).
   */
  readonly #issued = new Map<string, number>();
  #version: number | null = null;
  /**
   * Stores still reading the version (PostgreSQL). The response cache plugin does not wait for a
   * store: the answer goes out first, so the client's next ask could come before its answer was
   * kept. A lookup waits for the stores begun before it.
   */
  readonly #storing = new Set<Promise<void>>();

  /**
   * `currentVersion` answers at once (SQLite) or as a promise (PostgreSQL); the methods answer the
   * same way. `onStoreError` hears of a store that failed (the version could not be read): nobody
   * waits for a store, so its failure would otherwise go unseen, or end the process as an
   * unhandled rejection.
   */
  constructor(
    readonly bounds: ResponseCacheBounds,
    private readonly currentVersion: () => V,
    private readonly onStoreError: (err: unknown) => void = () => {},
  ) {
    this.#answers = new BoundedLru(bounds);
  }

  get size(): number {
    return this.#answers.size;
  }

  get bytes(): number {
    return this.#answers.bytes;
  }

  /** The key of a request: made before the request runs; it names the database version then. */
  key(parts: { documentString: string; operationName?: string | null; variableValues?: unknown; sessionId?: string | null }): Answer<V, string> {
    return this.#sync((version) => {
      const variables = sortedKeys(parts.variableValues ?? {}, 0);
      // Nested deeper than any input of the schema: a key of its own, never handed out, so never kept or found.
      if (variables === TOO_DEEP) return `unkept:${randomUUID()}`;
      const key = createHash("sha256")
        .update(JSON.stringify([version, parts.documentString, parts.operationName ?? "", variables, parts.sessionId ?? ""]))
        .digest("base64url");
      const asks = (this.#issued.get(key) ?? 0) + 1;
      this.#issued.delete(key);
      this.#issued.set(key, asks);
      if (this.#issued.size > this.bounds.maxEntries * 4) this.#issued.delete(this.#issued.keys().next().value!);
      return key;
    });
  }

  get(key: string): Answer<V, ExecutionResult | undefined> {
    // The plugin looks up an If-None-Match as it came: the quoted ETag this API sends (quotedEtag).
    const bare = unquotedEtag(key);
    const lookup = () => this.#sync(() => this.#answers.get(bare));
    if (this.#storing.size === 0) return lookup();
    return Promise.all(this.#storing).then(lookup) as Answer<V, ExecutionResult | undefined>;
  }

  set(key: string, result: ExecutionResult): Answer<V, void> {
    // The asks counted when this answer is done. On PostgreSQL the version is read before storing,
    // and the client's next ask of the same request can be counted meanwhile: without this, that
    // ask would make the answer before it kept, one ask early (and only sometimes).
    const asks = this.#issued.get(key) ?? 0;
    const stored = this.#sync(() => {
      // A key not handed out under this version (made before a commit, or a client's ETag) is never stored.
      if (asks < this.bounds.minAsks || !this.#issued.has(key) || this.bounds.maxEntries < 1) return;
      this.#answers.set(key, result, Buffer.byteLength(JSON.stringify(result)));
    });
    if (!(stored instanceof Promise)) return stored;
    const settled: Promise<void> = stored.catch(this.onStoreError).finally(() => this.#storing.delete(settled));
    this.#storing.add(settled);
    return settled as Answer<V, void>;
  }

  /** Mutations name what they changed; the commit itself already moved the version. */
  invalidate(): void {}

  /** Runs `then` on the database version now; every kept answer is dropped first when it has moved. */
  #sync<T>(then: (version: number) => T): Answer<V, T> {
    const apply = (version: number): T => {
      if (version !== this.#version) {
        this.#answers.clear();
        this.#issued.clear();
        this.#version = version;
      }
      return then(version);
    };
    const version = this.currentVersion();
    return (typeof version === "number" ? apply(version) : version.then(apply)) as Answer<V, T>;
  }
}

/** A value, or a promise of it where the version comes as a promise. */
type Answer<V, T> = V extends number ? T : Promise<T>;

/**
 * Deepest nesting of variables a key is made of. The schema's inputs nest a few levels; a client
 * may send undeclared variables nested thousands deep (a 100 KB body holds 50,000 levels), which
 * a recursive walk would overflow the stack on.
 */
const MAX_VARIABLE_DEPTH = 32;
const TOO_DEEP = Symbol("too deep");

/** The same variables in any key order are the same request; TOO_DEEP past MAX_VARIABLE_DEPTH. */
function sortedKeys(value: unknown, depth: number): unknown {
  if (value === null || typeof value !== "object") return value;
  if (depth >= MAX_VARIABLE_DEPTH) return TOO_DEEP;
  const entries = Array.isArray(value) ? value.entries() : Object.keys(value).sort().map((k) => [k, (value as Record<string, unknown>)[k]] as const);
  const out: [unknown, unknown][] = [];
  for (const [k, v] of entries) {
    const sorted = sortedKeys(v, depth + 1);
    if (sorted === TOO_DEEP) return TOO_DEEP;
    out.push([k, sorted]);
  }
  return Array.isArray(value) ? out.map(([, v]) => v) : Object.fromEntries(out);
}

/**
 * The response cache (@graphql-yoga/plugin-response-cache) over `store`. Only queries are kept:
 * never mutations or subscriptions, never an answer with errors (partial answers included), never
 * one that holds a CLOCK_DEPENDENT field or type, never introspection, never one marked notCacheable. `session` separates
 * answers whose content may depend on who asks: here the request's authorization verdict, which is
 * all a resolver can see of the caller (the context's `authorized`).
 */
/** Contexts whose answer rests on more than the database (notCacheable). */
const processDependent = new WeakSet<object>();

/**
 * Marks a request's answer as resting on this process's state rather than the database alone (a
 * search that fell back to words because the query embedder was busy or failing): the response
 * cache does not keep it, since the database version would not tell when it stops being true.
 */
export function notCacheable(context: object): void {
  processDependent.add(context);
}

export function useGraphqlResponseCache(store: ResponseCacheStore<number | Promise<number>>, session: (request: Request) => string): Plugin[] {
  const notQueries = new WeakSet<object>();
  const onlyQueries: Plugin = {
    onExecute({ args }) {
      // The response cache plugin follows; with this, it never looks at a mutation's answer.
      const operation = getOperationAST(args.document, args.operationName);
      if (operation?.operation !== "query") notQueries.add(args.contextValue as object);
    },
  };
  const cache = useResponseCache<Record<string, unknown>>({
    cache: store,
    session: (request) => session(request),
    // The plugin answers 304 to an If-None-Match naming a kept answer before it reads the body,
    // so on a POST it would skip a mutation sent with a stale ETag. Conditional requests are a GET
    // matter (yoga runs no mutation over GET): a POST that carries one just bypasses the cache.
    // Its If-None-Match shortcut (run with the server's context, before the request is read)
    // answered 304 to the tag of any kept answer, whatever this request asks: conditionalGets
    // answers 304 instead, once the request's own tag is known.
    enabled: (request, context) => {
      const conditional = request.headers.has("if-none-match");
      if (conditional && !("params" in (context as object))) return false;
      return !notQueries.has(context) && !(request.method !== "GET" && conditional);
    },
    buildResponseCacheKey: (parts) => store.key(parts),
    // Entities name types and ids for invalidation by mutation; the database version does that, so
    // no `id` field is added to every selection just to collect them.
    idFields: [],
    ttlPerSchemaCoordinate: Object.fromEntries(CLOCK_DEPENDENT.map((c) => [c, 0])),
    onTtl: ({ ttl, context }) => (processDependent.has(context) ? 0 : ttl),
    includeExtensionMetadata: false,
  });
  return [onlyQueries, cache, conditionalGets];
}

/**
 * An entity tag is quoted (RFC 9110, 8.8.3: `ETag: "…"`); the response cache plugin sends its key
 * bare. A bare ETag is not one, and a proxy in front may drop or mangle it (nginx weakens a strong
 * tag when it compresses: `W/"…"`). Sent quoted, as the one ETag header (the plugin's own, written
 * as "ETag", stayed beside a second one set as "etag": a client read `a, "a"`, which matched
 * nothing). A GET whose If-None-Match names this answer's own tag (quoted, bare or weak, alone or
 * in a list) gets 304 with the answer's headers and no body; any other tag, 200.
 */
const conditionalGets: Plugin = {
  onResponse({ request, response, setResponse, fetchAPI }) {
    const etag = response.headers.get("etag");
    if (!etag) return;
    const tag = unquotedEtag(etag);
    response.headers.delete("etag");
    response.headers.set("etag", `"${tag}"`);
    const asked = request.method === "GET" ? request.headers.get("if-none-match") : null;
    if (response.status !== 200 || !asked || !asked.split(",").some((t) => unquotedEtag(t) === tag)) return;
    const headers = new fetchAPI.Headers(response.headers);
    for (const h of ["content-type", "content-length", "content-encoding"]) headers.delete(h);
    setResponse(new fetchAPI.Response(null, { status: 304, headers }));
  },
};

/** An If-None-Match's one entity tag without `W/` and quotes (the cache's key). */
export function unquotedEtag(tag: string): string {
  const m = /^\s*(?:W\/)?"([^"]*)"\s*$/.exec(tag);
  return m ? m[1]! : tag.trim();
}
