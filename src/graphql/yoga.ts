import { timingSafeEqual } from "node:crypto";
import { GraphQLError, Kind } from "graphql";
import { createYoga, maskError, type Plugin, type YogaServerInstance } from "graphql-yoga";
import type { Config } from "../config.js";
import { type Db, isDatabaseUnavailable } from "../db.js";
import { dataVersion } from "../store/data-version.js";
import { meaningSource } from "../embed/embedder.js";
import { createLogger, type Logger } from "../log.js";
import type { Context } from "./builder.js";
import { renderOfflineGraphiQL, useGraphiQLHeaders } from "./graphiql.js";
import type { CostOptions } from "./limits/cost.js";
import { BadUserInputError, FOREIGN_CURSOR_MESSAGE } from "./errors.js";
import { withEventLoopTurns } from "./limits/event-loop.js";
import { directionRefusal, type MixedDirections } from "./limits/page-size.js";
import { type RequestLimits, useRequestLimits } from "./limits/plugin.js";
import { PersistedQueryStore, usePersistedQueries } from "./persisted-queries.js";
import { ResponseCacheStore, useGraphqlResponseCache } from "./response-cache.js";
import { DEFAULT_ARTWORKS_PAGE } from "./schema/artwork.js";
import { schema } from "./schema/index.js";
import { DEFAULT_JOBS_PAGE } from "./schema/job.js";
import { DEFAULT_SEARCH_PAGE } from "./schema/search.js";
import { DEFAULT_REVIEW_PAGE } from "./schema/review.js";
import { DEFAULT_SYNC_RUNS } from "./schema/sync.js";

export const GRAPHIQL_DEFAULT_QUERY = `# Descriptions of Goya's works, as the mirror and the model wrote them.
{
  artworks(creator: "Goya", limit: 10) {
    qid
    title
    inception
    image { url licenseShortName artist }
    description
  }
}
`;

/**
 * The database could not take the request (a full or failing disk, a writer stuck past its limit):
 * an operational state the client can retry, answered with HTTP 503 instead of "Unexpected error.".
 * The cause (with the file's path and SQLite's code) goes to the log only.
 */
export class DatabaseUnavailableError extends GraphQLError {
  constructor(path?: readonly (string | number)[]) {
    super("The database cannot take writes right now (disk full or failing, or a write is stuck); try again later", {
      path,
      extensions: { code: "DATABASE_UNAVAILABLE", http: { status: 503 } },
    });
    this.name = "DatabaseUnavailableError";
  }
}

export interface AppDeps {
  db: Db;
  config: Config;
  /** Where masked errors (with their stacks) and Yoga's own messages go; a logger at LOG_LEVEL when absent. */
  log?: Logger;
}

export type Yoga = YogaServerInstance<Record<string, never>, Context>;

/** How the cost analysis sizes this schema's lists (see limits/cost.ts). */
/** Cost of a search (its ranking), and of its totalCount. */
export const SEARCH_COST_WEIGHT = 1_000;
/** Cost of counting a filtered artworks connection (a COUNT over the filter; about 30 ms on 20,000 works). */
export const COUNT_COST_WEIGHT = 500;

export const COST_OPTIONS: CostOptions = {
  connectionDefaults: {
    "Query.artworksConnection": DEFAULT_ARTWORKS_PAGE,
    "Query.search": DEFAULT_SEARCH_PAGE,
    "Query.reviewQueue": DEFAULT_REVIEW_PAGE,
    "Query.jobs": DEFAULT_JOBS_PAGE,
    "Query.syncRunsConnection": DEFAULT_SYNC_RUNS,
  },
  // The largest default page of the others (Artwork.descriptionsConnection's is 50, Artwork.jobs' 20).
  defaultConnectionSize: 100,
  // Creators, titles, labels, genres, images: one to three each, depicted things up to about ten.
  unboundedListSize: 5,
  // Ranking and counting matches read the whole index (the heaviest accepted search: about 50 ms
  // for a page, 100 ms with its count, on 20,000 works): priced so that one operation holds about
  // ten of them, where each cost 1 and twenty aliases of the heaviest took seconds.
  fieldWeights: {
    "Query.search": SEARCH_COST_WEIGHT,
    "QuerySearchConnection.totalCount": SEARCH_COST_WEIGHT,
    "QueryArtworksConnection.totalCount": COUNT_COST_WEIGHT,
  },
};

