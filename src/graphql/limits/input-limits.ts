import {
  getNullableType,
  type GraphQLArgument,
  type GraphQLField,
  type GraphQLInputField,
  type GraphQLInputType,
  isInputObjectType,
  isListType,
} from "graphql";

/**
 * Size limits of input values, checked for every argument of every field in one place (the
 * request-limits plugin runs it before execution). A string argument or input field is at most
 * `extensions.maxLength` characters (DEFAULT_MAX_LENGTH when unset) and a list at most
 * `extensions.maxItems` items (DEFAULT_MAX_ITEMS); nested input objects are checked field by
 * field. Declare a limit next to its argument:
 *
 *   t.arg.string({ extensions: inputLimit({ maxLength: 200 }) })
 *
 * A string that its resolver checks itself, to answer with a typed error in the field's result
 * union (InvalidInputError, InvalidIdError), declares `inputLimit(RESOLVER_CHECKED)` and is left
 * to it; the request body limit still bounds it.
 */
export const DEFAULT_MAX_LENGTH = 1000;
export const DEFAULT_MAX_ITEMS = 100;

export interface InputLimit {
  maxLength?: number;
  maxItems?: number;
  /** The resolver checks this string's length and content and answers with a typed error. */
  resolverChecked?: boolean;
}

export const RESOLVER_CHECKED: InputLimit = { resolverChecked: true };

/** The `extensions` that set an argument's or input field's limits. */
export function inputLimit(limit: InputLimit): { inputLimit: InputLimit } {
  return { inputLimit: limit };
}

export interface ArgumentProblem {
  /** "Query.artworks(creator:)" or "Query.search(filter.creator:)". */
  coordinate: string;
  message: string;
}

export function checkArgumentLimits(fieldCoordinate: string, field: GraphQLField<unknown, unknown>, args: Record<string, unknown>): ArgumentProblem[] {
  const problems: ArgumentProblem[] = [];
  for (const arg of field.args) {
    if (args[arg.name] != null) checkValue(arg, args[arg.name], arg.name, fieldCoordinate, problems);
  }
  return problems;
}

function checkValue(
  def: GraphQLArgument | GraphQLInputField,
  value: unknown,
  path: string,
  fieldCoordinate: string,
  problems: ArgumentProblem[],
  type: GraphQLInputType = def.type,
): void {
  if (value == null) return;
  const limit = (def.extensions as { inputLimit?: InputLimit } | undefined)?.inputLimit ?? {};
  const nullable = getNullableType(type);
  const coordinate = `${fieldCoordinate}(${path}:)`;
  if (isListType(nullable)) {
    if (!Array.isArray(value)) return;
    const max = limit.maxItems ?? DEFAULT_MAX_ITEMS;
    if (value.length > max) {
      problems.push({ coordinate, message: `${coordinate} takes at most ${max} items (got ${value.length})` });
      return;
    }
    for (const item of value) checkValue(def, item, path, fieldCoordinate, problems, nullable.ofType as GraphQLInputType);
    return;
  }
  if (isInputObjectType(nullable)) {
    const fields = nullable.getFields();
    for (const [name, v] of Object.entries(value as Record<string, unknown>)) {
      const f = fields[name];
      if (f) checkValue(f, v, `${path}.${name}`, fieldCoordinate, problems);
    }
    return;
  }
  if (typeof value === "string") {
    if (limit.resolverChecked) return;
    const max = limit.maxLength ?? DEFAULT_MAX_LENGTH;
    if (value.length > max) problems.push({ coordinate, message: `${coordinate} takes at most ${max} characters (got ${value.length})` });
  }
}
