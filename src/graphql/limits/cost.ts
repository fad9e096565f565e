import {
  type DocumentNode,
  type FragmentDefinitionNode,
  getArgumentValues,
  getNamedType,
  getNullableType,
  getVariableValues,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLObjectType,
  type GraphQLSchema,
  isAbstractType,
  isInterfaceType,
  isListType,
  isObjectType,
  Kind,
  type OperationDefinitionNode,
  SchemaMetaFieldDef,
  type SelectionSetNode,
  TypeMetaFieldDef,
} from "graphql";
import { type ArgumentProblem, checkArgumentLimits } from "./input-limits.js";

/**
 * How big an operation is before it runs: a pure function of the schema, the document and the
 * variables. Every field costs 1 per object it is resolved on, and a list multiplies what is
 * selected under it by the number of items it may return:
 *  - `limit: n` (or the argument's default in the schema) for offset lists,
 *  - `first`/`last` (or the connection's default page size) for the `edges`/`nodes` of a Relay connection,
 *  - the length of an `ids` list,
 *  - `unboundedListSize` for a list without such an argument (creators, genres, descriptions…).
 * A field whose value may be large (a description's text) declares a weight, `extensions: fieldWeight(n)`,
 * and costs n per object instead of 1, so the response size counts and not only the row count.
 * Fields of the introspection types cost nothing unless they are lists.
 * Depth counts fields only: a fragment (inline or spread) adds no level, so the fragment-heavy
 * documents Relay generates measure what they select; `__schema` and `__type` count 0 (graphql-js's
 * MaxIntrospectionDepthRule bounds them).
 * Fragments are summed over every possible type (an upper bound) and costed once each, so a
 * document of nested fragment spreads cannot make the analysis itself exponential.
 */
export interface CostOptions {
  /** Page size of a connection called without first or last, by "Type.field". */
  connectionDefaults: Record<string, number>;
  /** Page size assumed for a connection missing from connectionDefaults. */
  defaultConnectionSize: number;
  /** Items assumed for a list field that takes no limit, first, last or ids. */
  unboundedListSize: number;
  /**
   * Weights by "Type.field" for fields whose extensions cannot be set where they are made (a
   * connection's generated totalCount); `extensions: fieldWeight(n)` wins where both are given.
   */
  fieldWeights?: Record<string, number>;
}

/** Weight of a field holding a description's text (about 1 KB, where most fields hold tens of bytes). */
export const LONG_TEXT_WEIGHT = 5;

/** The `extensions` that make a field cost `weight` per object (text fields of kilobytes). */
export function fieldWeight(weight: number): { costWeight: number } {
  return { costWeight: weight };
}

function weightOf(field: GraphQLField<unknown, unknown>, coordinate: string, options: CostOptions): number {
  const w = (field.extensions as { costWeight?: unknown } | undefined)?.costWeight ?? options.fieldWeights?.[coordinate];
  return typeof w === "number" && w >= 0 ? w : 1;
}

export interface OperationCost {
  /** Field resolutions, multiplied by list sizes. */
  cost: number;
  /** Objects the lists may return, multiplied along the path. */
  rows: number;
  /** Aliased fields in the operation (fragments counted where they are spread). */
  aliases: number;
  /** Fields nested in the deepest path: `{ a { b } }` is 2. */
  depth: number;
  /** String and list arguments over their limits (see input-limits.ts). */
  problems: ArgumentProblem[];
}

/** Raised for a document the analysis cannot read (no such operation, bad variables): execution would refuse it too. */
export class UnanalysableOperationError extends Error {
  override name = "UnanalysableOperationError";
}

interface Unit {
  cost: number;
  rows: number;
  aliases: number;
  depth: number;
}

const ZERO: Unit = { cost: 0, rows: 0, aliases: 0, depth: 0 };

