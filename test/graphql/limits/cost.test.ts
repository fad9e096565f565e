import { buildSchema, parse } from "graphql";
import { describe, expect, it } from "vitest";
import { type CostOptions, operationCost, UnanalysableOperationError } from "../../../src/graphql/limits/cost.js";
import { exceedsTokens } from "../../../src/graphql/limits/plugin.js";
import { schema as artdescSchema } from "../../../src/graphql/schema/index.js";
import { COST_OPTIONS, COUNT_COST_WEIGHT, SEARCH_COST_WEIGHT } from "../../../src/graphql/yoga.js";

const schema = buildSchema(`
  type Query {
    items(limit: Int = 100, q: String): [Item!]!
    item(id: ID!): Item
    page(first: Int, last: Int): ItemConnection!
    result(first: Int): PageResult!
    nodes(ids: [ID!]!): [Item]!
  }
  type Item { id: ID! name: String tags: [String!]! children: [Item!]! parent: Item }
  type ItemConnection { edges: [ItemEdge!]! pageInfo: PageInfo! totalCount: Int! }
  type ItemEdge { cursor: String! node: Item! }
  type PageInfo { hasNextPage: Boolean! }
  type Problem { message: String! }
  union PageResult = ItemConnection | Problem
`);

const options: CostOptions = { connectionDefaults: { "Query.page": 20 }, defaultConnectionSize: 50, unboundedListSize: 10 };
const cost = (query: string, variables: Record<string, unknown> = {}, operationName?: string) =>
  operationCost(schema, parse(query), { ...options, variables, operationName });

