import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { closeDb, createDb, type Db, openDatabase, probeRead, probeWrite, writerStatus, writeTransaction } from "../../src/db.js";
import { createGraphqlApp } from "../../src/graphql/yoga.js";
import { health, readiness } from "../../src/api/health.js";
import { dataVersion } from "../../src/store/data-version.js";
import { makeArtwork, makeGoya } from "../support/factories.js";
import { gql } from "../support/graphql.js";
import { startPostgres, type TestPostgres } from "../support/postgres.js";

/**
 * dataVersion on PostgreSQL (a commit counter bumped as each writing transaction commits) and the
 * health probes. "Another process" is another client with its own connection pool, or a plain
 * node-postgres connection writing SQL directly.
 */
let server: TestPostgres;
const open: Db[] = [];
const clients: pg.Client[] = [];
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  for (const c of clients) await c.end().catch(() => {});
  for (const db of open) await closeDb(db);
  server?.stop();
});

/** Two clients of one fresh database (two pools: two processes to the server), and a raw connection. */
async function twoClients(): Promise<{ a: Db; b: Db; raw: pg.Client; url: string }> {
  const url = await server.createDatabase();
  const { db: a } = await openDatabase(url);
  const b = await createDb(url);
  const raw = new pg.Client({ connectionString: url });
  await raw.connect();
  open.push(a, b);
  clients.push(raw);
  return { a, b, raw, url };
}

it("moves with every commit that wrote, by any connection, and with nothing else", async () => {
  const { a, b, raw } = await twoClients();
  const v0 = await dataVersion(a);
  expect(await dataVersion(b)).toBe(v0);
  // Reads, a read-only transaction and a rolled-back write leave it as it was.
  await b.artwork.findMany();
  await b.$transaction(async (tx) => tx.creator.count());
  await raw.query("BEGIN");
  await raw.query(`INSERT INTO "Creator" (qid, "updatedAt") VALUES ('Q1', now())`);
  await raw.query("ROLLBACK");
  await expect(writeTransaction(b, async (tx) => {
    await tx.creator.create({ data: { qid: "Q2" } });
    throw new Error("changed my mind");
  })).rejects.toThrow("changed my mind");
  expect(await dataVersion(a)).toBe(v0);
  // A plain write from the other client, a transaction of several writes, a raw statement, a TRUNCATE.
  await b.creator.create({ data: { qid: "Q3" } });
  const v1 = await dataVersion(a);
  expect(v1).toBeGreaterThan(v0);
  await writeTransaction(b, async (tx) => {
    await tx.creator.create({ data: { qid: "Q4" } });
    await tx.creator.update({ where: { qid: "Q4" }, data: { label: "four" } });
  });
  const v2 = await dataVersion(a);
  expect(v2).toBe(v1 + 1);
  await raw.query(`UPDATE "Creator" SET label = 'x' WHERE qid = 'Q3'`);
  const v3 = await dataVersion(a);
  expect(v3).toBeGreaterThan(v2);
  await raw.query(`TRUNCATE "LinkedItem" CASCADE`);
  expect(await dataVersion(a)).toBeGreaterThan(v3);
  // An UPDATE that matches no row is still a write statement: counting it is safe (a needless miss).
});

it("moves only when the commit is visible: a reader never sees the new version with the old data", async () => {
  const { a, raw } = await twoClients();
  const creator = await a.creator.create({ data: { qid: "Q10", label: "before" } });
  const v0 = await dataVersion(a);
  await raw.query("BEGIN");
  await raw.query(`UPDATE "Creator" SET label = 'after' WHERE id = $1`, [creator.id]);
  // Written, not committed: the version has not moved, and the data is the old one.
  expect(await dataVersion(a)).toBe(v0);
  expect((await a.creator.findUniqueOrThrow({ where: { id: creator.id } })).label).toBe("before");
  await raw.query("COMMIT");
  expect(await dataVersion(a)).toBeGreaterThan(v0);
  expect((await a.creator.findUniqueOrThrow({ where: { id: creator.id } })).label).toBe("after");
});

