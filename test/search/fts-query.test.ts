import { describe, expect, it } from "vitest";
import {
  MAX_PREFIX_TERMS,
  MAX_QUERY_CHARS,
  MAX_QUERY_WORDS,
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
    // A repeated term is searched once: it matches the same works.
    ["dog Dog DOG cat dog", '("dog" "cat" "dog"*)'],
    ["th* th* th* dog", '("th"* "dog"*)'],
    ["dog -cat -Cat -cat", '"dog" NOT "cat"'],
    ['"black cat" "Black Cat" dog', '("black cat" "dog"*)'],
    // Four stars taken: the star implied while typing is dropped, not refused.
    ["ab* cd* ef* gh* donk", '("ab"* "cd"* "ef"* "gh"* "donk")'],
  ])("%j -> %s", (input, expected) => {
    expect(toFtsQuery(input)).toBe(expected);
  });

  it.each([[""], ["   "], ['"'], ["*"], ["-"], ['""'], ["-dog"], ["!!! ??? ..."], ["x".repeat(MAX_QUERY_CHARS + 1)], [Array.from({ length: 40 }, (_, i) => `w${i}`).join(" ")]])(
    "refuses %j with a SearchQueryError",
    (input) => {
      expect(() => toFtsQuery(input)).toThrow(SearchQueryError);
    },
  );

  it("counts a phrase's words against the word limit, and a repeated term once", () => {
    const phrase = `"${Array.from({ length: MAX_QUERY_WORDS + 1 }, (_, i) => `w${i}`).join(" ")}"`;
    expect(() => parseSearchQuery(phrase)).toThrow(`too many words (${MAX_QUERY_WORDS + 1}; at most ${MAX_QUERY_WORDS})`);
    expect(parseSearchQuery(`${Array(MAX_QUERY_WORDS * 3).fill("goya").join(" ")} `)).toHaveLength(1);
  });

  it("refuses a star after fewer than two letters, which the prefix index cannot answer", () => {
    expect(() => parseSearchQuery("t* dog")).toThrow('A word ending in * needs at least 2 letters before the star ("t*")');
    expect(() => parseSearchQuery('dog "saint d"*')).toThrow(SearchQueryError);
    expect(() => parseSearchQuery("dog -t*")).toThrow(SearchQueryError);
    expect(toFtsQuery("to* dog")).toBe('("to"* "dog"*)');
  });

  it(`refuses more than ${MAX_PREFIX_TERMS} words ending in *`, () => {
    const stars = ["ab*", "cd*", "ef*", "gh*"];
    expect(parseSearchQuery(stars.join(" ")).filter((t) => t.prefix)).toHaveLength(MAX_PREFIX_TERMS);
    expect(() => parseSearchQuery([...stars, "ij*"].join(" "))).toThrow(`too many words ending in * (5; at most ${MAX_PREFIX_TERMS})`);
    expect(() => parseSearchQuery([...stars, "-ij*"].join(" "))).toThrow(SearchQueryError);
  });
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
