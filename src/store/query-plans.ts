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

/**
 * Keeps the query plans that Prisma's client engine compiles, per compiler (so per client and
 * schema), keyed by the whole request: Prisma 6.19 compiles every request again, through
 * WebAssembly, and that compile was about a quarter of an uncached list request's CPU. The same
 * request (the same list or work asked for again after a commit emptied the GraphQL response
 * cache) now skips it. Requests differ by their argument values, so another page or another work
 * is compiled once and then kept too, up to `bounds` (least recently used dropped).
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
    counts.misses++;
    const plan = deepFreeze(compile.call(this, request));
    // Two bytes a character: the request and the plan as JavaScript holds them, roughly.
    plans.set(request, plan, 2 * (request.length + JSON.stringify(plan).length));
    return plan;
  };
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
