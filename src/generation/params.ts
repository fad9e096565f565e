import { z } from "zod";
import { checkText, TEXT_LIMITS, type TextLimit } from "../jobs/input-limits.js";

/**
 * The one vocabulary of generation parameters: every parameter once, with its range, its default,
 * its environment variable (the configured default), its `artdesc describe` flag and one line of
 * documentation. Config, the GraphQL input and output types, the CLI flags, the queue (and its
 * `Job.params` codec), the worker and the engine all derive from PARAMS below. Names follow Hugging
 * Face generate(); each name is also the GraphQL field and the `Job.params` JSON key.
 *
 * Pure: no engine, no environment, no database.
 */

/** Hugging Face early_stopping: true, false (a heuristic) or "never" (the canonical search). */
export type EarlyStopping = boolean | "never";

export interface GenerationParams {
  /** The instruction sent with the image. */
  prompt: string;
  numBeams: number;
  maxNewTokens: number;
  minNewTokens: number;
  /** Target length in words; a beam that ends a sentence past it finishes (reason "stop"). 0 = off. */
  targetWords: number;
  lengthPenalty: number;
  earlyStopping: EarlyStopping;
  noRepeatNgramSize: number;
  repetitionPenalty: number;
  imageSplitting: boolean;
  /** Remove stray markdown from the decoded text. */
  cleanMarkdown: boolean;
}

export type ParamName = keyof GenerationParams;

/** Parameters asked for; the others take the configured defaults. */
export type RequestedParams = Partial<GenerationParams>;

interface SpecBase {
  /** The environment variable that sets the configured default (src/config.ts, README). */
  env: `DESCRIBE_${string}`;
  /** The `artdesc describe` flag. */
  flag: `--${string}`;
  /** One line: what it does. */
  doc: string;
}
export interface NumberSpec extends SpecBase {
  kind: "int" | "float";
  min: number;
  max: number;
  default: number;
  /** The minimum turns the parameter off (said in the GraphQL description). */
  offAtMin?: boolean;
  /** Shown instead of `max` where a larger bound applies (minNewTokens: maxNewTokens). */
  upTo?: string;
}
export interface BooleanSpec extends SpecBase {
  kind: "boolean";
  default: boolean;
}
export interface TextSpec extends SpecBase {
  kind: "text";
  limit: TextLimit;
  default: string;
}
export interface EarlyStoppingSpec extends SpecBase {
  kind: "earlyStopping";
  default: EarlyStopping;
}
export type ParamSpec = NumberSpec | BooleanSpec | TextSpec | EarlyStoppingSpec;

type SpecFor<T> = [T] extends [number] ? NumberSpec : [T] extends [boolean] ? BooleanSpec : [T] extends [string] ? TextSpec : EarlyStoppingSpec;

