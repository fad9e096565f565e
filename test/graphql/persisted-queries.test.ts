import { describe, expect, it } from "vitest";
import { PersistedQueryStore } from "../../src/graphql/persisted-queries.js";

const bytesOf = (hash: string, query: string) => Buffer.byteLength(hash) + Buffer.byteLength(query);

describe("PersistedQueryStore", () => {
  it("keeps at most maxEntries documents, dropping the least recently used", () => {
    const store = new PersistedQueryStore({ maxEntries: 3, maxBytes: 1_000_000 });
    for (const n of [1, 2, 3]) store.set(`h${n}`, `{ q${n} }`);
    expect(store.get("h1")).toBe("{ q1 }"); // h1 is now the most recently used; h2 the least
    store.set("h4", "{ q4 }");
    expect(store.size).toBe(3);
    expect(store.get("h2")).toBeNull();
    expect(["h1", "h3", "h4"].map((h) => store.get(h))).toEqual(["{ q1 }", "{ q3 }", "{ q4 }"]);
  });

  it("keeps at most maxBytes, and never keeps a document larger than that", () => {
    const store = new PersistedQueryStore({ maxEntries: 100, maxBytes: 100 });
    store.set("a", "x".repeat(40));
    store.set("b", "y".repeat(40));
    expect(store.bytes).toBe(bytesOf("a", "x".repeat(40)) + bytesOf("b", "y".repeat(40)));
    store.set("c", "z".repeat(40)); // 123 bytes with a and b: a goes
    expect([store.get("a"), store.size, store.bytes]).toEqual([null, 2, 82]);
    store.set("huge", "w".repeat(200));
    expect([store.get("huge"), store.size, store.bytes]).toEqual([null, 2, 82]);
    // Multi-byte characters count as the bytes they take: 49 of them are 98 bytes, so c and b go.
    store.set("d", "é".repeat(49));
    expect([store.get("b"), store.get("c"), store.size, store.bytes]).toEqual([null, null, 1, 99]);
  });

  it("storing a hash again replaces it without counting it twice", () => {
    const store = new PersistedQueryStore({ maxEntries: 2, maxBytes: 1000 });
    store.set("a", "{ one }");
    store.set("a", "{ one }");
    store.set("b", "{ two }");
    expect([store.size, store.bytes, store.get("a")]).toEqual([2, bytesOf("a", "{ one }") + bytesOf("b", "{ two }"), "{ one }"]);
  });

  it("stays within both bounds under a flood of distinct documents", () => {
    const store = new PersistedQueryStore({ maxEntries: 50, maxBytes: 5000 });
    for (let i = 0; i < 20_000; i++) {
      store.set(`hash-${i}`, `{ f${i} ${"#".repeat(i % 300)}\n}`);
      expect(store.size).toBeLessThanOrEqual(50);
      expect(store.bytes).toBeLessThanOrEqual(5000);
    }
    expect(store.get("hash-19999")).not.toBeNull();
    expect(store.get("hash-0")).toBeNull();
  });
});
