import { describe, expect, it } from "vitest";
import { MAX_QUERY_CHARS, SearchQueryError, toFtsQuery } from "../../src/search/fts-query.js";

describe("toFtsQuery", () => {
  it.each([
    ["donkey reading a book", '("donkey" "reading" "a" "book"*)'],
    ["donkey reading a book ", '("donkey" "reading" "a" "book")'],
    ["María Luisa", '("María" "Luisa"*)'],
    ['"reading a book" donkey', '("reading a book" "donkey"*)'],
    ['"reading a book"*', '"reading a book"*'],
    ["don*", '"don"*'],
    ["do", '"do"'],
    ["dog -cat", '"dog" NOT "cat"'],
    ['dog -"black cat"', '"dog" NOT "black cat"'],
    ["saint-denis", '"saint denis"*'],
    ["dog - cat", '("dog" "cat"*)'],
    ["NEAR(dog cat)", '("NEAR" "dog" "cat")'],
    ["dog OR cat AND NOT x", '("dog" "OR" "cat" "AND" "NOT" "x")'],
    ['title:dog ^cat +owl "unpaired', '("title dog" "cat" "owl" "unpaired"*)'],
  ])("%j -> %s", (input, expected) => {
    expect(toFtsQuery(input)).toBe(expected);
  });

  it.each([[""], ["   "], ['"'], ["*"], ["-"], ['""'], ["-dog"], ["!!! ??? ..."], ["x".repeat(MAX_QUERY_CHARS + 1)], [Array(40).fill("w").join(" ")]])(
    "refuses %j with a SearchQueryError",
    (input) => {
      expect(() => toFtsQuery(input)).toThrow(SearchQueryError);
    },
  );
});