export function requestLimits(config: Config): RequestLimits {
  return {
    maxTokens: config.GRAPHQL_MAX_TOKENS,
    maxDepth: config.GRAPHQL_MAX_DEPTH,
    maxAliases: config.GRAPHQL_MAX_ALIASES,
    maxCost: config.GRAPHQL_MAX_COST,
    maxRows: config.GRAPHQL_MAX_ROWS,
    timeoutMs: config.GRAPHQL_TIMEOUT_MS,
  };
}

/** The GraphQL app, without a listening socket: tests call `yoga.fetch`. */
/** Errors maskError has seen, each logged there (or judged the client's): Yoga's own error lines for them are noise. */
const loggedByMask = new WeakSet<Error>();

/**
 * A connection's `after`/`before` that Pothos cannot decode, or that decodes to a value of the wrong
 * type for the cursor column (Prisma then refuses the query's `cursor`).
 */
function isBadCursor(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === "PothosValidationError") return /^Invalid cursor/.test(err.message);
  return err.name === "PrismaClientValidationError" && /\bcursor: \{/.test(err.message);
}

/** Which paging argument of the failing field carried the cursor ("after" when it has both, or cannot tell). */
function cursorArgument(error: unknown): string {
  const field = error instanceof GraphQLError ? error.nodes?.[0] : undefined;
  const names = field && field.kind === Kind.FIELD ? (field.arguments ?? []).map((a) => a.name.value) : [];
  return names.includes("before") && !names.includes("after") ? "before" : "after";
}

export function createGraphqlApp({ db, config, log = createLogger(config.LOG_LEVEL) }: AppDeps): Yoga {
  const graphqlLog = log.child({ component: "graphql" });
  return createYoga<Record<string, never>, Context>({
    schema: withEventLoopTurns(schema),
    graphqlEndpoint: "/graphql",
    // The server reads and limits every body before Yoga sees it (readBody in src/server.ts:
    // GRAPHQL_MAX_BODY_BYTES, chunked bodies included), and the workbench sends only what it built.
    // Yoga's own limit would wrap each body again in a stream pipeline whose parts outlive the
    // request: per POST about 0.2 ms of CPU and 10 kB promoted into the old heap, for the garbage
    // collector to copy and later drop (BENCHMARKS.md, "Yoga's second body limit").
    maxRequestBodySize: false,
    landingPage: false,
    graphiql: { defaultQuery: GRAPHIQL_DEFAULT_QUERY, title: "artdesc" },
    renderGraphiQL: renderOfflineGraphiQL,
    logging: yogaLogger(graphqlLog),
    maskedErrors: {
      maskError(error, message, isDev) {
        const original = error instanceof GraphQLError && error.originalError ? error.originalError : error;
        const path = error instanceof GraphQLError ? error.path : undefined;
        if (original instanceof Error) loggedByMask.add(original);
        // A field's error keeps its path and locations when rewritten (the spec asks for them, and a client ties the error to the field by them).
        const at = error instanceof GraphQLError ? { nodes: error.nodes, source: error.source, positions: error.positions, path: error.path } : {};
        if (isBadCursor(original)) {
          // A client's own mistake (a cursor it made up or cut short): its answer, with a code, not our error.
          graphqlLog.debug({ path: path?.join("."), err: original }, "a cursor this API did not give out");
          return new BadUserInputError(cursorArgument(error), FOREIGN_CURSOR_MESSAGE, at);
        }
        const refused = pothosConnectionRefusal(original);
        if (refused) return new BadUserInputError(refused.argument, refused.message, at);
        const masked = maskError(error, message, isDev);
        if (masked === error) return masked;
        if (isClientAbort(original)) {
          graphqlLog.debug({ path: path?.join(".") }, "request aborted by the client");
          return masked;
        }
        if (isDatabaseUnavailable(original)) {
          graphqlLog.error({ err: original, path: path?.join(".") }, "the database cannot take writes (answered DATABASE_UNAVAILABLE)");
          return new DatabaseUnavailableError(path);
        }
        graphqlLog.error({ err: original, path: path?.join(".") }, "unexpected error (masked in the response)");
        return masked;
      },
    },
    cors: corsOptions(config.CORS_ORIGINS),
    context: ({ request }) => ({
      db,
      config,
      log: graphqlLog,
      authorized: isAuthorized(request.headers.get("authorization"), config.API_TOKEN),
    }),
    plugins: [
      useJsonParameterErrors(),
      ...(config.CORS_ORIGINS.length ? [useVaryOrigin()] : []),
      useGraphiQLHeaders(),
      usePersistedQueries(new PersistedQueryStore({ maxEntries: config.GRAPHQL_APQ_MAX_ENTRIES, maxBytes: config.GRAPHQL_APQ_MAX_BYTES })),
      useRequestLimits(requestLimits(config), COST_OPTIONS),
      // After persisted queries (which fill in the document) and the limits (a kept answer was
      // within them when it was made: same document, same variables, same settings).
      ...(config.GRAPHQL_RESPONSE_CACHE
        ? useGraphqlResponseCache(
            new ResponseCacheStore(
              {
                maxEntries: config.GRAPHQL_RESPONSE_CACHE_MAX_ENTRIES,
                maxBytes: config.GRAPHQL_RESPONSE_CACHE_MAX_BYTES,
                minAsks: config.GRAPHQL_RESPONSE_CACHE_MIN_ASKS,
              },
              () => dataVersion(db),
              (err) => graphqlLog.warn({ err }, "a GraphQL answer was not kept: the database version could not be read"),
            ),
            // Besides who asks: whether this process can search by meaning now. A search with no
            // mode is TEXT without the embedding model and HYBRID with it; a model pulled or removed
            // commits nothing, so the database version alone would keep serving the other answer.
            (request) =>
              `${isAuthorized(request.headers.get("authorization"), config.API_TOKEN) ? "authorized" : "anonymous"}|${meaningSource(config).available() ? "meaning" : "words"}`,
          )
        : []),
    ],
  });
}

