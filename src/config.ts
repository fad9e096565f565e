import { z } from "zod";
import { parseProxyEntry } from "./api/client-address.js";
import { configEntries as generationConfigEntries, configProblems as generationConfigProblems, paramsFromConfig } from "./generation/params.js";
import { cronProblem, timeZoneProblem } from "./jobs/cron.js";
import { parseImageSourceUrl } from "./images/source-url.js";
import { DEFAULT_FALLBACK_LADDER, type FallbackLadder, LadderError, ladderProblems, parseLadder } from "./review/ladder.js";

/**
 * The only reader of the environment. Every variable is documented here and in the README's
 * configuration table; `loadConfig` validates them all at once and names every bad one.
 */

const DTYPES = ["fp32", "fp16", "int8", "uint8", "q4", "q4f16", "bnb4", "quantized"] as const;
export type Dtype = (typeof DTYPES)[number];
export const MODEL_MODULES = ["vision_encoder", "embed_tokens", "decoder_model_merged"] as const;
export type ModelModule = (typeof MODEL_MODULES)[number];
export type DtypeConfig = Dtype | Record<ModelModule, Dtype>;

const QID = /^Q[1-9][0-9]*$/;
const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** A number's messages in a user's words (zod's own read "expected number, received NaN"). */
const NOT_A_NUMBER = { error: (issue: { code?: string }) => (issue.code === "invalid_type" ? "must be a number" : undefined) };
const between = (min: number, max: number) => `must be between ${min} and ${max}`;
const int = (min: number, max: number) => z.coerce.number(NOT_A_NUMBER).int("must be a whole number").min(min, between(min, max)).max(max, between(min, max));
const num = (min: number, max: number) => z.coerce.number(NOT_A_NUMBER).min(min, between(min, max)).max(max, between(min, max));
const bool = z.enum(["true", "false", "1", "0", "yes", "no"]).transform((v) => ["true", "1", "yes"].includes(v));
const list = (item: z.ZodType<string>) =>
  z.string().transform((v, ctx) => {
    const items = v.split(",").map((s) => s.trim()).filter(Boolean);
    for (const it of items) {
      const r = item.safeParse(it);
      if (!r.success) ctx.addIssue({ code: "custom", message: `"${it}": ${r.error.issues[0]?.message}` });
    }
    if (items.length === 0) ctx.addIssue({ code: "custom", message: "must name at least one value" });
    return items;
  });
const url = z.url({ protocol: /^https?$/ });

/** MODEL_DTYPE: one dtype for every module, or `module=dtype` pairs separated by commas. */
const dtype = z.string().transform((v, ctx): DtypeConfig | undefined => {
  const s = v.trim();
  if (s === "") return undefined;
  if (!s.includes("=")) {
    if ((DTYPES as readonly string[]).includes(s)) return s as Dtype;
    ctx.addIssue({ code: "custom", message: `unknown dtype "${s}"; use one of ${DTYPES.join(", ")}` });
    return undefined;
  }
  const out: Partial<Record<ModelModule, Dtype>> = {};
  for (const pair of s.split(",")) {
    const [mod, dt] = pair.split("=").map((x) => x.trim());
    if (!(MODEL_MODULES as readonly string[]).includes(mod ?? "")) {
      ctx.addIssue({ code: "custom", message: `unknown module "${mod}"; use ${MODEL_MODULES.join(", ")}` });
    } else if (!(DTYPES as readonly string[]).includes(dt ?? "")) {
      ctx.addIssue({ code: "custom", message: `unknown dtype "${dt}" for ${mod}` });
    } else out[mod as ModelModule] = dt as Dtype;
  }
  const missing = MODEL_MODULES.filter((m) => !out[m]);
  if (missing.length) ctx.addIssue({ code: "custom", message: `no dtype for ${missing.join(", ")}` });
  return out as Record<ModelModule, Dtype>;
});

/**
 * CORS_ORIGINS: exact origins ("https://app.example.org") separated by commas, or "*" alone (any
 * origin, never with credentials). Empty: no CORS headers, same-origin pages only.
 */
const corsOrigins = z.string().transform((v, ctx) => {
  const items = v.split(",").map((s) => s.trim()).filter(Boolean);
  if (items.includes("*") && items.length > 1) ctx.addIssue({ code: "custom", message: '"*" must stand alone' });
  for (const it of items) {
    if (it !== "*" && !/^https?:\/\/[a-z0-9.-]+(:\d{1,5})?$/i.test(it)) {
      ctx.addIssue({ code: "custom", message: `"${it}" is not an origin like https://app.example.org (scheme, host, optional port, no path)` });
    }
  }
  return items;
});

/** TRUSTED_PROXIES: "10.0.0.1, 10.1.0.0/16, fd00::/8". */
const trustedProxyList = z.string().transform((v, ctx) => {
  const items = v.split(",").map((s) => s.trim()).filter(Boolean);
  if (items.length > 1000) ctx.addIssue({ code: "custom", message: "at most 1000 entries" });
  for (const it of items) {
    if (!parseProxyEntry(it)) ctx.addIssue({ code: "custom", message: `"${it.slice(0, 100)}" is not an IP address or CIDR range like 10.0.0.0/8` });
  }
  return items;
});

/** IMAGE_SOURCE_URL: normalised to the API's /images/ base (src/images/source-url.ts). */
const imageSourceUrl = z.string().transform((v, ctx) => {
  const r = parseImageSourceUrl(v);
  if ("url" in r) return r.url;
  ctx.addIssue({ code: "custom", message: r.problem });
  return z.NEVER;
});

/** A string that `problem` finds nothing wrong with (it returns what is wrong, or null). */
const checkedBy = (problem: (v: string) => string | null) =>
  z.string().superRefine((v, ctx) => {
    const p = problem(v);
    if (p) ctx.addIssue({ code: "custom", message: p });
  });

/** REVIEW_FALLBACK_LADDER: parameter sets tried after a rejection (src/review/ladder.ts). */
const ladder = z.string().transform((v, ctx): FallbackLadder => {
  try {
    return parseLadder(v);
  } catch (err) {
    if (!(err instanceof LadderError)) throw err;
    ctx.addIssue({ code: "custom", message: err.problem });
    return z.NEVER;
  }
});

/** Each entry: the variable's schema and its default (as the string a user would write). */
/** The embedding model's ONNX file when EMBED_MODEL_DTYPE is unset (docs/search.md, "Which file"). */
export const DEFAULT_EMBED_MODEL_DTYPE = "quantized";

/** onnxruntime execution providers MODEL_DEVICE can name (README, "Running on a GPU"). */
export const MODEL_DEVICES = ["cpu", "cuda", "webgpu"] as const;

const schema = z.object({
  // Service
  DATABASE_URL: z
    .string()
    .regex(/^(file:.+|postgres(ql)?:\/\/.+)/i, "must be a SQLite URL like file:./data/artdesc.db or a PostgreSQL URL like postgresql://user@host/db")
    .default("file:./data/artdesc.db"),
  /**
   * PostgreSQL: connections each process may hold (its pool; one more for the health probe). Every
   * API process (API_WORKERS), daemon and worker has its own: keep their sum under max_connections.
   */
  DATABASE_POOL_SIZE: int(1, 1000).default(10),
  PORT: int(0, 65535).default(4000),
  HOST: z.string().min(1).default("0.0.0.0"),
  IMAGE_DIR: z.string().min(1).default("data/images"),
  /**
   * Workers that share no folder with the API: fetch images from its /images/ base (e.g.
   * http://api:4000/images/), check their sha256 and keep them in their own IMAGE_DIR. Unset: read IMAGE_DIR.
   */
  IMAGE_SOURCE_URL: imageSourceUrl.optional(),
  API_TOKEN: z.string().min(16, "must be at least 16 characters").optional(),
  /** Who the bearer of API_TOKEN is, recorded as the reviewer of a verdict given without a name. */
  API_TOKEN_NAME: z.string().trim().min(1).max(200).regex(/^[^\u0000-\u001F\u007F-\u009F]*$/, "must be one line without control characters").default("api"),
  /** Wrong API tokens (GraphQL bearer or workbench sign-in) one client address may present per AUTH_FAILURE_WINDOW_S; then every token check is refused until the window frees. 0: no limit. */
  AUTH_MAX_FAILURES: int(0, 100_000).default(10),
  AUTH_FAILURE_WINDOW_S: int(1, 86_400).default(300),
  /** Reverse proxies whose X-Forwarded-For is believed (addresses or CIDR ranges); empty: the header is ignored. */
  TRUSTED_PROXIES: trustedProxyList.default([]),
  API_WORKERS: int(1, 64).default(1),
  LOG_LEVEL: z.enum(LOG_LEVELS).default("info"),
  /** Fields nested in a query's deepest path (fragments add no level); the cost limit, not this, stops abuse. */
  GRAPHQL_MAX_DEPTH: int(2, 50).default(15),
  GRAPHQL_MAX_COST: int(100, 1_000_000).default(20_000),
  GRAPHQL_MAX_ROWS: int(10, 1_000_000).default(10_000),
  GRAPHQL_MAX_ALIASES: int(0, 1000).default(20),
  GRAPHQL_MAX_TOKENS: int(100, 100_000).default(2_000),
  GRAPHQL_TIMEOUT_MS: int(1, 600_000).default(5_000),
  /** Largest request body (a POSTed GraphQL document and its variables) in bytes; larger ones get 413 before anything parses them. */
  GRAPHQL_MAX_BODY_BYTES: int(1_000, 100_000_000).default(100_000),
  /** Longest request target (path and query string) in bytes; longer ones get 414. */
  HTTP_MAX_URL_BYTES: int(256, 16_000).default(8_192),
  /**
   * Connections one client address may hold open at once in one API process (0: no limit); more are
   * closed as they come. TRUSTED_PROXIES' addresses are not limited.
   */
  HTTP_MAX_CONNECTIONS_PER_CLIENT: int(0, 1_000_000).default(256),
  /** Bytes of request bodies an API process holds while reading them, all requests together; past it a body gets 503. */
  HTTP_BODY_BYTES_IN_FLIGHT: int(1_000_000, 100_000_000_000).default(64 * 1024 * 1024),
  CORS_ORIGINS: corsOrigins.default([]),
  /** Subscription streams (jobUpdated) one client address may hold open at once in one API process. */
  GRAPHQL_MAX_SUBSCRIPTIONS_PER_CLIENT: int(1, 10_000).default(20),
  /** Subscription streams one API process holds open at once, all clients together. */
  GRAPHQL_MAX_SUBSCRIPTIONS: int(1, 1_000_000).default(1000),
  // Workbench (the web UI at /)
  /** true: the UI pages and their thumbnails need sign-in (GraphQL and /images keep their own rules). */
  UI_REQUIRE_SIGN_IN: bool.default(false),
  /** Key material for the UI's session cookie; unset: derived from API_TOKEN (a new token ends every session either way). */
  SESSION_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
  /** Where UI thumbnails are cached; unset: IMAGE_DIR/.thumbs (hidden, so /images never serves them). */
  THUMB_DIR: z.string().min(1).optional(),
  /** Documents of automatic persisted queries kept per API process (least recently used go first). */
  GRAPHQL_APQ_MAX_ENTRIES: int(1, 1_000_000).default(1000),
  /** Bytes of all kept persisted-query documents together, per API process. */
  GRAPHQL_APQ_MAX_BYTES: int(10_000, 1_000_000_000).default(5_000_000),
  /** Keep answers to GraphQL queries until the next commit to the database by any process (true/false). */
  GRAPHQL_RESPONSE_CACHE: bool.default(true),
  /** Query answers kept per API process (least recently used go first). */
  GRAPHQL_RESPONSE_CACHE_MAX_ENTRIES: int(1, 1_000_000).default(1000),
  /** Bytes (as JSON) of all kept query answers together, per API process; a larger answer is not kept. */
  GRAPHQL_RESPONSE_CACHE_MAX_BYTES: int(10_000, 10_000_000_000).default(50_000_000),
  /** Times a query must be asked (between two commits) before its answer is kept: 1 keeps every answer. */
  GRAPHQL_RESPONSE_CACHE_MIN_ASKS: int(1, 100).default(2),
  // Sync
  WIKIDATA_SPARQL_URL: url.default("https://query.wikidata.org/sparql"),
  WIKIDATA_API_URL: url.default("https://www.wikidata.org/w/api.php"),
  COMMONS_API_URL: url.default("https://commons.wikimedia.org/w/api.php"),
  /**
   * Hosts (host or host:port) the sync may download images from; unset: upload.wikimedia.org and
   * COMMONS_API_URL's host. An image URL or a redirect to any other host is refused: the URLs come
   * from Commons' answers, and a hostile answer must not make the sync fetch internal addresses.
   */
  IMAGE_HOSTS: list(
    z
      .string()
      .regex(/^[a-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-f:.]+\](:\d{1,5})?$/i, "not a host or host:port")
      // A port past 65535 or an IPv6 address that is not one: refused here, not when the sync starts.
      .refine((h) => URL.canParse(`http://${h}`), "not a host or host:port (a port is at most 65535)"),
  ).optional(),
  SYNC_CREATORS: list(z.string().regex(QID, "not a Wikidata item id like Q5432")).default(["Q5432"]),
  SYNC_LANGUAGES: list(z.string().regex(/^[a-z]{2,3}(-[a-z0-9]+)*$/, "not a language code like en")).default(["en", "es"]),
  SYNC_CRON: checkedBy(cronProblem).default("0 3 * * *"),
  SYNC_TIMEZONE: checkedBy(timeZoneProblem).default("UTC"),
  USER_AGENT_CONTACT: z.string().min(3).optional(),
  IMAGE_EDGE: int(64, 4096).default(1024),
  DOWNLOAD_CONCURRENCY: int(1, 32).default(4),
  HTTP_TIMEOUT_MS: int(100, 600_000).default(60_000),
  HTTP_MAX_RETRIES: int(0, 20).default(5),
  /** Largest upstream answer (a Wikidata/Commons JSON page or an image), after decompression; a larger one fails, not retried. */
  HTTP_MAX_BODY_BYTES: int(1_000, 2_000_000_000).default(100_000_000),
  /** Longest Retry-After honoured: a server that asks for a longer wait is not asked again in this run (the request fails, and is recorded). */
  RETRY_AFTER_MAX_S: num(0, 3600).default(120),
  /** First wait before retrying a 5xx, a timeout or a reset; doubles with each retry, up to a minute. */
  HTTP_RETRY_BASE_MS: int(10, 60_000).default(1_000),
  // Model and description defaults
  MODEL_ID: z.string().regex(/^[\w.-]+\/[\w.-]+$/, "must look like owner/name").default("HuggingFaceTB/SmolVLM-500M-Instruct"),
  MODEL_REVISION: z.string().min(1).default("main"),
  MODEL_DIR: z.string().min(1).default("models"),
  MODEL_DTYPE: dtype.optional(),
  MODEL_DEVICE: z.enum(MODEL_DEVICES).default("cpu"),
  MODEL_HUB_URL: url.default("https://huggingface.co"),
  ORT_THREADS: int(0, 256).default(0),
  // The DESCRIBE_* defaults of every generation parameter (ranges and defaults: src/generation/params.ts)
  ...generationConfigEntries(),
  DESCRIBE_PROMPT_CONTEXT: bool.default(false),
  // Jobs
  WORKER_CONCURRENCY: int(1, 16).default(1),
  WORKER_BATCH: int(1, 16).default(1),
  JOB_MAX_ATTEMPTS: int(1, 20).default(3),
  HEARTBEAT_INTERVAL_S: num(0.1, 600).default(10),
  HEARTBEAT_STALE_S: num(1, 3600).default(60),
  SHUTDOWN_GRACE_S: num(0, 3600).default(120),
  // Review
  REVIEW_FALLBACK_LADDER: ladder.default(parseLadder(DEFAULT_FALLBACK_LADDER)),
  // Search and export
  ALT_TEXT_MAX_CHARS: int(40, 2000).default(250),
  // Semantic search (src/embed/, docs/search.md): the embedding model, like MODEL_ID, lives in MODEL_DIR/EMBED_MODEL_ID
  EMBED_MODEL_ID: z.string().regex(/^[\w.-]+\/[\w.-]+$/, "must look like owner/name").default("Xenova/multilingual-e5-small"),
  EMBED_MODEL_REVISION: z.string().min(1).default("main"),
  EMBED_MODEL_DTYPE: z.enum(["fp32", "fp16", "quantized", "int8", "uint8", "q4"]).default(DEFAULT_EMBED_MODEL_DTYPE),
  SEARCH_SEMANTIC_TOP_K: int(1, 1000).default(100),
  /**
   * A meaning hit's cosine must be above this (of the top K): 0 drops only works orthogonal or
   * opposite to the query (and every work for a query the model reads nothing of, a zero vector).
   */
  SEARCH_SEMANTIC_MIN_SIMILARITY: num(-1, 0.999).default(0),
  SEARCH_RRF_K: int(1, 1000).default(60),
  EMBED_QUERY_CACHE_ENTRIES: int(0, 100_000).default(1000),
  /** onnxruntime intra-op threads of each API process's query embedding thread: a query is a few tokens, too little work to share (bench:embed). */
  EMBED_QUERY_THREADS: int(1, 256).default(1),
  EMBED_POLL_S: num(1, 3600).default(10),
  EMBED_BATCH: int(1, 1024).default(32),
});

