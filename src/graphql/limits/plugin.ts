import { GraphQLError, Lexer, Source, TokenKind } from "graphql";
import type { Plugin } from "graphql-yoga";
import { type CostOptions, operationCost, UnanalysableOperationError } from "./cost.js";

/** What one request may ask for; each is a setting (src/config.ts). */
export interface RequestLimits {
  /** Lexical tokens in a document: refuses huge and deeply nested documents before the parser recurses. */
  maxTokens: number;
  /** Fields nested in the deepest path (fragments add no level; see cost.ts). */
  maxDepth: number;
  maxAliases: number;
  maxCost: number;
  maxRows: number;
  /** Milliseconds an operation may run before it is stopped. */
  timeoutMs: number;
}

/** The codes of refused requests, in `extensions.code`. */
export const LIMIT_CODES = {
  tokens: "TOKEN_LIMIT",
  depth: "DEPTH_LIMIT",
  aliases: "ALIAS_LIMIT",
  cost: "COST_LIMIT",
  rows: "ROW_LIMIT",
  timeout: "TIMEOUT",
  input: "BAD_USER_INPUT",
} as const;

/**
 * A refusal before execution is a request error in GraphQL over HTTP's terms
 * (https://graphql.github.io/graphql-over-http/draft/#sec-application-graphql-response-json):
 * 400 under `Accept: application/graphql-response+json`, 200 under `application/json`
 * (Yoga reads `spec: true` as exactly that). Yoga strips `http` from the response.
 */
const REQUEST_ERROR = { status: 400, spec: true } as const;

/**
 * A request refused by a limit: a GraphQL error whose message names the limit, its value and its
 * setting, with the code in `extensions.code`. Every limit but the time limit refuses before
 * anything runs, so the response has no `data`.
 */
export class RequestLimitError extends GraphQLError {
  constructor(message: string, code: (typeof LIMIT_CODES)[keyof typeof LIMIT_CODES]) {
    super(message, { extensions: code === LIMIT_CODES.timeout ? { code } : { code, http: REQUEST_ERROR } });
    this.name = "RequestLimitError";
  }
}

/** Counts tokens up to `max + 1` without parsing (no recursion); syntax errors are left to the parser. */
export function exceedsTokens(source: string, max: number): number | null {
  const lexer = new Lexer(new Source(source));
  let count = 0;
  try {
    while (lexer.advance().kind !== TokenKind.EOF) {
      if (++count > max) return count;
    }
  } catch {
    return null;
  }
  return null;
}

/**
 * Refuses, before anything runs: documents of more than maxTokens tokens; operations nested
 * deeper than maxDepth fields, with more than maxAliases aliases, a cost above maxCost or more
 * than maxRows rows (see cost.ts), or an argument over its size limit (input-limits.ts). Stops an operation that runs longer than
 * timeoutMs (the executor checks the signal between fields; the client disconnecting stops it too).
 */
