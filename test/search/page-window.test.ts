import { describe, expect, it } from "vitest";
import { pageWindow } from "../../src/graphql/schema/search.js";

const never = () => {
  throw new Error("the total was not needed");
};
const window = (args: Partial<Parameters<typeof pageWindow>[0]>) =>
  pageWindow({ after: null, before: null, first: null, last: null, total: never, ...args });

// Rows 0..n-1; cursors are row numbers. Relay's algorithm: after/before cut, then first, then last.
describe("pageWindow", () => {
  it("pages forward without counting", () => {
    expect(window({})).toEqual({ offset: 0, limit: 20 });
    expect(window({ first: 5 })).toEqual({ offset: 0, limit: 5 });
    expect(window({ first: 5, after: 4 })).toEqual({ offset: 5, limit: 5 });
    expect(window({ after: 4 })).toEqual({ offset: 5, limit: 20 });
    expect(window({ first: 0 })).toEqual({ offset: 0, limit: 0 });
  });

  it("pages backward from a cursor, or from the end", () => {
    const total = () => 42;
    expect(window({ last: 5, before: 12, total })).toEqual({ offset: 7, limit: 5 });
    expect(window({ last: 5, before: 3, total })).toEqual({ offset: 0, limit: 3 });
    expect(window({ last: 5, total })).toEqual({ offset: 37, limit: 5 });
    expect(window({ last: 5, total: () => 2 })).toEqual({ offset: 0, limit: 2 });
    expect(window({ last: 5, after: 40, total })).toEqual({ offset: 41, limit: 1 });
  });

  it("gives the default page just before `before`, and ignores a before past the end", () => {
    const total = () => 42;
    expect(window({ before: 3, total })).toEqual({ offset: 0, limit: 3 });
    expect(window({ before: 30, total })).toEqual({ offset: 10, limit: 20 });
    expect(window({ before: 100, last: 5, total })).toEqual({ offset: 37, limit: 5 });
    expect(window({ before: 100, total })).toEqual({ offset: 22, limit: 20 });
  });

  it("applies first, then last, between after and before", () => {
    expect(window({ first: 10, last: 3, total: () => 42 })).toEqual({ offset: 7, limit: 3 });
    expect(window({ first: 100, last: 2, total: () => 30 })).toEqual({ offset: 28, limit: 2 });
    expect(window({ after: 2, before: 9, first: 4, last: 2, total: () => 42 })).toEqual({ offset: 5, limit: 2 });
    expect(window({ after: 9, before: 3, total: () => 42 })).toEqual({ offset: 10, limit: 0 });
  });
});
