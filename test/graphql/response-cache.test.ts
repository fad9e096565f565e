import Database from "better-sqlite3";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { CLOCK_DEPENDENT, ResponseCacheStore } from "../../src/graphql/response-cache.js";
import { schema } from "../../src/graphql/schema/index.js";
import { createGraphqlApp, type Yoga } from "../../src/graphql/yoga.js";
import { createTestDb, onPostgres, type TestDb } from "../support/db.js";
import { makeArtwork, makeGoya } from "../support/factories.js";

describe("ResponseCacheStore", () => {
  const result = (n: number) => ({ data: { n, pad: "x".repeat(100) } });
  let version = 1;
  const store = (maxEntries = 3, maxBytes = 10_000, minAsks = 1) => new ResponseCacheStore({ maxEntries, maxBytes, minAsks }, () => version);
  beforeEach(() => {
    version = 1;
  });

  it("keeps answers under keys that name the database version, until the version moves", () => {
    const s = store();
    const key = s.key({ documentString: "{ a }" });
    s.set(key, result(1));
    expect(s.get(key)).toEqual(result(1));
    // Same request, variables in another order: same key.
    expect(s.key({ documentString: "{ a }", variableValues: { x: 1, y: 2 } })).toBe(s.key({ documentString: "{ a }", variableValues: { y: 2, x: 1 } }));
    expect(s.key({ documentString: "{ a }", sessionId: "authorized" })).not.toBe(key);
    version = 2;
    expect(s.get(key)).toBeUndefined();
    expect(s.size).toBe(0);
    expect(s.key({ documentString: "{ a }" })).not.toBe(key);
  });

  it("keys variables nested deeper than any input apart, and never keeps their answer", () => {
    const s = store();
    let deep: unknown = "x";
    for (let i = 0; i < 50_000; i++) deep = [deep];
    const key = s.key({ documentString: "{ a }", variableValues: { deep } });
    expect(s.key({ documentString: "{ a }", variableValues: { deep } })).not.toBe(key);
    s.set(key, result(1));
    expect(s.size).toBe(0);
    // Nesting an input of the schema could have still makes one key.
    const shallow = { filter: { creator: { in: [["Q5432"]] } } };
    expect(s.key({ documentString: "{ a }", variableValues: shallow })).toBe(s.key({ documentString: "{ a }", variableValues: structuredClone(shallow) }));
  });

  it("does not store an answer whose request began before the version moved", () => {
    const s = store();
    const key = s.key({ documentString: "{ a }" });
    version = 2; // a commit while the request ran
    s.set(key, result(1));
    expect(s.size).toBe(0);
    // Nor a key it never handed out (a client's ETag, say).
    s.set("made-up", result(1));
    expect(s.size).toBe(0);
  });

  it("keeps an answer from the minAsks-th ask of its request under one version", () => {
    const s = store(3, 10_000, 2);
    const once = s.key({ documentString: "{ once }" });
    s.set(once, result(1));
    expect(s.size).toBe(0);
    const first = s.key({ documentString: "{ a }" });
    s.set(first, result(1));
    expect(s.get(first)).toBeUndefined();
    const second = s.key({ documentString: "{ a }" });
    expect(second).toBe(first);
    s.set(second, result(1));
    expect(s.get(second)).toEqual(result(1));
    expect(s.size).toBe(1);
    // After a commit the count starts again: the first ask under the new version is not kept.
    version = 2;
    const moved = s.key({ documentString: "{ b }" });
    s.key({ documentString: "{ b }" });
    s.set(moved, result(2));
    expect(s.get(moved)).toEqual(result(2));
    const after = s.key({ documentString: "{ a }" });
    s.set(after, result(3));
    expect(s.get(after)).toBeUndefined();
  });

  it("is bounded in entries and bytes, least recently used first, and keeps no answer larger than the bound", () => {
    const s = store(3, 600);
    const keys = [1, 2, 3, 4].map((n) => s.key({ documentString: `{ a${n} }` }));
    for (const [i, k] of keys.slice(0, 3).entries()) s.set(k, result(i));
    s.get(keys[0]!); // the first is now the most recently used
    s.set(keys[3]!, result(3));
    expect(s.size).toBe(3);
    expect(s.get(keys[1]!)).toBeUndefined();
    expect(s.get(keys[0]!)).toBeDefined();
    expect(s.bytes).toBeLessThanOrEqual(600);
    for (let n = 0; n < 10; n++) {
      const k = s.key({ documentString: `{ b${n} }` });
      s.set(k, result(n));
    }
    expect(s.bytes).toBeLessThanOrEqual(600);
    const big = s.key({ documentString: "{ big }" });
    s.set(big, { data: { pad: "x".repeat(1000) } });
    expect(s.get(big)).toBeUndefined();
  });

  it("over a version read as a promise (PostgreSQL), a lookup right after a store finds what it stored", async () => {
    // The store's read of the version comes back after the lookup's, as two queries on a pool may.
    const delays = [0, 30, 1];
    const s = new ResponseCacheStore({ maxEntries: 3, maxBytes: 10_000, minAsks: 1 }, () => new Promise<number>((r) => setTimeout(() => r(version), delays.shift() ?? 0)));
    const key = await s.key({ documentString: "{ a }" });
    // The response cache plugin does not wait for a store; the client asks again at once.
    void s.set(key, result(1));
    expect(await s.get(key)).toEqual(result(1));
  });

  it("over a version read as a promise, the next ask counted while the first answer is stored does not make that answer kept", async () => {
    // The first answer's store reads the version slowly; the client's second ask is counted meanwhile.
    const delays = [0, 30, 0];
    const s = new ResponseCacheStore({ maxEntries: 3, maxBytes: 10_000, minAsks: 2 }, () => new Promise<number>((r) => setTimeout(() => r(version), delays.shift() ?? 0)));
    const first = await s.key({ documentString: "{ a }" });
    const storing = s.set(first, result(1));
    const second = await s.key({ documentString: "{ a }" });
    expect(second).toBe(first);
    await storing;
    // Asked twice, answered once: the second ask runs (minAsks 2), and its answer is the one kept.
    expect(await s.get(second)).toBeUndefined();
    await s.set(second, result(2));
    expect(await s.get(second)).toEqual(result(2));
  });

  it("a store whose version read fails is reported, not thrown where nobody waits for it", async () => {
    const failures: unknown[] = [];
    let fail = false;
    const s = new ResponseCacheStore(
      { maxEntries: 3, maxBytes: 10_000, minAsks: 1 },
      () => (fail ? Promise.reject(new Error("connection lost")) : Promise.resolve(version)),
      (err) => failures.push(err),
    );
    const key = await s.key({ documentString: "{ a }" });
    fail = true;
    await s.set(key, result(1));
    expect(failures).toEqual([new Error("connection lost")]);
    fail = false;
    expect(await s.get(key)).toBeUndefined();
  });
});