export function operationCost(
  schema: GraphQLSchema,
  document: DocumentNode,
  options: CostOptions & { variables?: Record<string, unknown> | null; operationName?: string | null },
): OperationCost {
  const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  const operation = options.operationName ? operations.find((o) => o.name?.value === options.operationName) : operations.length === 1 ? operations[0] : undefined;
  if (!operation) throw new UnanalysableOperationError("no operation to analyse (name it with operationName)");
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], options.variables ?? {}, { maxErrors: 1 });
  if (coerced.errors) throw new UnanalysableOperationError(coerced.errors[0]!.message);
  const variables = coerced.coerced;
  const rootType = schema.getRootType(operation.operation);
  if (!rootType) throw new UnanalysableOperationError(`the schema has no ${operation.operation} type`);
  const introspection = introspectionSizes(schema);
  const problems: ArgumentProblem[] = [];
  const fragmentUnits = new Map<string, Unit>();

  /** Cost of a selection set resolved on one object of `type` (a possibly abstract type). */
  function selectionSet(set: SelectionSetNode, type: GraphQLNamedType, pageSize: number | null): Unit {
    let cost = 0;
    let rows = 0;
    let aliases = 0;
    let depth = 0;
    // Cost and rows grow with every object a list returns; aliases are counted as written (the
    // cost already prices what an alias inside a list repeats).
    const add = (u: Unit, times = 1) => {
      cost += u.cost * times;
      rows += u.rows * times;
      aliases += u.aliases;
      depth = Math.max(depth, u.depth);
    };
    for (const selection of set.selections) {
      if (selection.kind === Kind.INLINE_FRAGMENT) {
        const on = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : type;
        if (on) add(selectionSet(selection.selectionSet, on, pageSize));
        continue;
      }
      if (selection.kind === Kind.FRAGMENT_SPREAD) {
        const name = selection.name.value;
        const key = `${name}:${pageSize}`;
        let unit = fragmentUnits.get(key);
        if (!unit) {
          // A spread of a fragment being costed is a cycle, which validation refuses; count it as nothing.
          fragmentUnits.set(key, ZERO);
          const fragment = fragments.get(name);
          const on = fragment && schema.getType(fragment.typeCondition.name.value);
          unit = fragment && on ? selectionSet(fragment.selectionSet, on, pageSize) : ZERO;
          fragmentUnits.set(key, unit);
        }
        add(unit);
        continue;
      }
      if (selection.alias) aliases += 1;
      const name = selection.name.value;
      if (name === "__typename") {
        cost += 1;
        depth = Math.max(depth, 1);
        continue;
      }
      const field = fieldOf(schema, type, name);
      if (!field) continue; // validation refuses unknown fields
      let args: Record<string, unknown> = {};
      try {
        args = getArgumentValues(field, selection, variables);
      } catch {
        // validation and execution refuse bad arguments; cost what is left
      }
      problems.push(...checkArgumentLimits(`${type.name}.${name}`, field, args));
      // Introspection reads the schema in memory: only its lists count. (How deep it may nest is
      // graphql-js's MaxIntrospectionDepthRule's business.)
      if (!type.name.startsWith("__") || isListType(getNullableType(field.type))) cost += weightOf(field, `${type.name}.${name}`, options);
      if (!selection.selectionSet) {
        depth = Math.max(depth, 1);
        continue;
      }
      const returned = getNullableType(field.type);
      const itemType = getNamedType(field.type);
      const connection = connectionPageSize(schema, type.name, field, args, options);
      const size = isListType(returned)
        ? listSize(type.name, field, args, pageSize, introspection, options)
        : 1;
      if (isListType(returned)) rows += size;
      const below = selectionSet(selection.selectionSet, itemType, connection);
      add({ ...below, depth: name === "__schema" || name === "__type" ? 0 : 1 + below.depth }, size);
    }
    return { cost, rows, aliases, depth };
  }

  const unit = selectionSet(operation.selectionSet, rootType, null);
  return { ...unit, problems };
}

function fieldOf(schema: GraphQLSchema, type: GraphQLNamedType, name: string): GraphQLField<unknown, unknown> | undefined {
  // graphql-js keeps the meta fields outside the query type's field map.
  if (type === schema.getQueryType() && name === "__schema") return SchemaMetaFieldDef;
  if (type === schema.getQueryType() && name === "__type") return TypeMetaFieldDef;
  if (isObjectType(type) || isInterfaceType(type)) return type.getFields()[name];
  return undefined;
}

