import { BoundedLru, type LruBounds } from "../graphql/bounded-lru.js";

/**
 * Prisma 6.19's WebAssembly query compiler class, as its runtime module exports it
 * (`@prisma/client/runtime/query_compiler_bg.<provider>.mjs`): the client engine makes one per
 * connection and calls `compile(request)` with every request serialised as JSON.
 */
export interface QueryCompilerClass {
  prototype: { compile(request: string): unknown };
}

/** Plans kept per compiler: Prisma's request shapes (a few hundred) times the argument values seen. */
export const QUERY_PLAN_BOUNDS: LruBounds = { maxEntries: 2000, maxBytes: 32_000_000 };

/**
 * Reads only. A read's plan is a function of its request and the compiler's schema; that a write's
 * plan holds nothing evaluated at compile time (a `now()` default) is not something to rely on.
 */
const READ_REQUEST = /^\{(?:"modelName":"\w+",)?"action":"(?:findUnique|findUniqueOrThrow|findFirst|findFirstOrThrow|findMany|aggregate|groupBy)"/;

const counts = { hits: 0, misses: 0 };
const plansByCompiler = new WeakMap<object, BoundedLru<unknown>>();
const patched = new WeakSet<object>();

/** A list of integers in an `in` or `notIn` filter, as the request's JSON holds one (inside a JSON string its quotes would be escaped). */
const ID_LIST = /(?<=[{,])"(in|notIn)":\[(-?\d+(?:,-?\d+)*)\]/g;
/** Stand-ins for a list's values while its shape compiles: 32-bit integers (Int columns take them). */
const SENTINEL_BASE = 1_987_650_000;
const SENTINEL_TEXT = /19876\d{5}/;
/** Values of one request's lists a template takes at most. */
const MAX_TEMPLATE_VALUES = 10_000;

/**
 * A plan compiled with stand-in values for a request's id lists, and where each value sits in it:
 * `trie` maps keys along the plan down to a value's index (a number leaf) and `asText` says
 * whether the plan holds that value as a string (Prisma passes BIGINT parameters as text).
 */
interface PlanTemplate {
  plan: unknown;
  trie: Map<string | number, unknown>;
  asText: boolean[];
}
/** A request shape whose plan does not hold each stand-in exactly once as a query argument. */
const NOT_A_TEMPLATE = Symbol("not a template");

/**
 * Keeps the query plans that Prisma's client engine compiles, per compiler (so per client and
 * schema), keyed by the whole request: Prisma 6.19 compiles every request again, through
 * WebAssembly, and that compile was about a quarter of an uncached list request's CPU. The same
 * request (the same list or work asked for again after a commit emptied the GraphQL response
 * cache) now skips it. Requests differ by their argument values, so another page or another work
 * is compiled once and then kept too, up to `bounds` (least recently used dropped).
 *
 * A read by a list of ids (`where: { id: { in: [...] } }`: the works of a search page, a page's
 * images) differs from the last one by its ids almost every time, so its shape is kept instead:
 * the request is compiled once per shape (list lengths included) with stand-in values, and each
 * request gets a copy of that plan with its own values where the stand-ins were. That is done only
 * when each stand-in appears exactly once in the plan, in a query's argument list, so the plan
 * cannot depend on the values in any other way; else the request is compiled and kept as above.
 * (About 0.6 ms of CPU saved on each search request, where the page's works are such a read.)
 *
 * A plan describes the SQL and how to map its rows, never the rows, so a kept plan stays right
 * after any commit. Kept plans are frozen: if a Prisma version ever changed a plan while running
 * it, its queries would fail at once instead of reusing a changed plan.
 */
export function keepQueryPlans(compiler: QueryCompilerClass, bounds: LruBounds = QUERY_PLAN_BOUNDS): void {
  const proto = compiler.prototype;
  if (patched.has(proto)) return;
  const compile = proto.compile;
  if (typeof compile !== "function") throw new Error("Prisma's QueryCompiler has no compile method: @prisma/client is not the version src/store/query-plans.ts was written for");
  patched.add(proto);
  proto.compile = function compileKept(this: object, request: string): unknown {
    if (!READ_REQUEST.test(request)) return compile.call(this, request);
    let plans = plansByCompiler.get(this);
    if (!plans) plansByCompiler.set(this, (plans = new BoundedLru(bounds)));
    const kept = plans.get(request);
    if (kept !== undefined) {
      counts.hits++;
      return kept;
    }
    const shaped = templated(request);
    if (shaped) {
      const key = `shape ${shaped.shape}`;
      let template = plans.get(key) as PlanTemplate | typeof NOT_A_TEMPLATE | undefined;
      const kept = template !== undefined;
      if (template === undefined) {
        counts.misses++;
        const plan = deepFreeze(compile.call(this, shaped.shape));
        template = templateOf(plan, shaped.values.length) ?? NOT_A_TEMPLATE;
        plans.set(key, template, 2 * (key.length + JSON.stringify(plan).length));
      }
      // A refused shape is no hit: the request itself is compiled below.
      if (template !== NOT_A_TEMPLATE) {
        if (kept) counts.hits++;
        return withValues(template.plan, template.trie, template.asText, shaped.values);
      }
    }
    counts.misses++;
    const plan = deepFreeze(compile.call(this, request));
    // Two bytes a character: the request and the plan as JavaScript holds them, roughly.
    plans.set(request, plan, 2 * (request.length + JSON.stringify(plan).length));
    return plan;
  };
}

/** The request with its id lists' values replaced by stand-ins, and the values; null without such a list. */
function templated(request: string): { shape: string; values: string[] } | null {
  if (!request.includes('"in":[') && !request.includes('"notIn":[')) return null;
  if (SENTINEL_TEXT.test(request)) return null;
  const values: string[] = [];
  const shape = request.replace(ID_LIST, (_, op: string, list: string) => {
    const stands = list.split(",").map((v) => SENTINEL_BASE + values.push(v) - 1);
    return `"${op}":[${stands.join(",")}]`;
  });
  return values.length && values.length <= MAX_TEMPLATE_VALUES ? { shape, values } : null;
}

/** Where each of `count` stand-ins sits in `plan`, or null unless each is there exactly once, in an `args` array. */
function templateOf(plan: unknown, count: number): PlanTemplate | null {
  const found: { path: (string | number)[]; text: boolean }[] = [];
  const walk = (node: unknown, path: (string | number)[]): boolean => {
    if (typeof node === "number" || typeof node === "string") {
      const n = typeof node === "number" ? node : /^-?\d+$/.test(node) ? Number(node) : NaN;
      const i = n - SENTINEL_BASE;
      if (!(Number.isInteger(i) && i >= 0 && i < count)) return true;
      if (found[i] || path.at(-2) !== "args") return false;
      found[i] = { path, text: typeof node === "string" };
      return true;
    }
    if (node === null || typeof node !== "object") return true;
    if (Array.isArray(node)) return node.every((child, k) => walk(child, [...path, k]));
    return Object.entries(node).every(([k, child]) => walk(child, [...path, k]));
  };
  if (!walk(plan, []) || found.length !== count || found.includes(undefined as never)) return null;
  const trie = new Map<string | number, unknown>();
  found.forEach(({ path }, index) => {
    let node = trie;
    for (const key of path.slice(0, -1)) {
      let next = node.get(key) as Map<string | number, unknown> | undefined;
      if (!next) node.set(key, (next = new Map()));
      node = next;
    }
    node.set(path.at(-1)!, index);
  });
  return { plan, trie, asText: found.map((f) => f.text) };
}

/** A copy of the template's plan with `values` in its stand-ins' places (only the containers on their paths are copied). */
function withValues(node: unknown, trie: Map<string | number, unknown>, asText: readonly boolean[], values: readonly string[]): unknown {
  const copy = (Array.isArray(node) ? node.slice() : { ...(node as object) }) as Record<string | number, unknown>;
  for (const [key, sub] of trie) {
    if (typeof sub === "number") copy[key] = asText[sub] ? values[sub] : Number(values[sub]);
    else copy[key] = withValues((node as Record<string | number, unknown>)[key], sub as Map<string | number, unknown>, asText, values);
  }
  return copy;
}

/** Kept and compiled read plans since the process started (for tests and benchmarks). */
export function queryPlanCounts(): { hits: number; misses: number } {
  return { ...counts };
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