it("counts concurrent commits from many connections without losing one and without deadlocks", async () => {
  const { a, b, url } = await twoClients();
  const c = await createDb(url);
  open.push(c);
  const v0 = await dataVersion(a);
  const writers = [a, b, c];
  const commits = 60;
  await Promise.all(
    Array.from({ length: commits }, (_, i) => {
      const db = writers[i % writers.length]!;
      // Interleaved plain writes and write transactions on the same rows.
      return i % 2 ? db.creator.upsert({ where: { qid: "Q77" }, create: { qid: "Q77" }, update: { label: `l${i}` } }) : writeTransaction(db, async (tx) => {
        await tx.creator.upsert({ where: { qid: "Q77" }, create: { qid: "Q77" }, update: { label: `t${i}` } });
        await tx.creator.upsert({ where: { qid: `Q${1000 + i}` }, create: { qid: `Q${1000 + i}` }, update: {} });
      });
    }),
  );
  expect(await dataVersion(a)).toBe(v0 + commits);
});

it("never serves a GraphQL answer made before a commit by another process", async () => {
  const { a, b, raw } = await twoClients();
  const goya = await makeGoya(a);
  const work = await makeArtwork(a, { qid: "Q9100", title: "First", creators: [{ id: goya.id }] });
  const yoga = createGraphqlApp({ db: a, config: loadConfig({}) });
  const LIST = '{ artworks(creator: "Goya", limit: 100) { qid title } }';
  const titles = async () => ((await gql(yoga, LIST)).data?.artworks as { title: string }[]).map((w) => w.title);
  expect(await titles()).toEqual(["First"]);
  expect(await titles()).toEqual(["First"]); // kept
  // Another client's Prisma write, a raw connection's write, a new artwork by a new creator lookup.
  await b.artwork.update({ where: { id: work.id }, data: { title: "Second" } });
  expect(await titles()).toEqual(["Second"]);
  await raw.query(`UPDATE "Artwork" SET title = 'Third' WHERE id = $1`, [work.id]);
  expect(await titles()).toEqual(["Third"]);
  await makeArtwork(b, { qid: "Q9101", title: "New", creators: [{ id: goya.id }] });
  expect((await titles()).sort()).toEqual(["New", "Third"]);
  // Many rounds: each write by the other side is seen by the very next request.
  for (let i = 0; i < 20; i++) {
    await (i % 2 ? b.artwork.update({ where: { id: work.id }, data: { title: `T${i}` } }) : raw.query(`UPDATE "Artwork" SET title = $1 WHERE id = $2`, [`T${i}`, work.id]));
    expect(await titles()).toContain(`T${i}`);
  }
});

it("answers /health and /ready with real probes: a read on a connection of its own, a committed write", async () => {
  const { a, raw } = await twoClients();
  await probeRead(a);
  expect(writerStatus(a)).toMatchObject({ stuck: false, lastFailure: null });
  const v0 = await dataVersion(a);
  expect(await probeWrite(a, 500)).toBe("ok");
  // The probe's write rewrites the counter with its own value: no cached answer is dropped for it.
  expect(await dataVersion(a)).toBe(v0);
  expect(await health(a)).toEqual({ status: 200, body: { status: "ok", database: "ok" } });
  expect(await readiness(a)).toEqual({ status: 200, body: { status: "ready", database: "ok", writer: "ok" } });
  // Another process in a write transaction (it holds the advisory write lock): busy, not failing.
  await raw.query("BEGIN");
  await raw.query("SELECT pg_advisory_xact_lock($1::bigint)", [String(0x61727464657363n)]);
  expect(await probeWrite(a, 200)).toBe("busy");
  await raw.query("ROLLBACK");
  // A transaction holding the counter's row (as one does while it commits): the probe waits its time, then busy.
  await raw.query("BEGIN");
  await raw.query("UPDATE artdesc_data_version SET version = version WHERE id = 1");
  const started = performance.now();
  expect(await probeWrite(a, 200)).toBe("busy");
  expect(performance.now() - started).toBeLessThan(3_000);
  await raw.query("ROLLBACK");
  expect(await probeWrite(a, 200)).toBe("ok");
});

it("reports a server that went away as unhealthy and unready, and recovers when it is back", async () => {
  const url = await server.createDatabase();
  const { db } = await openDatabase(url);
  open.push(db);
  expect((await health(db)).status).toBe(200);
  // Every connection to this database ends, the probe's among them.
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  clients.push(admin);
  const name = new URL(url).pathname.slice(1);
  await admin.query(`ALTER DATABASE "${name}" ALLOW_CONNECTIONS false`);
  await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, [name]);
  const down = await health(db);
  expect(down.status).toBe(503);
  expect((await readiness(db)).status).toBe(503);
  await admin.query(`ALTER DATABASE "${name}" ALLOW_CONNECTIONS true`);
  expect(await health(db)).toEqual({ status: 200, body: { status: "ok", database: "ok" } });
});
