import { auditServer } from "graphql-http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ClientWorld, get, type HttpAnswer, post, startClientWorld } from "./fixture.js";

/**
 * GraphQL over HTTP (https://graphql.github.io/graphql-over-http/draft/): graphql-http's server
 * audit finds nothing to fault or to warn about, and every request limit refuses as a request
 * error: 4xx with a code under `application/graphql-response+json`, 200 under
 * `application/json`, no `data`, and a message that names the limit and its setting.
 */
let world: ClientWorld;
beforeAll(async () => {
  world = await startClientWorld();
});
afterAll(() => world?.close());

describe("graphql-http's server audit", () => {
  it("passes every audit with no error, warning or notice", async () => {
    const results = await auditServer({ url: world.url });
    expect(results.length).toBeGreaterThan(50);
    const faults = results.filter((r) => r.status !== "ok").map((r) => `${r.status}: ${r.name}${"reason" in r ? ` (${r.reason})` : ""}`);
    expect(faults).toEqual([]);
  });
});

/**
 * `artwork { currentDescription { artwork { … id } } }`: one object per level, so only the depth
 * is large; with `fragments`, every level sits in an inline fragment too.
 */
function chain(depth: number, fragments = false): string {
  let inner = "id";
  for (let level = depth - 1; level >= 2; level--) {
    const field = level % 2 === 0 ? "currentDescription" : "artwork";
    inner = fragments ? `${field} { ... on ${field === "artwork" ? "Artwork" : "Description"} { ${inner} } }` : `${field} { ${inner} }`;
  }
  return `{ artwork(id: "Q7001") { ... on Artwork { ${inner} } } }`;
}
const aliases = (n: number, field: string) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: ${field}`).join(" ")} }`;

interface Refused {
  name: string;
  payload: { query: string; variables?: Record<string, unknown> };
  code: string;
  message: RegExp;
}

const REFUSED: Refused[] = [
  { name: "16 fields deep", payload: { query: chain(16) }, code: "DEPTH_LIMIT", message: /nests fields 16 deep; at most 15 are allowed \(GRAPHQL_MAX_DEPTH\)/ },
  { name: "16 fields deep, each level in a fragment", payload: { query: chain(16, true) }, code: "DEPTH_LIMIT", message: /nests fields 16 deep; at most 15 are allowed/ },
  {
    name: "41 fragments of 500 texts",
    payload: { query: `{ ${"...F ".repeat(41)} } fragment F on Query { artworks(limit: 500) { description } }` },
    code: "COST_LIMIT",
    message: /costs \d+; at most 20000 is allowed \(GRAPHQL_MAX_COST\)/,
  },
  {
    name: "nested lists",
    payload: { query: `{ artworks(limit: 500) { descriptions { artwork { descriptions { text } } } } }` },
    code: "ROW_LIMIT",
    message: /rows; at most 10000 are allowed \(GRAPHQL_MAX_ROWS\)/,
  },
  { name: "21 aliases", payload: { query: aliases(21, "stats { artworks }") }, code: "ALIAS_LIMIT", message: /has 21 aliases; at most 20 are allowed \(GRAPHQL_MAX_ALIASES\)/ },
  { name: "2,003 tokens", payload: { query: `{ ${"a ".repeat(2001)}}` }, code: "TOKEN_LIMIT", message: /more than 2000 tokens \(GRAPHQL_MAX_TOKENS\)/ },
  {
    name: "101 ids",
    payload: { query: "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", variables: { ids: Array.from({ length: 101 }, (_, i) => String(i)) } },
    code: "BAD_USER_INPUT",
    message: /takes at most 100 items \(got 101\)/,
  },
];