/**
 * Request headers a browser app may send: ours, If-None-Match (an app revalidating with the ETag it
 * read), and those Apollo Client and graphql-sse clients add (client awareness, the
 * CSRF-prevention header). Anything else fails the preflight.
 */
export const CORS_ALLOWED_HEADERS = [
  "content-type",
  "authorization",
  "accept",
  "if-none-match",
  "apollographql-client-name",
  "apollographql-client-version",
  "apollo-require-preflight",
  "x-apollo-operation-name",
] as const;

/** Response headers a browser app may read besides the safelisted ones: how long to wait after a 429 or 503, and the ETag to revalidate with. */
export const CORS_EXPOSED_HEADERS = ["retry-after", "etag"] as const;

/** Pothos's words for paging arguments given together (@pothos/plugin-prisma's cursors). */
const POTHOS_MIXED_DIRECTIONS: Partial<Record<string, MixedDirections>> = {
  'Arguments "before" and "after" are not supported at the same time': "after+before",
  'Arguments "before" and "first" are not supported at the same time': "first+before",
  'Arguments "after" and "last" are not supported at the same time': "last+after",
};

/**
 * The connection arguments Pothos checks before our resolvers do (its own words, with no code):
 * as every other bad connection input, BAD_USER_INPUT naming the argument.
 */
function pothosConnectionRefusal(err: unknown): BadUserInputError | null {
  if (!(err instanceof Error)) return null;
  const pair = POTHOS_MIXED_DIRECTIONS[err.message];
  if (pair) return directionRefusal(pair);
  const size = /^Argument "(first|last)" must be a non-negative integer$/.exec(err.message);
  if (size) return new BadUserInputError(size[1]!, `${size[1]} must be a whole number of 0 or more`);
  return null;
}

/**
 * CORS from CORS_ORIGINS: none configured means no CORS headers at all (same-origin pages only);
 * a listed origin gets its own origin back with credentials; "*" any origin, without credentials.
 * With origins configured, every answer varies by Origin (useVaryOrigin).
 */
export function corsOptions(origins: readonly string[]) {
  const any = origins.includes("*");
  return (request: Request) => {
    const origin = request.headers.get("origin");
    if (!origin || (!any && !origins.includes(origin))) return false as const;
    return {
      origin: [origin],
      credentials: !any,
      methods: ["GET", "POST", "OPTIONS"],
      allowedHeaders: [...CORS_ALLOWED_HEADERS],
      exposedHeaders: [...CORS_EXPOSED_HEADERS],
      maxAge: 600,
    };
  };
}

/**
 * The CORS headers of an answer the server writes itself, before yoga sees the request (a 413, 414,
 * 415, 429 or 503 refusal): the same as yoga's for the asking origin, so that a browser app on an
 * allowed origin can read the refusal and its Retry-After instead of seeing a network error.
 */
