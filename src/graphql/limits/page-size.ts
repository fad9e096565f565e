import { GraphQLError } from "graphql";

/**
 * The one check of a page-size argument (`limit`, `first`, `last`): null or absent means the
 * default (as the cost analysis prices it), and a value outside 0…max is refused with a message
 * naming the argument, never clamped in silence.
 */
export function pageSize(name: string, value: number | null | undefined, defaultValue: number, max: number, hint = ""): number {
  const size = value ?? defaultValue;
  if (!Number.isInteger(size) || size < 0 || size > max) {
    throw new GraphQLError(`${name} must be between 0 and ${max} (got ${size})${hint}`, { extensions: { code: "BAD_USER_INPUT", argument: name } });
  }
  return size;
}
