import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type QueueFilter, queuePageSql, type QueuePage } from "../../src/review/queue.js";
import { POSTGRESQL_DIALECT } from "../../src/store/sql.js";
import { migratePostgres } from "../../src/store/migrate-postgres.js";
import { startPostgres, type TestPostgres } from "../support/postgres.js";

// Each review queue page walks an index in queue order and stops at its limit: no sort of the queue.
let server: TestPostgres;
let client: pg.Client;
beforeAll(async () => {
  server = await startPostgres();
  const url = await server.createDatabase();
  await migratePostgres(url);
  client = new pg.Client({ connectionString: url });
  await client.connect();
  // A queue of 20,000 unreviewed texts (a tenth unassessed), with statistics, as a planner sees a real one.
  // The full-text triggers are not what this is about: off for the load.
  await client.query("SET session_replication_role = replica");
  await client.query(`INSERT INTO "Artwork" ("qid", "qidNumber", "updatedAt") SELECT 'Q' || n, n, now() FROM generate_series(1, 20000) n`);
  await client.query(
    `INSERT INTO "Description" ("artworkId", "text", "source", "qualityRisk")
       SELECT id, 'text', 'MODEL', CASE WHEN id % 10 = 0 THEN NULL ELSE (id * 7919 % 1000) / 1000.0 END FROM "Artwork"`,
  );
  await client.query(`UPDATE "Artwork" a SET "currentDescriptionId" = d.id FROM "Description" d WHERE d."artworkId" = a.id`);
  await client.query("SET session_replication_role = DEFAULT");
  await client.query("ANALYZE");
});
afterAll(async () => {
  await client?.end();
  server?.stop();
});

const NO_FILTER: QueueFilter = { flag: null, minRisk: null, creatorIds: null };

const plan = async (page: QueuePage) => {
  const { sql, params } = queuePageSql(page, POSTGRESQL_DIALECT);
  const rows = (await client.query<{ "QUERY PLAN": string }>(`EXPLAIN ${sql}`, params)).rows;
  return rows.map((r) => r["QUERY PLAN"]).join("\n");
};

it("pages forwards and backwards, from the start and after a cursor, without sorting", async () => {
  const page = (o: Partial<QueuePage>): QueuePage => ({ filter: NO_FILTER, after: null, before: null, inverted: false, limit: 20, ...o });
  const pages = [
    page({}),
    page({ inverted: true }),
    page({ after: { risk: 0.5, id: 10 } }),
    page({ after: { risk: null, id: 10 } }),
    page({ inverted: true, before: { risk: 0.5, id: 10 } }),
    page({ filter: { ...NO_FILTER, minRisk: 0.3 } }),
  ];
  for (const p of pages) {
    const text = await plan(p);
    expect(text, JSON.stringify(p)).toContain("Description_review_queue_idx");
    expect(text, JSON.stringify(p)).not.toMatch(/\bSort\b/);
  }
});
