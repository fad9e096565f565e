import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ClientWorld, get, type HttpAnswer, post, startClientWorld } from "./fixture.js";

/**
 * Automatic persisted queries over raw HTTP, as a hostile client could send them: unknown and
 * forged hashes, a flood of documents against a small store (GRAPHQL_APQ_MAX_ENTRIES=3,
 * GRAPHQL_APQ_MAX_BYTES=10000), and persisted documents that the request limits refuse.
 */
let world: ClientWorld;
beforeAll(async () => {
  world = await startClientWorld({ GRAPHQL_APQ_MAX_ENTRIES: "3", GRAPHQL_APQ_MAX_BYTES: "10000" });
});
afterAll(() => world?.close());

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
const persisted = (hash: string) => ({ persistedQuery: { version: 1, sha256Hash: hash } });
/** A distinct, valid document per n. */
const doc = (n: number, padding = 0) => `query Q${n} { stats { artworks } }${padding ? `\n#${"x".repeat(padding)}` : ""}`;

/** Registers a document with its hash (the second request of the APQ exchange). */
async function register(query: string): Promise<HttpAnswer> {
  return post(world.url, { query, extensions: persisted(sha256(query)) });
}
/** Asks by hash alone, by POST or GET. */
async function byHash(query: string, method: "POST" | "GET" = "POST"): Promise<HttpAnswer> {
  return (method === "POST" ? post : get)(world.url, { extensions: persisted(sha256(query)) });
}
const isHit = (r: HttpAnswer) => r.status === 200 && r.body.data?.stats?.artworks === world.active.length;
const code = (r: HttpAnswer) => r.body.errors?.[0]?.extensions?.code;

describe("the APQ exchange", () => {
  it("a hash alone is 404 PERSISTED_QUERY_NOT_FOUND until the query came with it; then POST and GET both run it", async () => {
    const query = doc(1);
    for (const method of ["POST", "GET"] as const) {
      const miss = await byHash(query, method);
      expect([miss.status, code(miss), miss.body.errors?.[0]?.message]).toEqual([404, "PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound"]);
      expect(miss.body).not.toHaveProperty("data");
    }
    expect(isHit(await register(query))).toBe(true);
    expect(isHit(await byHash(query, "POST"))).toBe(true);
    expect(isHit(await byHash(query, "GET"))).toBe(true);
  });

  it.each([
    ["the hash of another document", sha256("{ stats { artworks } }")],
    ["the right hash in capitals", sha256(doc(2)).toUpperCase()],
    ["a short hash", sha256(doc(2)).slice(0, 16)],
    ["not hex at all", "../../etc/passwd"],
  ])("a query sent with %s is 400 PERSISTED_QUERY_MISMATCH, runs nothing and stores nothing", async (_name, hash) => {
    const r = await post(world.url, { query: doc(2), extensions: persisted(hash) });
    expect([r.status, code(r)]).toEqual([400, "PERSISTED_QUERY_MISMATCH"]);
    expect(r.body).not.toHaveProperty("data");
    const after = await post(world.url, { extensions: persisted(hash) });
    expect(after.status).toBe(404);
  });

  it("an extension that is not APQ's is ignored, and a request with neither query nor hash is a 400", async () => {
    const other = await post(world.url, { query: doc(3), extensions: { persistedQuery: { version: 2, sha256Hash: "x" } } });
    expect(isHit(other)).toBe(true);
    const empty = await post(world.url, { extensions: { persistedQuery: { version: 2, sha256Hash: sha256(doc(3)) } } });
    expect(empty.status).toBe(400);
  });
});

describe("the store is bounded", () => {
  it("by entries: least recently used first (GRAPHQL_APQ_MAX_ENTRIES=3)", async () => {
    const [a, b, c, d, e] = [10, 11, 12, 13, 14].map((n) => doc(n));
    for (const q of [a, b, c]) expect(isHit(await register(q!))).toBe(true);
    expect(isHit(await byHash(a!))).toBe(true); // a is now the most recently used
    expect(isHit(await register(d!))).toBe(true); // b goes
    expect((await byHash(b!)).status).toBe(404);
    expect(isHit(await register(e!))).toBe(true); // c goes
    expect((await byHash(c!)).status).toBe(404);
    for (const q of [a, d, e]) expect(isHit(await byHash(q!))).toBe(true);
  });

  it("by bytes (GRAPHQL_APQ_MAX_BYTES=10000): a large document pushes others out, a larger one still runs but is not kept", async () => {
    const big1 = doc(20, 6000);
    const big2 = doc(21, 6000);
    expect(isHit(await register(big1))).toBe(true);
    expect(isHit(await register(big2))).toBe(true);
    expect((await byHash(big1)).status).toBe(404);
    expect(isHit(await byHash(big2))).toBe(true);
    const huge = doc(22, 20_000);
    expect(isHit(await register(huge))).toBe(true);
    expect((await byHash(huge)).status).toBe(404);
    expect(isHit(await byHash(big2))).toBe(true);
  });

  it("a flood of 300 documents leaves only the newest 3 answerable by hash", async () => {
    const flood = Array.from({ length: 300 }, (_, i) => doc(1000 + i));
    for (const q of flood) expect((await register(q)).status).toBe(200);
    const answered = [];
    for (const q of flood.slice(-10)) answered.push((await byHash(q)).status);
    expect(answered).toEqual([404, 404, 404, 404, 404, 404, 404, 200, 200, 200]);
    expect((await byHash(flood[0]!)).status).toBe(404);
  });
});

describe("the request limits apply to persisted documents", () => {
  it.each([
    ["too deep", `{ artwork(id: "Q7001") { ... on Artwork { ${"currentDescription { artwork { ".repeat(8)}id${" } }".repeat(8)} } } }`, "DEPTH_LIMIT"],
    ["too costly", `{ ${"...F ".repeat(41)} } fragment F on Query { artworks(limit: 500) { description } }`, "COST_LIMIT"],
    ["too many tokens", `{ ${"a ".repeat(2001)}}`, "TOKEN_LIMIT"],
  ])("a %s document is refused when registered and again by its hash alone", async (_name, query, limit) => {
    const registered = await register(query);
    expect([registered.status, registered.body.errors?.some((e) => e.extensions?.code === limit)]).toEqual([400, true]);
    for (const method of ["POST", "GET"] as const) {
      const again = await byHash(query, method);
      expect([again.status, again.body.errors?.some((e) => e.extensions?.code === limit)]).toEqual([400, true]);
      expect(again.body).not.toHaveProperty("data");
    }
  });
});