it("names only fields and types that exist in the schema as clock-dependent", () => {
  for (const coordinate of CLOCK_DEPENDENT) {
    const [typeName, field] = coordinate.split(".");
    const type = schema.getType(typeName!);
    expect(type, coordinate).toBeDefined();
    if (field) expect((type as { getFields(): Record<string, unknown> }).getFields()[field], coordinate).toBeDefined();
  }
});

describe("through Yoga", () => {
  const TOKEN = "t".repeat(32);
  const LIST = '{ artworks(creator: "Goya", limit: 100) { qid title description } }';
  let t: TestDb;
  let yoga: Yoga;
  let goyaId: number;

  beforeAll(async () => {
    t = await createTestDb({ countQueries: true });
    goyaId = (await makeGoya(t.db)).id;
    for (let i = 0; i < 3; i++) await makeArtwork(t.db, { creators: [{ id: goyaId }], description: `Text ${i}` });
    // Every answer kept from its first ask, so that each "never keeps" below can fail at the second.
    yoga = createGraphqlApp({ db: t.db, config: loadConfig({ LOG_LEVEL: "silent", IMAGE_DIR: `${t.dir}/images`, API_TOKEN: TOKEN, GRAPHQL_RESPONSE_CACHE_MIN_ASKS: "1" }) });
  });
  afterAll(() => t.close());

  /** The answer, its ETag, and how many SQL statements it cost. */
  async function ask(query: string, variables: Record<string, unknown> = {}, headers: Record<string, string> = {}, app = yoga) {
    t.queries.length = 0;
    const res = await app.fetch("http://local/graphql", {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify({ query, variables }),
    });
    // On PostgreSQL the database version is itself a query (src/store/data-version.ts): not counted here.
    return { status: res.status, etag: res.headers.get("etag"), body: await res.text(), sql: t.queries.filter((q) => !q.includes("artdesc_data_version")).length };
  }

  // SQLite-only: "another connection" writes the file through better-sqlite3 (on PostgreSQL,
  // test/store/postgres-data-version.test.ts commits from another client and a raw connection).
  it.skipIf(onPostgres)("answers a repeated query from the cache with the same body, and runs it again after any commit", async () => {
    const first = await ask(LIST);
    expect(first.sql).toBeGreaterThan(0);
    const again = await ask(LIST);
    expect(again.sql).toBe(0);
    expect(again.body).toBe(first.body);
    expect(again.etag).toBe(first.etag);
    // A commit through this process's own Prisma client.
    await t.db.artwork.updateMany({ where: { creators: { some: { creatorId: goyaId } } }, data: { title: "Renamed" } });
    const after = await ask(LIST);
    expect(after.sql).toBeGreaterThan(0);
    expect(after.body).toContain("Renamed");
    expect(after.etag).not.toBe(first.etag);
    // A commit by another connection (as another process would make).
    const other = new Database(t.file);
    other.prepare("UPDATE Artwork SET title = 'Retitled elsewhere'").run();
    other.close();
    expect((await ask(LIST)).body).toContain("Retitled elsewhere");
  });

  /** A query over GET, where conditional requests belong. */
  async function askGet(query: string, headers: Record<string, string> = {}) {
    const res = await yoga.fetch(`http://local/graphql?query=${encodeURIComponent(query)}`, { headers: { accept: "application/graphql-response+json", ...headers } });
    return { status: res.status, etag: res.headers.get("etag"), body: await res.text() };
  }

  it("answers 304 over GET to the ETag of a kept answer, never to one made before a commit", async () => {
    const first = await askGet(LIST);
    // A quoted entity tag (RFC 9110), as a proxy in front expects one.
    expect(first.etag).toMatch(/^"[^"]+"$/);
    const revalidated = await askGet(LIST, { "if-none-match": first.etag! });
    expect(revalidated.status).toBe(304);
    expect(revalidated.etag).toBe(first.etag);
    // As a compressing proxy passes it on (weakened), and as clients of the bare tag sent it.
    expect((await askGet(LIST, { "if-none-match": `W/${first.etag!}` })).status).toBe(304);
    expect((await askGet(LIST, { "if-none-match": first.etag!.slice(1, -1) })).status).toBe(304);
    await makeArtwork(t.db, { creators: [{ id: goyaId }] });
    const after = await askGet(LIST, { "if-none-match": first.etag! });
    expect(after.status).toBe(200);
    expect(JSON.parse(after.body).data.artworks).toHaveLength(4);
  });

  it("answers 304 only to this request's own tag: another query's kept answer, or the authorized one's, gets 200", async () => {
    const OTHER = "{ stats { artworks } }";
    for (let i = 0; i < 2; i++) await askGet(OTHER);
    const other = await askGet(OTHER);
    expect(other.etag).toMatch(/^"[^"]+"$/);
    const mine = await askGet(LIST);
    expect(mine.etag).not.toBe(other.etag);
    const crossed = await askGet(LIST, { "if-none-match": other.etag! });
    expect(crossed.status).toBe(200);
    expect(JSON.parse(crossed.body).data.artworks.length).toBeGreaterThan(0);
    // The authorized answer's tag, sent anonymously.
    const authorized = await askGet(LIST, { authorization: `Bearer ${TOKEN}` });
    expect(authorized.etag).not.toBe(mine.etag);
    expect((await askGet(LIST, { "if-none-match": authorized.etag! })).status).toBe(200);
    // A list of tags that names this one.
    expect((await askGet(LIST, { "if-none-match": `${other.etag!}, ${mine.etag!}` })).status).toBe(304);
  });

  it("never answers 304 to a POST: a mutation sent with the ETag of a kept answer still runs", async () => {
    const kept = await ask(LIST);
    expect((await ask(LIST)).sql).toBe(0);
    // The same query over POST with its ETag: answered in full, not 304.
    const conditional = await ask(LIST, {}, { "if-none-match": kept.etag! });
    expect(conditional.status).toBe(200);
    expect(conditional.body).toBe(kept.body);
    const [artwork] = await t.db.artwork.findMany({ take: 1 });
    const set = "mutation($id: ID!, $text: String!) { setDescription(id: $id, text: $text) { ... on Description { id text } } }";
    for (const etag of [kept.etag!, `W/${kept.etag}`, "*"]) {
      const r = await ask(set, { id: artwork!.qid, text: `Sent with ${etag}.` }, { authorization: `Bearer ${TOKEN}`, "if-none-match": etag });
      expect(r.status, etag).toBe(200);
      expect(JSON.parse(r.body).data.setDescription.text).toBe(`Sent with ${etag}.`);
    }
    expect(await t.db.description.count({ where: { artworkId: artwork!.id, text: { startsWith: "Sent with" } } })).toBe(3);
  });

  it("never keeps an answer with errors, a partial answer included", async () => {
    const refused = '{ artworks(limit: 100000) { title } }';
    expect(JSON.parse((await ask(refused)).body).errors).toBeDefined();
    // A damaged row makes one nullable field fail: data for the rest, and an error.
    const run = await t.db.syncRun.create({ data: { creators: "[not json", status: "SUCCEEDED", finishedAt: new Date() } });
    const partial = "{ stats { artworks } lastSyncRun { number creators } }";
    const first = await ask(partial);
    const body = JSON.parse(first.body);
    expect(body.errors).toHaveLength(1);
    expect(body.data.stats.artworks).toBeGreaterThan(0);
    expect(body.data.lastSyncRun).toBeNull();
    expect((await ask(partial)).sql).toBeGreaterThan(0);
    await t.db.syncRun.delete({ where: { id: run.id } });
  });

  it("answers a request whose undeclared variables nest 20,000 deep (the key walk used to overflow the stack: 500)", async () => {
    const deep = `${"[".repeat(20_000)}1${"]".repeat(20_000)}`;
    const res = await yoga.fetch("http://local/graphql", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: `{"query":"{ stats { artworks } }","variables":{"x":${deep}}}`,
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(await res.text()).data.stats.artworks).toBeGreaterThan(0);
  });

  it("never keeps a mutation's answer", async () => {
    const [artwork] = await t.db.artwork.findMany({ take: 1 });
    const set = "mutation($id: ID!, $text: String!) { setDescription(id: $id, text: $text) { ... on Description { id text } ... on Error { message } } }";
    const auth = { authorization: `Bearer ${TOKEN}` };
    const a = JSON.parse((await ask(set, { id: artwork!.qid, text: "Same text twice." }, auth)).body);
    const b = JSON.parse((await ask(set, { id: artwork!.qid, text: "Same text twice." }, auth)).body);
    expect(a.data.setDescription.id).toBeDefined();
    expect(b.data.setDescription.id).not.toBe(a.data.setDescription.id);
    expect(await t.db.description.count({ where: { artworkId: artwork!.id, text: "Same text twice." } })).toBe(2);
    // An unauthorized attempt is answered as such every time, then the authorized one still runs.
    const denied = JSON.parse((await ask(set, { id: artwork!.qid, text: "Third." })).body);
    expect(denied.data.setDescription.message).toBeDefined();
    const c = JSON.parse((await ask(set, { id: artwork!.qid, text: "Third." }, auth)).body);
    expect(c.data.setDescription.text).toBe("Third.");
  });

  it("keeps the answers of authorized and anonymous callers apart", async () => {
    const q = "{ artworks(limit: 1) { qid } }";
    const anonymous = await ask(q);
    expect((await ask(q)).sql).toBe(0);
    // A wrong token is anonymous; the right one is another session, run on its own.
    expect((await ask(q, {}, { authorization: "Bearer wrong" })).sql).toBe(0);
    const authorized = await ask(q, {}, { authorization: `Bearer ${TOKEN}` });
    expect(authorized.sql).toBeGreaterThan(0);
    expect(authorized.etag).not.toBe(anonymous.etag);
    expect((await ask(q, {}, { authorization: `Bearer ${TOKEN}` })).sql).toBe(0);
  });

  it("never keeps answers that depend on the clock", async () => {
    await t.db.heartbeat.create({
      data: { id: "w1", role: "worker", pid: 1, hostname: "h", startedAt: new Date(), beatAt: new Date(), modelStatus: "loaded" },
    });
    // Each with a field that costs SQL: a kept answer would cost none.
    for (const q of ["{ status { now } }", "{ generationDefaults { model { ageSeconds alive } } }", "{ nextSyncAt artworks(limit: 1) { qid } }", "{ syncRuns { durationSeconds } }"]) {
      await ask(q);
      expect((await ask(q)).sql, q).toBeGreaterThan(0);
    }
    const a = JSON.parse((await ask("{ status { now } }")).body).data.status.now;
    await new Promise((r) => setTimeout(r, 5));
    expect(JSON.parse((await ask("{ status { now } }")).body).data.status.now).not.toBe(a);
  });

  it("by default keeps an answer from the second ask: the first two run, the third is served kept", async () => {
    const byDefault = createGraphqlApp({ db: t.db, config: loadConfig({ LOG_LEVEL: "silent", IMAGE_DIR: `${t.dir}/images` }) });
    const q = '{ artworks(creator: "Goya", limit: 2) { qid } }';
    const first = await ask(q, {}, {}, byDefault);
    const second = await ask(q, {}, {}, byDefault);
    const third = await ask(q, {}, {}, byDefault);
    expect([first.sql > 0, second.sql > 0, third.sql]).toEqual([true, true, 0]);
    expect(third.body).toBe(first.body);
  });

  it("is off with GRAPHQL_RESPONSE_CACHE=false", async () => {
    const off = createGraphqlApp({ db: t.db, config: loadConfig({ LOG_LEVEL: "silent", IMAGE_DIR: `${t.dir}/images`, GRAPHQL_RESPONSE_CACHE: "false" }) });
    await ask(LIST, {}, {}, off);
    const again = await ask(LIST, {}, {}, off);
    expect(again.sql).toBeGreaterThan(0);
    expect(again.etag).toBeNull();
  });
});
