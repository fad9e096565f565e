import { BadUserInputError, FOREIGN_CURSOR_MESSAGE } from "../errors.js";

/**
 * The one check of a page-size argument (`limit`, `first`, `last`): null or absent means the
 * default (as the cost analysis prices it), and a value outside 0…max is refused with a message
 * naming the argument, never clamped in silence.
 */
export function pageSize(name: string, value: number | null | undefined, defaultValue: number, max: number, hint = ""): number {
  const size = value ?? defaultValue;
  if (!Number.isInteger(size) || size < 0 || size > max) {
    throw new BadUserInputError(name, `${name} must be between 0 and ${max} (got ${size})${hint}`);
  }
  return size;
}

/** A Relay connection's paging arguments, as resolvers receive them. */
export type ConnectionArgs = { first?: number | null; last?: number | null; after?: string | null; before?: string | null };

/** Two paging arguments that point opposite ways, refused naming the second. */
export type MixedDirections = "first+last" | "after+before" | "first+before" | "last+after";

/** The refusal of two paging arguments given together (connectionPageSizes, and Pothos's own checks as the API reports them). */
export function directionRefusal(pair: MixedDirections): BadUserInputError {
  switch (pair) {
    case "first+last":
      return new BadUserInputError("last", "first and last cannot be given together: first pages forward (with after), last backward (with before)");
    case "after+before":
      return new BadUserInputError("before", "after and before cannot be given together: after pages forward (with first), before backward (with last)");
    case "first+before":
      return new BadUserInputError("before", "first goes with after, last with before: use last to page backward from before");
    case "last+after":
      return new BadUserInputError("after", "first goes with after, last with before: use first to page forward from after");
  }
}

/**
 * `first` and `last` of a Relay connection, each checked by pageSize when given (Pothos would clamp
 * them in silence). One direction a page: `first` with `last` (the spec's "the last n of the first
 * m", which no client sends and each connection would read its own way), `after` with `before`, or
 * a size and a cursor of opposite directions, is refused naming the argument.
 */
export function connectionPageSizes(args: ConnectionArgs, max: number): void {
  if (args.first != null && args.last != null) throw directionRefusal("first+last");
  if (args.after != null && args.before != null) throw directionRefusal("after+before");
  if (args.first != null && args.before != null) throw directionRefusal("first+before");
  if (args.last != null && args.after != null) throw directionRefusal("last+after");
  for (const name of ["first", "last"] as const) {
    const value = args[name];
    if (value != null) pageSize(name, value, 0, max);
  }
}

/**
 * A Pothos prismaConnection's query paged by key instead of Prisma's cursor row. Prisma's cursor
 * (`cursor` with `skip: 1`) starts at the cursor's row and skips it; when that row has left the
 * filter meanwhile (a work described, a sync that removed it) it skipped the next real row instead,
 * and when the row is gone from the table (a pruned job) the page came back empty. By key, the page
 * is simply the rows past the cursor's id in the list's order. Pothos decodes any well-formed cursor
 * ("GPC:S:abc" gives "abc"): one that names no id is refused as every connection refuses it.
 * `order`: the list's id order.
 */
export function byKey<Q extends { take?: number }>(query: Q, args: ConnectionArgs, order: "asc" | "desc"): { query: Omit<Q, "cursor" | "skip">; where: { id?: { gt: number } | { lt: number } } } {
  const { cursor, skip: _skip, ...rest } = query as Q & { cursor?: { id: unknown }; skip?: number };
  if (!cursor) return { query: rest, where: {} };
  const id = cursor.id;
  if (!(typeof id === "number" && Number.isSafeInteger(id) && id > 0)) throw new BadUserInputError(args.before != null ? "before" : "after", FOREIGN_CURSOR_MESSAGE);
  // A negative take pages backward from the cursor (last with before).
  const forward = (rest.take ?? 0) >= 0;
  return { query: rest, where: { id: forward === (order === "asc") ? { gt: id } : { lt: id } } };
}
