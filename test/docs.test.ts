import { readdirSync, readFileSync } from "node:fs";
import { parse, validate } from "graphql";
import { describe, expect, it } from "vitest";
import { schema } from "../src/graphql/schema/index.js";

const root = new URL("..", import.meta.url);
const files = ["README.md", ...readdirSync(new URL("docs/", root)).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];

/** Every GraphQL example of the README and the guides (```graphql blocks, curl bodies) is valid against the real schema. */
describe.each(files)("GraphQL examples in %s", (file) => {
  const text = readFileSync(new URL(file, root), "utf8");
  const blocks = [
    ...[...text.matchAll(/```graphql\n([\s\S]*?)```/g)].map((m) => m[1]!),
    // The curl examples: the "query" string of each JSON body.
    ...[...text.matchAll(/"query":\s*("(?:[^"\\]|\\.)*")/g)].map((m) => JSON.parse(m[1]!) as string),
  ];
  it.each(blocks.map((b, i) => [i + 1, b] as const))("example %i is valid", (_i, block) => {
    const errors = validate(schema, parse(block)).map((e) => e.message);
    expect(errors).toEqual([]);
  });
  if (!blocks.length) it("has no GraphQL examples", () => expect(blocks).toEqual([]));
});