/** Page size of a Relay connection field (one whose type has edges and pageInfo), or null for any other field. */
function connectionPageSize(
  schema: GraphQLSchema,
  parent: string,
  field: GraphQLField<unknown, unknown>,
  args: Record<string, unknown>,
  options: CostOptions,
): number | null {
  const type = getNamedType(field.type);
  // A connection, or a union of a connection and expected errors (the Pothos errors plugin).
  const candidates = isAbstractType(type) ? schema.getPossibleTypes(type) : isObjectType(type) ? [type] : [];
  if (!candidates.some((t) => t.getFields().edges && t.getFields().pageInfo)) return null;
  const first = numberArg(args.first);
  const last = numberArg(args.last);
  if (first != null || last != null) return Math.max(first ?? 0, last ?? 0);
  return options.connectionDefaults[`${parent}.${field.name}`] ?? options.defaultConnectionSize;
}

function listSize(
  parent: string,
  field: GraphQLField<unknown, unknown>,
  args: Record<string, unknown>,
  pageSize: number | null,
  introspection: Map<string, number>,
  options: CostOptions,
): number {
  if (pageSize != null && (field.name === "edges" || field.name === "nodes")) return pageSize;
  if (Array.isArray(args.ids)) return args.ids.length;
  const limit = sizeArg(field, args, "limit");
  if (limit != null) return limit;
  const first = sizeArg(field, args, "first");
  if (first != null) return first;
  return introspection.get(`${parent}.${field.name}`) ?? options.unboundedListSize;
}

/**
 * A size argument's value; an explicit null stands for the argument's default, as the resolvers
 * read it (`args.limit ?? default`), so `limit: null` costs what it returns.
 */
function sizeArg(field: GraphQLField<unknown, unknown>, args: Record<string, unknown>, name: string): number | null {
  const given = numberArg(args[name]);
  if (given != null) return given;
  return args[name] === null ? numberArg(field.args.find((a) => a.name === name)?.defaultValue) : null;
}

function numberArg(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? Math.max(0, v) : null;
}

const introspectionCache = new WeakMap<GraphQLSchema, Map<string, number>>();

/**
 * Sizes of the introspection lists of this schema: `__Schema.types` is exact, the lists of a
 * type (fields, args, enum values…) are the schema's average, rounded up. GraphiQL's
 * introspection query then costs about what it does; a query that nests `fields { type { fields`
 * grows by that average at each level until the cost limit stops it.
 */
function introspectionSizes(schema: GraphQLSchema): Map<string, number> {
  let sizes = introspectionCache.get(schema);
  if (sizes) return sizes;
  const types = Object.values(schema.getTypeMap());
  const avg = (counts: number[]) => Math.max(1, Math.ceil(counts.reduce((a, b) => a + b, 0) / Math.max(1, counts.length)));
  const withFields = types.filter((t) => "getFields" in t);
  const fieldLists = withFields.map((t) => Object.keys((t as GraphQLObjectType).getFields()).length);
  const allFields = withFields.flatMap((t) => Object.values((t as GraphQLObjectType).getFields()));
  const argLists = allFields.map((f) => ("args" in f ? (f.args as unknown[]).length : 0));
  const enumValues = types.filter((t) => "getValues" in t).map((t) => (t as unknown as { getValues(): unknown[] }).getValues().length);
  const interfaces = types.filter((t) => "getInterfaces" in t).map((t) => (t as GraphQLObjectType).getInterfaces().length);
  const possible = types.filter(isAbstractType).map((t) => schema.getPossibleTypes(t).length);
  const directives = schema.getDirectives();
  sizes = new Map([
    ["__Schema.types", types.length],
    ["__Schema.directives", directives.length],
    ["__Type.fields", avg(fieldLists)],
    ["__Type.inputFields", avg(fieldLists)],
    ["__Type.interfaces", avg(interfaces)],
    ["__Type.possibleTypes", avg(possible)],
    ["__Type.enumValues", avg(enumValues)],
    ["__Field.args", avg(argLists)],
    ["__Directive.args", avg(directives.map((d) => d.args.length))],
    ["__Directive.locations", 1],
  ]);
  introspectionCache.set(schema, sizes);
  return sizes;
}