export const PARAMS = {
  prompt: {
    kind: "text",
    env: "DESCRIBE_PROMPT",
    flag: "--prompt",
    doc: "the instruction",
    limit: TEXT_LIMITS.prompt,
    default: "Describe the objects, people, and background you see in the painting or drawing in a factual manner.",
  },
  numBeams: { kind: "int", env: "DESCRIBE_NUM_BEAMS", flag: "--beams", doc: "beams (1 = greedy)", min: 1, max: 8, default: 4 },
  maxNewTokens: { kind: "int", env: "DESCRIBE_MAX_NEW_TOKENS", flag: "--max-new-tokens", doc: "most tokens generated", min: 16, max: 1024, default: 256 },
  minNewTokens: {
    kind: "int",
    env: "DESCRIBE_MIN_NEW_TOKENS",
    flag: "--min-new-tokens",
    doc: "fewest tokens generated before an end is allowed",
    min: 0,
    max: 1024,
    upTo: "maxNewTokens",
    default: 0,
  },
  targetWords: {
    kind: "int",
    env: "DESCRIBE_TARGET_WORDS",
    flag: "--target-words",
    doc: "a beam that ends a sentence past this many words stops (0 = off)",
    min: 0,
    max: 1000,
    offAtMin: true,
    default: 150,
  },
  lengthPenalty: {
    kind: "float",
    env: "DESCRIBE_LENGTH_PENALTY",
    flag: "--length-penalty",
    doc: "exponent of the length normalisation of beam scores",
    min: -10,
    max: 10,
    default: 1,
  },
  earlyStopping: {
    kind: "earlyStopping",
    env: "DESCRIBE_EARLY_STOPPING",
    flag: "--early-stopping",
    doc: "true, false or never (Hugging Face semantics)",
    default: true,
  },
  noRepeatNgramSize: {
    kind: "int",
    env: "DESCRIBE_NO_REPEAT_NGRAM_SIZE",
    flag: "--no-repeat-ngram-size",
    doc: "forbid repeating n-grams of this size (0 = off)",
    min: 0,
    max: 20,
    offAtMin: true,
    default: 0,
  },
  repetitionPenalty: {
    kind: "float",
    env: "DESCRIBE_REPETITION_PENALTY",
    flag: "--repetition-penalty",
    doc: "penalty on tokens already present (1 = off)",
    min: 0.5,
    max: 3,
    default: 1,
  },
  imageSplitting: {
    kind: "boolean",
    env: "DESCRIBE_IMAGE_SPLITTING",
    flag: "--image-splitting",
    doc: "split large images into 512 px tiles plus a global view",
    default: false,
  },
  cleanMarkdown: {
    kind: "boolean",
    env: "DESCRIBE_CLEAN_MARKDOWN",
    flag: "--clean-markdown",
    doc: "remove stray markdown (headings, bold, numbered analysis blocks) from the text",
    default: true,
  },
} as const satisfies { [K in ParamName]: SpecFor<GenerationParams[K]> };

/** Every parameter name, in the table's order. */
export const PARAM_NAMES = Object.keys(PARAMS) as ParamName[];

export function paramSpec(name: ParamName): ParamSpec {
  return PARAMS[name];
}

export const GENERATION_DEFAULTS: GenerationParams = Object.fromEntries(PARAM_NAMES.map((n) => [n, PARAMS[n].default])) as unknown as GenerationParams;

// ---------------------------------------------------------------------------------------------
// Early stopping as text ("true", "false", "never"): its form in config, GraphQL and stored rows.

export const EARLY_STOPPING_TEXTS = ["true", "false", "never"] as const;
export type EarlyStoppingText = (typeof EARLY_STOPPING_TEXTS)[number];

export function earlyStoppingText(v: EarlyStopping): EarlyStoppingText {
  return v === "never" ? "never" : v ? "true" : "false";
}

export function parseEarlyStopping(text: EarlyStoppingText): EarlyStopping {
  return text === "never" ? "never" : text === "true";
}

// ---------------------------------------------------------------------------------------------
// Errors

/** A requested parameter is outside its range (the API answers ParameterOutOfRangeError). */
export class ParamOutOfRangeError extends Error {
  override name = "ParamOutOfRangeError";
  constructor(
    /** The parameter (or, for a key that is none, the key as given). */
    readonly field: string,
    /** What is wrong, without the name: "must be an integer between 1 and 8 (got 9)". */
    readonly problem: string,
  ) {
    super(`${field} ${problem}`);
  }
}