describe("operationCost", () => {
  it("counts each field once per object", () => {
    expect(cost(`{ item(id: "1") { id name parent { id } } }`)).toMatchObject({ cost: 5, rows: 0, aliases: 0 });
  });

  it("multiplies a list by its limit, or by the argument's default in the schema", () => {
    expect(cost(`{ items(limit: 500) { name } }`)).toMatchObject({ cost: 1 + 500, rows: 500 });
    expect(cost(`{ items { name } }`)).toMatchObject({ cost: 1 + 100, rows: 100 });
    expect(cost(`query($n: Int) { items(limit: $n) { name } }`, { n: 7 })).toMatchObject({ cost: 8, rows: 7 });
    expect(cost(`{ items(limit: 0) { name } }`)).toMatchObject({ cost: 1, rows: 0 });
  });

  it("multiplies nested lists along the path", () => {
    // 1 items + 500 children + 500*10 names.
    expect(cost(`{ items(limit: 500) { children { name } } }`)).toMatchObject({ cost: 1 + 500 + 5000, rows: 500 + 5000 });
  });

  it("sizes a connection's edges by first or last, else by its default page size", () => {
    const shape = `{ edges { node { id name } } pageInfo { hasNextPage } totalCount }`;
    // page, edges, 2 pageInfo fields, totalCount = 5; per edge: node, id, name = 3.
    expect(cost(`{ page(first: 5) ${shape} }`)).toMatchObject({ cost: 5 + 5 * 3, rows: 5 });
    expect(cost(`{ page(last: 40) ${shape} }`)).toMatchObject({ cost: 5 + 40 * 3, rows: 40 });
    expect(cost(`{ page ${shape} }`)).toMatchObject({ cost: 5 + 20 * 3, rows: 20 });
  });

  it("finds the connection inside a union of results, and the defaults of unlisted connections", () => {
    expect(cost(`{ result(first: 3) { ... on ItemConnection { edges { node { id } } } ... on Problem { message } } }`)).toMatchObject({
      cost: 1 + 1 + 3 * 2 + 1,
      rows: 3,
    });
    expect(cost(`{ result { ... on ItemConnection { edges { cursor } } } }`)).toMatchObject({ rows: 50 });
  });

  it("multiplies by the number of ids", () => {
    const ids = Array.from({ length: 30 }, (_, i) => String(i));
    expect(cost(`query($ids: [ID!]!) { nodes(ids: $ids) { id name } }`, { ids })).toMatchObject({ cost: 1 + 60, rows: 30 });
  });

  it("counts aliases, and fragments where they are spread", () => {
    const aliased = `{ ${Array.from({ length: 1000 }, (_, i) => `a${i}: items(limit: 500) { name }`).join(" ")} }`;
    expect(cost(aliased)).toMatchObject({ cost: 1000 * 501, rows: 500_000, aliases: 1000 });
    const fragments = `{ ...F ...F } fragment F on Query { x: items(limit: 2) { y: name } }`;
    // Each spread brings its aliases again; an alias inside a list counts once (the cost prices its repeats).
    expect(cost(fragments)).toMatchObject({ cost: 2 * 3, aliases: 2 * 2 });
    expect(cost(`{ items(limit: 21) { a: name b: id } }`)).toMatchObject({ rows: 21, aliases: 2 });
  });

  it("prices an explicit null size as the argument's default, as the resolver reads it", () => {
    const byDefault = cost(`{ items { name } }`);
    expect(byDefault).toMatchObject({ rows: 100 });
    expect(cost(`{ items(limit: null) { name } }`)).toEqual(byDefault);
    expect(cost(`query($l: Int) { items(limit: $l) { name } }`, { l: null })).toEqual(byDefault);
    expect(cost(`query($l: Int = null) { items(limit: $l) { name } }`)).toEqual(byDefault);
  });

  it("costs each fragment once, so nested spreads cannot blow the analysis up", () => {
    // 40 levels of two spreads each: 2^40 paths, analysed in linear time (the cost is an upper bound).
    const levels = 40;
    const defs = Array.from({ length: levels }, (_, i) => `fragment F${i} on Item { ...F${i + 1} ...F${i + 1} }`);
    defs.push(`fragment F${levels} on Item { name }`);
    const started = performance.now();
    const r = cost(`{ item(id: "1") { ...F0 } } ${defs.join(" ")}`);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(r.cost).toBe(1 + 2 ** levels);
  });

  it("picks the named operation, and refuses to guess among several", () => {
    const doc = `query A { item(id: "1") { id } } query B { items(limit: 3) { id } }`;
    expect(cost(doc, {}, "B")).toMatchObject({ cost: 4 });
    expect(() => cost(doc)).toThrow(UnanalysableOperationError);
    expect(() => cost(`query($n: Int!) { items(limit: $n) { id } }`, {})).toThrow(UnanalysableOperationError);
  });

  it("reports string and list arguments over their limits", () => {
    expect(cost(`query($q: String) { items(q: $q) { id } }`, { q: "x".repeat(1001) }).problems).toEqual([
      { coordinate: "Query.items(q:)", message: "Query.items(q:) takes at most 1000 characters (got 1001)" },
    ]);
    const ids = Array.from({ length: 101 }, (_, i) => String(i));
    expect(cost(`query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, { ids }).problems[0]?.message).toBe("Query.nodes(ids:) takes at most 100 items (got 101)");
  });

  it("measures depth in fields: fragments add no level, introspection none", () => {
    expect(cost(`{ item(id: "1") { id } }`).depth).toBe(2);
    expect(cost(`{ item(id: "1") { parent { parent { name } } } }`).depth).toBe(4);
    expect(cost(`{ __typename }`).depth).toBe(1);
    // The same selection through an inline fragment, a spread, and spreads of spreads.
    expect(cost(`{ item(id: "1") { ... on Item { parent { name } } } }`).depth).toBe(3);
    expect(cost(`{ item(id: "1") { ...A } } fragment A on Item { ...B } fragment B on Item { ... on Item { parent { name } } }`).depth).toBe(3);
    // The deepest path counts, whichever spread reaches it.
    expect(cost(`{ item(id: "1") { ...A parent { ...A } } } fragment A on Item { children { name } }`).depth).toBe(4);
    expect(cost(`{ page(first: 2) { edges { node { parent { id } } } } }`).depth).toBe(5);
    const introspection = cost(`{ __schema { types { fields { type { ofType { ofType { ofType { name } } } } } } } item(id: "1") { id } }`);
    expect(introspection.depth).toBe(2);
  });

  it("sizes introspection lists from the schema", () => {
    const r = cost(`{ __schema { types { name fields { name } } } }`);
    const types = Object.keys(schema.getTypeMap()).length;
    expect(r.rows).toBeGreaterThanOrEqual(types);
    expect(r.cost).toBeGreaterThan(types);
  });
});

describe("the real schema's search and counts", () => {
  it("price a search, its totalCount and a filtered count by what they cost, so one operation holds about ten, not twenty", () => {
    const heavy = (n: number, field: string) => parse(`{ ${Array.from({ length: n }, (_, i) => `a${i}: ${field}`).join(" ")} }`);
    const cost = (n: number, field: string) => operationCost(artdescSchema, heavy(n, field), COST_OPTIONS).cost;
    expect(cost(1, `search(query: "th* wo*", first: 1) { totalCount }`)).toBe(2 * SEARCH_COST_WEIGHT);
    expect(cost(20, `search(query: "th* wo*", first: 1) { totalCount }`)).toBeGreaterThan(20_000);
    expect(cost(9, `search(query: "th* wo*", first: 1) { totalCount }`)).toBeLessThanOrEqual(20_000);
    expect(cost(20, `search(query: "th* wo*", first: 1) { edges { cursor } }`)).toBeGreaterThan(20_000);
    expect(cost(1, "artworksConnection(first: 0) { totalCount }")).toBe(1 + COUNT_COST_WEIGHT);
    expect(cost(20, "artworksConnection(first: 0) { totalCount }")).toBeLessThanOrEqual(20_000);
    expect(cost(20, "artworksConnection(first: 0, filter: { hasImage: true }) { totalCount }")).toBeGreaterThan(10 * COUNT_COST_WEIGHT);
  });
});

describe("exceedsTokens", () => {
  it("stops counting past the limit and leaves syntax errors to the parser", () => {
    expect(exceedsTokens("{ a b c }", 5)).toBeNull();
    expect(exceedsTokens("{ a b c d e }", 5)).toBe(6);
    expect(exceedsTokens("{".repeat(100_000), 2000)).toBe(2001);
    expect(exceedsTokens('{ a(x: "unterminated', 100)).toBeNull();
  });
});