export function useRequestLimits(limits: RequestLimits, costOptions: CostOptions): Plugin {
  const analyse = (args: { schema: import("graphql").GraphQLSchema; document: import("graphql").DocumentNode; variableValues?: unknown; operationName?: string | null }) => {
    let analysis;
    try {
      analysis = operationCost(args.schema, args.document, {
        ...costOptions,
        variables: (args.variableValues ?? {}) as Record<string, unknown>,
        operationName: args.operationName,
      });
    } catch (err) {
      // Execution reports the same problem (unknown operation, bad variables) and runs nothing.
      if (err instanceof UnanalysableOperationError) return [];
      throw err;
    }
    const errors: GraphQLError[] = analysis.problems.map((p) => new RequestLimitError(p.message, LIMIT_CODES.input));
    if (analysis.depth > limits.maxDepth) {
      errors.push(
        new RequestLimitError(
          `The operation nests fields ${analysis.depth} deep; at most ${limits.maxDepth} are allowed (GRAPHQL_MAX_DEPTH). Fragments add no level`,
          LIMIT_CODES.depth,
        ),
      );
    }
    if (analysis.aliases > limits.maxAliases) {
      errors.push(new RequestLimitError(`The operation has ${analysis.aliases} aliases; at most ${limits.maxAliases} are allowed (GRAPHQL_MAX_ALIASES)`, LIMIT_CODES.aliases));
    }
    if (analysis.cost > limits.maxCost) {
      errors.push(
        new RequestLimitError(
          `The operation costs ${analysis.cost}; at most ${limits.maxCost} is allowed (GRAPHQL_MAX_COST). Every field counts once per object, multiplied by limit/first/last; ask for smaller pages`,
          LIMIT_CODES.cost,
        ),
      );
    }
    if (analysis.rows > limits.maxRows) {
      errors.push(new RequestLimitError(`The operation may return ${analysis.rows} rows; at most ${limits.maxRows} are allowed (GRAPHQL_MAX_ROWS)`, LIMIT_CODES.rows));
    }
    return errors;
  };

  return {
    onParse({ params }) {
      const body = typeof params.source === "string" ? params.source : params.source.body;
      const tokens = exceedsTokens(body, limits.maxTokens);
      if (tokens != null) {
        throw new RequestLimitError(`The document has more than ${limits.maxTokens} tokens (GRAPHQL_MAX_TOKENS)`, LIMIT_CODES.tokens);
      }
    },
    onExecute({ args, setResultAndStopExecution }) {
      const errors = analyse(args);
      if (errors.length) return void setResultAndStopExecution({ errors });
      const controller = new AbortController();
      const stop = () =>
        controller.abort(new RequestLimitError(`The operation ran longer than ${limits.timeoutMs} ms and was stopped (GRAPHQL_TIMEOUT_MS)`, LIMIT_CODES.timeout));
      const timer = setTimeout(stop, limits.timeoutMs);
      // The client leaving stops the operation too. Not through AbortSignal.any: Node keeps a
      // combined signal that has an abort listener (the executor's, never removed) until one of
      // its sources aborts, which for a request that ended normally is never, so every operation
      // stayed in memory with everything it held (about 12 kB for a page of search hits; test/hostile/request-memory.test.ts).
      const clientSignal = (args.contextValue as { request?: Request }).request?.signal;
      const clientLeft = () => controller.abort(clientSignal!.reason);
      if (clientSignal?.aborted) clientLeft();
      else clientSignal?.addEventListener("abort", clientLeft, { once: true });
      const signal = controller.signal;
      // The executor asks the signal between fields: past the deadline the operation stops even
      // when the timer has had no turn of the event loop to fire. Once the executor listens for
      // the abort this never throws: its listener ends the operation, whereas a throw in the middle
      // of a list leaves the items already started to reject later, unhandled (which would end a
      // Node process running with the default --unhandled-rejections=throw). Before it listens
      // (nothing has started), an abort that already happened (the timer fired while later plugins
      // awaited, the client left) can only reach it as a throw: it would never hear the event.
      const clock: OperationClock = { signal, deadline: performance.now() + limits.timeoutMs, listening: false, stop, listen: signal.addEventListener.bind(signal) };
      // Bound functions, not arrow functions written onto the signal here: Node 22's V8 kept such
      // a closure, and all it captured (the operation's arguments and context), through every
      // scavenge until a mark-compact, about 2.3 kB promoted a request; a bound function is not
      // kept (BENCHMARKS.md, "What every Prisma call left for the collector").
      signal.addEventListener = listenNoting.bind(clock) as AbortSignal["addEventListener"];
      signal.throwIfAborted = throwIfPastDeadline.bind(clock);
      (args as typeof args & { signal?: AbortSignal }).signal = signal;
      return {
        onExecuteDone: () => {
          clearTimeout(timer);
          clientSignal?.removeEventListener("abort", clientLeft);
        },
      };
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const errors = analyse(args);
      if (errors.length) setResultAndStopExecution({ errors });
    },
  };
}

/** One operation's deadline and whether the executor listens for its abort yet. */
interface OperationClock {
  signal: AbortSignal;
  deadline: number;
  listening: boolean;
  stop: () => void;
  listen: AbortSignal["addEventListener"];
}

/** The operation signal's addEventListener: notes that the executor listens for the abort. */
function listenNoting(this: OperationClock, type: string, listener: EventListenerOrEventListenerObject, options?: AddEventListenerOptions | boolean): void {
  if (type === "abort") this.listening = true;
  this.listen(type, listener, options);
}

/** The operation signal's throwIfAborted: stops the operation past its deadline, and throws only while nobody listens. */
function throwIfPastDeadline(this: OperationClock): void {
  const { signal } = this;
  if (!signal.aborted && performance.now() > this.deadline) this.stop();
  if (signal.aborted && !this.listening) throw signal.reason;
}