/** A stored `Job.params` text that this version cannot read. */
export class StoredParamsError extends Error {
  override name = "StoredParamsError";
  constructor(
    readonly json: string,
    readonly problem: string,
  ) {
    super(`stored generation parameters ${JSON.stringify(json.length > 200 ? `${json.slice(0, 200)}…` : json)}: ${problem}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Schemas

/** What a valid value is, in words: "must be an integer between 1 and 8". */
export function rangeProblem(spec: ParamSpec): string {
  switch (spec.kind) {
    case "int":
      return `must be an integer between ${spec.min} and ${spec.max}`;
    case "float":
      return `must be a number between ${spec.min} and ${spec.max}`;
    case "boolean":
      return "must be true or false";
    case "earlyStopping":
      return "must be true, false or never";
    case "text":
      return `must be a text of at most ${spec.limit.max} characters`;
  }
}

/** The range as the GraphQL input field describes it ("1 to 8.", "0 (off) to 20."); null when the type says it all. */
export function rangeDescription(spec: ParamSpec): string | null {
  if (spec.kind === "int" || spec.kind === "float") return `${spec.min}${spec.offAtMin ? " (off)" : ""} to ${spec.upTo ?? spec.max}.`;
  if (spec.kind === "text") return `At most ${spec.limit.max} characters.`;
  return null;
}

/** A value of the parameter's own type, in range. Text is trimmed (as checkText does). */
function valueSchema(spec: ParamSpec): z.ZodType {
  const error = rangeProblem(spec);
  switch (spec.kind) {
    case "int":
      return z.number({ error }).int({ error, abort: true }).min(spec.min, { error, abort: true }).max(spec.max, { error });
    case "float":
      return z.number({ error }).min(spec.min, { error, abort: true }).max(spec.max, { error });
    case "boolean":
      return z.boolean({ error });
    case "earlyStopping":
      return z.union([z.boolean(), z.literal("never")], { error });
    case "text":
      return z.string({ error }).transform((v, ctx) => {
        const r = checkText(v, spec.limit);
        if (r.ok) return r.text;
        ctx.addIssue({ code: "custom", message: r.problem });
        return z.NEVER;
      });
  }
}

/**
 * Why a prompt cannot be sent to the model, or null: it holds a chat-template token. Checked on
 * what people ask for (GraphQL, flags, DESCRIBE_PROMPT) and by the worker before it runs a job;
 * not on stored rows, which keep decoding as they were written.
 */
export function promptProblem(prompt: string): string | null {
  const special = TEMPLATE_TOKEN.exec(prompt);
  return special ? `must not contain the chat template's token ${special[0]} (the model would read it as the template's, not as words)` : null;
}

/**
 * SmolVLM's chat template tokens: the processor splits a prompt at each "<image>" and drops what
 * follows the last one it has an image for (the template's own end with it), and the others would
 * end the person's turn or open a new one. A prompt holding one is refused.
 */
const TEMPLATE_TOKEN = /<image>|<end_of_utterance>|<fake_token_around_image>|<global-img>|<row_\d+_col_\d+>|<\|[^|<>\s]{1,40}\|>/i;

/** Text from elsewhere (a Wikidata title in the prompt's context) without the chat template's tokens. */
export function withoutTemplateTokens(text: string): string {
  return text.replace(TEMPLATE_TOKENS, "");
}
const TEMPLATE_TOKENS = new RegExp(TEMPLATE_TOKEN.source, "gi");

/** A number written in decimal (Number() would also take "0x2", "0b10" or "Infinity"). */
const DECIMAL = /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i;

/** A requested value: as valueSchema, and early stopping also as its text ("true", "false", "never"). */
function requestSchema(spec: ParamSpec): z.ZodType {
  if (spec.kind !== "earlyStopping") return valueSchema(spec);
  return z.union([z.boolean(), z.enum(EARLY_STOPPING_TEXTS)], { error: rangeProblem(spec) }).transform((v) => (typeof v === "boolean" ? v : parseEarlyStopping(v)));
}

const BOOLEAN_WORDS = ["true", "false", "1", "0", "yes", "no"] as const;
const lowerCase = z.string().transform((v) => v.trim().toLowerCase());

/** The parameter written as text (an environment variable, a CLI flag's argument). */
function textSchema(spec: ParamSpec): z.ZodType<unknown, string> {
  switch (spec.kind) {
    case "int":
    case "float":
      return z.string().transform((v) => (DECIMAL.test(v) ? Number(v) : Number.NaN)).pipe(valueSchema(spec) as z.ZodType<number, number>);
    // Words in any case: GraphQL's enum is TRUE/NEVER, and a flag written the same way is meant the same.
    case "boolean":
      return lowerCase.pipe(z.enum(BOOLEAN_WORDS, { error: `must be one of ${BOOLEAN_WORDS.join(", ")}` })).transform((v) => v === "true" || v === "1" || v === "yes");
    case "earlyStopping":
      return lowerCase.pipe(z.enum(EARLY_STOPPING_TEXTS, { error: rangeProblem(spec) })).transform(parseEarlyStopping);
    case "text":
      return (valueSchema(spec) as z.ZodType<string, string>).superRefine((v, ctx) => {
        const problem = promptProblem(v);
        if (problem) ctx.addIssue({ code: "custom", message: problem });
      });
  }
}

function minWithinMax(p: { minNewTokens?: number; maxNewTokens?: number }): string | null {
  return p.minNewTokens !== undefined && p.maxNewTokens !== undefined && p.minNewTokens > p.maxNewTokens
    ? `must not exceed maxNewTokens (${p.maxNewTokens})`
    : null;
}

/** A full parameter set: every parameter present and in range, minNewTokens at most maxNewTokens. */
export const generationParamsSchema = z
  .object(Object.fromEntries(PARAM_NAMES.map((n) => [n, valueSchema(PARAMS[n])])))
  .strict()
  .superRefine((p, ctx) => {
    const problem = minWithinMax(p as Partial<GenerationParams>);
    if (problem) ctx.addIssue({ code: "custom", path: ["minNewTokens"], message: problem });
  }) as unknown as z.ZodType<GenerationParams>;

/**
 * Requested overrides: any subset, each in range; null or undefined means unset and is dropped;
 * early stopping may be given as text. Unknown keys are refused.
 */
export const requestedParamsSchema = z
  .object(Object.fromEntries(PARAM_NAMES.map((n) => [n, requestSchema(PARAMS[n]).nullish()])))
  .strict()
  .transform((p) => Object.fromEntries(Object.entries(p).filter(([, v]) => v !== null && v !== undefined))) as unknown as z.ZodType<
  RequestedParams,
  unknown
>;

function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === "number" || typeof v === "boolean" || v === null) return String(v);
  return typeof v;
}

/** The first problem of a failed parse, as a typed error naming the parameter. */
function toRangeError(issues: z.core.$ZodIssue[], input: unknown): ParamOutOfRangeError {
  const issue = issues[0]!;
  if (issue.code === "unrecognized_keys") return new ParamOutOfRangeError(issue.keys[0] ?? "?", "is not a generation parameter");
  const field = String(issue.path[0] ?? "params");
  const value = input !== null && typeof input === "object" ? (input as Record<string, unknown>)[field] : input;
  // A prompt is not echoed back: checkText's problem says what is wrong with it.
  const got = PARAMS[field as ParamName]?.kind === "text" ? "" : ` (got ${show(value)})`;
  return new ParamOutOfRangeError(field, `${issue.message}${got}`);
}

// ---------------------------------------------------------------------------------------------
// Operations

/** The parameters that apply: the requested ones over the defaults. */
export function resolveParams(requested: RequestedParams, defaults: GenerationParams): GenerationParams {
  return { ...defaults, ...requested };
}

/**
 * Checks requested overrides and drops unset ones (null/undefined). Throws ParamOutOfRangeError
 * naming the first bad field; minNewTokens is checked against the maxNewTokens that will apply.
 */
export function checkRequested(input: unknown, defaults: GenerationParams): RequestedParams {
  if (input === null || input === undefined) return {};
  const r = requestedParamsSchema.safeParse(input);
  if (!r.success) throw toRangeError(r.error.issues, input);
  const prompt = r.data.prompt === undefined ? null : promptProblem(r.data.prompt);
  if (prompt) throw new ParamOutOfRangeError("prompt", prompt);
  const problem = minWithinMax(resolveParams(r.data, defaults));
  if (problem) throw new ParamOutOfRangeError("minNewTokens", `${problem} (got ${resolveParams(r.data, defaults).minNewTokens})`);
  return r.data;
}

/** A full parameter set (what the engine is given): every parameter present and in range. Throws ParamOutOfRangeError. */
export function checkParams(params: unknown): GenerationParams {
  const r = generationParamsSchema.safeParse(params);
  if (!r.success) throw toRangeError(r.error.issues, params);
  return r.data;
}

/** One parameter written as text (a CLI flag's argument, an environment variable). Throws ParamOutOfRangeError. */
export function parseParamText<K extends ParamName>(name: K, text: string): GenerationParams[K] {
  const spec = PARAMS[name];
  const r = textSchema(spec).safeParse(text);
  if (!r.success) throw new ParamOutOfRangeError(name, r.error.issues[0]!.message);
  return r.data as GenerationParams[K];
}

// ---------------------------------------------------------------------------------------------
// Config: the DESCRIBE_* variables

type EnvOf<K extends ParamName> = (typeof PARAMS)[K]["env"];

/** The configured defaults as config.ts holds them: one variable per parameter. */
export type ParamsConfig = { [K in ParamName as EnvOf<K>]: GenerationParams[K] };

/** The DESCRIBE_* entries of config.ts's schema: each parses its variable's text and defaults to the table's default. */
export function configEntries(): { [K in ParamName as EnvOf<K>]: z.ZodType<GenerationParams[K], string | undefined> } {
  return Object.fromEntries(PARAM_NAMES.map((n) => [PARAMS[n].env, textSchema(PARAMS[n]).default(PARAMS[n].default as never)])) as never;
}

/** The configured defaults (the DESCRIBE_* variables) as a parameter set. */
export function paramsFromConfig(config: ParamsConfig): GenerationParams {
  const env = config as unknown as Record<string, unknown>;
  return Object.fromEntries(PARAM_NAMES.map((n) => [n, env[PARAMS[n].env]])) as unknown as GenerationParams;
}

/** Problems of a configured set as a whole (min above max), as "VARIABLE: problem" lines. */
export function configProblems(config: ParamsConfig): string[] {
  const { minNewTokens, maxNewTokens } = paramsFromConfig(config);
  if (minNewTokens <= maxNewTokens) return [];
  return [`${PARAMS.minNewTokens.env}=${JSON.stringify(String(minNewTokens))}: must not exceed ${PARAMS.maxNewTokens.env} (${maxNewTokens})`];
}

// ---------------------------------------------------------------------------------------------
// Job.params codec

/**
 * The requested parameters as stored in `Job.params` (and in its dedupe key): validated, unset
 * ones dropped, keys sorted so the same request is always the same text. Early stopping stays
 * `true`, `false` or `"never"`, as every version has written it.
 */
export function encodeJobParams(requested: RequestedParams): string {
  const r = requestedParamsSchema.safeParse(requested);
  if (!r.success) throw toRangeError(r.error.issues, requested);
  const sorted = Object.fromEntries(Object.entries(r.data).sort(([a], [b]) => a.localeCompare(b)));
  return JSON.stringify(sorted);
}

/**
 * Reads a stored `Job.params`: a JSON object of requested parameters (`{}` for none). Rows of
 * earlier versions decode too (they wrote the same keys; early stopping as a boolean or
 * "never"); a null value counts as unset. Anything else is a StoredParamsError.
 */
export function decodeJobParams(json: string): RequestedParams {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw new StoredParamsError(json, "not JSON");
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw new StoredParamsError(json, "not a JSON object");
  const r = requestedParamsSchema.safeParse(raw);
  if (!r.success) throw new StoredParamsError(json, toRangeError(r.error.issues, raw).message);
  return r.data;
}
