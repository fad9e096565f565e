import { describe, expect, it } from "vitest";
import {
  MAX_QUERY_CHARS,
  parseSearchQuery,
  renderExcludedTsQuery,
  renderWantedTsQuery,
  SearchQueryError,
  toFtsQuery,
} from "../../src/search/fts-query.js";

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

describe("the PostgreSQL tsquery text", () => {
  it.each([
    ["donkey reading a book", "'donkey' & 'reading' & 'a' & 'book':*", null],
    ["donkey reading a book ", "'donkey' & 'reading' & 'a' & 'book'", null],
    ['"reading a book" donkey', "('reading' <-> 'a' <-> 'book') & 'donkey':*", null],
    ['"reading a book"*', "('reading' <-> 'a' <-> 'book':*)", null],
    ["fusil*", "'fusil':*", null],
    ["Fusilamíento ", "'Fusilamíento'", null],
    ["saint-denis", "('saint' <-> 'denis':*)", null],
    ["dog -cat", "'dog'", "'cat'"],
    ['dog -"black cat" -owl', "'dog'", "('black' <-> 'cat') | 'owl'"],
    ["dog & cat | !owl <-> (x) :* 'q' \\", "'dog' & 'cat' & 'owl' & 'x' & 'q'", null],
  ])("%j -> %s, excluding %s", (input, wanted, excluded) => {
    const terms = parseSearchQuery(input);
    expect(renderWantedTsQuery(terms)).toBe(wanted);
    expect(renderExcludedTsQuery(terms)).toBe(excluded);
  });

  it("quotes every lexeme: a quote is doubled and a backslash escaped, should a word ever hold one", () => {
    const terms = [{ words: ["it's", "a\\b"], prefix: "explicit" as const, negated: false }];
    expect(renderWantedTsQuery(terms)).toBe("('it''s' <-> 'a\\\\b':*)");
  });
});