export function refusalCorsHeaders(origin: string | undefined, origins: readonly string[]): Record<string, string> {
  if (!origins.length) return {};
  const allowed = corsOptions(origins)(new Request("http://localhost/", { headers: origin ? { origin } : {} }));
  if (!allowed) return { vary: "Origin" };
  return {
    "access-control-allow-origin": origin!,
    ...(allowed.credentials ? { "access-control-allow-credentials": "true" } : {}),
    "access-control-expose-headers": allowed.exposedHeaders.join(", "),
    vary: "Origin",
  };
}

/**
 * A GET query string or a form-encoded body whose `variables` or `extensions` is not JSON: 400
 * BAD_REQUEST, as yoga answers a JSON body that is not JSON. Yoga's parsers of those two forms let
 * JSON.parse's SyntaxError through, which was masked as the server's own failure (500, and a stack
 * in the error log for any web page's form post). Wraps whichever parser yoga chose (its
 * parsers' plugins run before ours).
 */
function useJsonParameterErrors(): Plugin {
  const refuse = (err: unknown): never => {
    if (!(err instanceof SyntaxError)) throw err;
    throw new GraphQLError("The variables or extensions parameter is not valid JSON.", { extensions: { code: "BAD_REQUEST", http: { status: 400 } } });
  };
  return {
    onRequestParse({ request, requestParser, setRequestParser }) {
      // A JSON body's own parser answers bad JSON with 400 already: its requests keep it unwrapped.
      if (!requestParser || !(request.method === "GET" || /^application\/x-www-form-urlencoded\b/i.test(request.headers.get("content-type") ?? ""))) return;
      setRequestParser((request) => {
        try {
          const parsed = requestParser(request);
          // The form parser answers with a thenable of its own, not a Promise.
          return typeof (parsed as { then?: unknown }).then === "function" ? Promise.resolve(parsed).catch(refuse) : parsed;
        } catch (err) {
          return refuse(err);
        }
      });
    },
  };
}

/**
 * `Vary: Origin` on every answer once CORS_ORIGINS is set: the CORS headers differ by the asking
 * origin (an allowed one gets its own back, another none), so a cache in front must not give one
 * origin's answer to another. GET answers carry an ETag and may be cached.
 */
function useVaryOrigin(): Plugin {
  return {
    onResponse({ response }) {
      const vary = response.headers.get("vary");
      if (!vary?.split(",").some((v) => v.trim().toLowerCase() === "origin")) response.headers.set("vary", vary ? `${vary}, Origin` : "Origin");
    },
  };
}

type YogaLogger = Record<"debug" | "info" | "warn" | "error", (...args: unknown[]) => void>;

/** Yoga's logger interface on pino: an Error goes in `err` (with its stack). */
function yogaLogger(log: Logger): YogaLogger {
  const at =
    (level: "debug" | "info" | "warn" | "error") =>
    (...args: unknown[]) => {
      const err = args.find((a): a is Error => a instanceof Error);
      const text = args.filter((a) => a !== err).map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" ");
      const original = err instanceof GraphQLError && err.originalError ? err.originalError : err;
      // A client that hung up mid-request is not a server error (a load test's end is thousands).
      if (err && isClientAbort(err)) log.debug({ err: err.message }, "request aborted by the client");
      // Yoga logs each error our maskError replaced, which logged it already (or found it the client's).
      else if (level === "error" && original && loggedByMask.has(original)) log.debug({ err: original.message }, "masked error (logged once above)");
      else if (err) log[level]({ err }, text || err.message);
      else log[level](text);
    };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

/** The abort of a request whose client went away (Yoga aborts the request's signal when the socket closes). */
function isClientAbort(err: unknown): boolean {
  return err instanceof Error && err.name === "AbortError";
}

/**
 * The token of an `Authorization: Bearer <token>` header; null for no header, an empty one, a bare
 * "Bearer" (Apollo's documented auth link sends `""` when signed out) or another scheme (a reverse
 * proxy's Basic credentials): none of those is an attempt at the API token.
 */
export function bearerToken(header: string | null | undefined): string | null {
  const m = header ? /^Bearer\s+(\S.*)$/i.exec(header.trim()) : null;
  return m ? m[1]! : null;
}

/** Constant-time check of `Bearer <token>`; with no token configured nothing is authorized. */
export function isAuthorized(header: string | null, token: string | undefined): boolean {
  const bearer = bearerToken(header);
  if (!token || bearer === null) return false;
  const given = Buffer.from(bearer);
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
