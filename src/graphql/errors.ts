import { GraphQLError, type GraphQLErrorOptions } from "graphql";

/** Expected failures, returned as typed results (Pothos errors plugin), never masked. */
export class NotFoundError extends Error {
  override name = "NotFoundError";
  constructor(readonly id: string, message = `No artwork with id "${id}"`) {
    super(message);
  }
}

export class InvalidIdError extends Error {
  override name = "InvalidIdError";
  constructor(readonly id: string, expected = "a Wikidata QID like Q5432 or a global id") {
    super(`"${id}" is not a valid id: expected ${expected}`);
  }
}

export class InvalidInputError extends Error {
  override name = "InvalidInputError";
  constructor(readonly field: string, message: string) {
    super(message);
  }
}

/**
 * The change was made against a state that is gone: someone else changed the same thing meanwhile
 * (the caller said what it saw). Nothing was written; `id` names what changed.
 */
export class ConflictError extends Error {
  override name = "ConflictError";
  constructor(
    readonly id: string,
    message: string,
  ) {
    super(message);
  }
}

export class UnauthorizedError extends Error {
  override name = "UnauthorizedError";
  constructor(message = "This mutation needs the header Authorization: Bearer <API_TOKEN>") {
    super(message);
  }
}

/**
 * Bad input to a field whose type has no room for a typed error: a connection (Relay's
 * `@connection` needs the field to return the connection itself) or a subscription. It answers in
 * the response's `errors` with `extensions.code` BAD_USER_INPUT and `extensions.argument`, the
 * argument at fault ("first", "after", "query", "filter.minRisk"); the message says what is allowed.
 */
export class BadUserInputError extends GraphQLError {
  /** `at`: where in the document and the answer (an error rewritten by the mask keeps the field's path and locations). */
  constructor(
    readonly argument: string,
    message: string,
    at: Pick<GraphQLErrorOptions, "nodes" | "source" | "positions" | "path"> = {},
  ) {
    super(message, { ...at, extensions: { code: "BAD_USER_INPUT", argument } });
    this.name = "BadUserInputError";
  }
}

/** The answer to a paging cursor this API never gave out (made up, cut short, or another list's). */
export const FOREIGN_CURSOR_MESSAGE = "The cursor is not one this API gave out: page with the cursors from pageInfo or the edges.";

/**
 * What the request asked for cannot run right now, through no fault of the request (semantic search
 * while its embedding thread has a full queue, or while its model fails and waits to be loaded
 * again): HTTP 503 with Retry-After, as DATABASE_UNAVAILABLE is, so that clients and proxies that
 * retry overloads retry it. `extensions.code` TEMPORARILY_UNAVAILABLE, `extensions.argument` the
 * argument whose choice needs it ("mode"), `extensions.retryAfter` in seconds.
 */
export class TemporarilyUnavailableError extends GraphQLError {
  constructor(
    readonly argument: string,
    message: string,
    readonly retryAfterS: number,
  ) {
    super(message, {
      extensions: { code: "TEMPORARILY_UNAVAILABLE", argument, retryAfter: retryAfterS, http: { status: 503, headers: { "retry-after": String(retryAfterS) } } },
    });
    this.name = "TemporarilyUnavailableError";
  }
}