export type Config = z.infer<typeof schema>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/** Variables whose values are secrets: an error about one names its length, never its value. */
const SECRET_KEYS: ReadonlySet<string> = new Set(["API_TOKEN", "SESSION_SECRET"]);

/**
 * A value as a configuration error shows it (errors go to logs): quoted, a secret replaced by its
 * length, and a URL's password by ***.
 */
function shownValue(key: string, value: string): string {
  if (SECRET_KEYS.has(key)) return `<secret, ${value.length} characters>`;
  return JSON.stringify(key === "DATABASE_URL" ? redactPassword(value) : value);
}

/** The URL with its password replaced, for messages and logs. */
export function redactPassword(databaseUrl: string): string {
  try {
    const url = new URL(databaseUrl);
    if (url.password) url.password = "***";
    return url.toString();
  } catch {
    return databaseUrl.replace(/\/\/([^:/@]*):[^@/]*@/, "//$1:***@");
  }
}

/** Validates the environment (empty strings count as unset). Throws ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const input: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const v = env[key];
    if (v !== undefined && v !== "") input[key] = v;
  }
  const result = schema.safeParse(input);
  if (!result.success) {
    const bad = new Set(result.error.issues.map((i) => String(i.path[0] ?? "?")));
    const problems = result.error.issues.map((i) => {
      const key = String(i.path[0] ?? "?");
      return `${key}=${shownValue(key, input[key] ?? "")}: ${i.message}`;
    });
    // The checks across variables too, in the same message: read again with the bad ones at their
    // defaults, keeping only the problems that name none of them (those would reason from a default).
    const rest = schema.safeParse(Object.fromEntries(Object.entries(input).filter(([key]) => !bad.has(key))));
    if (rest.success) problems.push(...crossProblems(rest.data, input).filter((p) => ![...bad].some((key) => new RegExp(`\\b${key}\\b`).test(p))));
    throw new ConfigError(problems);
  }
  const problems = crossProblems(result.data, input);
  if (problems.length) throw new ConfigError(problems);
  return result.data;
}

/** What is wrong between variables that are each valid alone. */
function crossProblems(config: Config, input: Record<string, string>): string[] {
  const together = generationConfigProblems(config);
  if (config.UI_REQUIRE_SIGN_IN && !config.API_TOKEN) together.push("UI_REQUIRE_SIGN_IN=true: needs API_TOKEN (sign-in uses it), or nobody could open the UI");
  // A live process must never look dead between two beats: its jobs would be handed to another
  // worker (work done twice, an attempt burned) and `status --check` would fail it.
  if (config.HEARTBEAT_STALE_S < 2 * config.HEARTBEAT_INTERVAL_S) {
    together.push(
      `HEARTBEAT_STALE_S=${config.HEARTBEAT_STALE_S}: must be at least twice HEARTBEAT_INTERVAL_S (${config.HEARTBEAT_INTERVAL_S}), or a live process looks dead between two beats`,
    );
  }
  // The ladder is read against the generation defaults: only once those are right.
  if (together.length) return together;
  return ladderProblems(config.REVIEW_FALLBACK_LADDER, paramsFromConfig(config)).map(
    (p) => `REVIEW_FALLBACK_LADDER=${JSON.stringify(input.REVIEW_FALLBACK_LADDER ?? DEFAULT_FALLBACK_LADDER)}: ${p}`,
  );
}

/** Parses a MODEL_DTYPE-style value given on the command line; throws ConfigError naming the flag. */
export function parseDtypeConfig(value: string, flag = "--dtype"): DtypeConfig {
  const r = dtype.safeParse(value);
  if (!r.success) throw new ConfigError(r.error.issues.map((i) => `${flag}=${JSON.stringify(value)}: ${i.message}`));
  if (r.data === undefined) throw new ConfigError([`${flag}: must name a dtype`]);
  return r.data;
}

/** Names of all variables, for documentation checks. */
export const CONFIG_KEYS = Object.keys(schema.shape) as (keyof Config)[];