describe("request limits refuse as request errors", () => {
  it.each(REFUSED)("$name: 400 with $code under application/graphql-response+json, POST and GET", async ({ payload, code, message }) => {
    for (const answer of [await post(world.url, payload), await get(world.url, payload)]) {
      expectRefusal(answer, code, message);
      expect(answer.status).toBe(400);
      expect(answer.contentType).toMatch(/^application\/graphql-response\+json/);
    }
  });

  it.each(REFUSED)("$name: 200 with $code under application/json (the legacy media type)", async ({ payload, code, message }) => {
    const answer = await post(world.url, payload, "application/json");
    expectRefusal(answer, code, message);
    expect(answer.status).toBe(200);
    expect(answer.contentType).toMatch(/^application\/json/);
  });

  it("the default depth lets 15 fields through, fragments or not", async () => {
    for (const query of [chain(15), chain(15, true)]) {
      const fits = await post(world.url, { query });
      expect(fits.status).toBe(200);
      expect(fits.body.errors).toBeUndefined();
      expect(JSON.stringify(fits.body.data).match(/currentDescription/g)).toHaveLength(7);
    }
  });

  it("bad input to a connection is a field error: 200, data null, the argument named", async () => {
    const r = await post(world.url, { query: `{ search(query: "donkey", after: "nope") { edges { cursor } } }` });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      data: null,
      errors: [{ message: '"nope" is not a cursor from this search', locations: [{ line: 1, column: 3 }], path: ["search"], extensions: { code: "BAD_USER_INPUT", argument: "after" } }],
    });
  });

  it("a cursor from another search (other words or filters) is refused, naming the argument; its own search pages on", async () => {
    const first = await post(world.url, { query: `{ search(query: "donkey", first: 1) { edges { cursor } } }` });
    const cursor = first.body.data.search.edges[0].cursor as string;
    const own = await post(world.url, { query: `query($c: String) { search(query: "donkey", first: 1, after: $c) { edges { cursor } } }`, variables: { c: cursor } });
    expect(own.body.errors).toBeUndefined();
    for (const other of ['search(query: "dog", first: 1, after: $c)', 'search(query: "donkey", filter: { creator: "Q5432" }, first: 1, after: $c)']) {
      const r = await post(world.url, { query: `query($c: String) { ${other} { edges { cursor } } }`, variables: { c: cursor } });
      expect(r.body.errors?.[0], other).toMatchObject({ message: expect.stringMatching(/^this cursor is from another search/), extensions: { code: "BAD_USER_INPUT", argument: "after" } });
    }
  });

  it.each([
    ["artworksConnection", "artworksConnection", "edges { cursor }"],
    ["search", 'search(query: "donkey"', "edges { cursor }"],
    ["jobs", "jobs", "edges { cursor }"],
    ["reviewQueue", "reviewQueue", "... on QueryReviewQueueConnection { edges { cursor } }"],
    ["syncRunsConnection", "syncRunsConnection", "edges { cursor }"],
  ])("%s: first with last, after with before, a size and a cursor of opposite directions, or a negative first is refused, naming the argument", async (_name, field, selection) => {
    const call = (args: string) => (field.endsWith("\"") ? `{ ${field}, ${args}) { ${selection} } }` : `{ ${field}(${args}) { ${selection} } }`);
    for (const [args, argument, message] of [
      ["first: 5, last: 2", "last", /^first and last cannot be given together/],
      ['after: "x", before: "y"', "before", /^after and before cannot be given together/],
      ["first: -1", "first", /^first must be (between 0 and \d+ \(got -1\)|a whole number of 0 or more)$/],
      ['first: 2, before: "y"', "before", /^first goes with after, last with before/],
      ['last: 2, after: "x"', "after", /^first goes with after, last with before/],
    ] as const) {
      const r = await post(world.url, { query: call(args) });
      expect(r.status, `${field} ${args}`).toBe(200);
      const error = r.body.errors?.[0];
      expect(error?.extensions, `${field} ${args}: ${JSON.stringify(r.body)}`).toMatchObject({ code: "BAD_USER_INPUT", argument });
      expect(error?.message).toMatch(message);
    }
  });
});

function expectRefusal(answer: HttpAnswer, code: string, message: RegExp) {
  expect(answer.body).not.toHaveProperty("data");
  const errors = answer.body.errors ?? [];
  const mine = errors.find((e) => e.extensions?.code === code);
  expect(mine, JSON.stringify(errors)).toBeDefined();
  expect(mine!.message).toMatch(message);
  for (const e of errors) {
    expect(e.message).not.toMatch(/Syntax Error/);
    expect(e.extensions).not.toHaveProperty("http");
  }
}
