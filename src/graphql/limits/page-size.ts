import { BadUserInputError } from "../errors.js";

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

/**
 * `first` and `last` of a Relay connection, each checked by pageSize when given (Pothos would clamp
 * them in silence). One direction a page: `first` with `last` (the spec's "the last n of the first
 * m", which no client sends and each connection would read its own way), or `after` with `before`,
 * is refused naming the argument.
 */
export function connectionPageSizes(args: { first?: number | null; last?: number | null; after?: string | null; before?: string | null }, max: number): void {
  if (args.first != null && args.last != null) {
    throw new BadUserInputError("last", "first and last cannot be given together: first pages forward (with after), last backward (with before)");
  }
  if (args.after != null && args.before != null) {
    throw new BadUserInputError("before", "after and before cannot be given together: after pages forward (with first), before backward (with last)");
  }
  for (const name of ["first", "last"] as const) {
    const value = args[name];
    if (value != null) pageSize(name, value, 0, max);
  }
}
