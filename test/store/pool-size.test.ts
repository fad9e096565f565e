import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { closeDb, createDb } from "../../src/db.js";
import { createTestDb, onPostgres, type TestDb } from "../support/db.js";

/**
 * PostgreSQL: a process's pool holds at most DATABASE_POOL_SIZE connections (`poolSize`), however
 * many queries it runs at once: every API process, daemon and worker has its own, and their sum must
 * stay under the server's max_connections.
 */
let t: TestDb;
beforeAll(async () => {
  t = await createTestDb();
});
afterAll(async () => {
  await t?.close();
});

it.skipIf(!onPostgres)("opens no more connections than poolSize, queries beyond it wait their turn", async () => {
  const db = await createDb(t.url, { poolSize: 2 });
  const watcher = new pg.Client({ connectionString: t.url });
  await watcher.connect();
  try {
    const tag = `artdesc-pool-${process.pid}`;
    // Prisma's queries start when awaited: .then starts them all now.
    const running = Array.from({ length: 6 }, () => db.$queryRawUnsafe(`SELECT pg_sleep(1)::text AS slept, '${tag}' AS tag`).then((r) => r));
    // The most of them the server runs at once, looked at every 50 ms while they run.
    let most = 0;
    for (const end = Date.now() + 1_500; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) {
      const { rows } = await watcher.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE $1 AND state = 'active' AND pid <> pg_backend_pid()`, [`%${tag}%`]);
      most = Math.max(most, rows[0].n as number);
    }
    expect(most).toBe(2);
    await Promise.all(running);
  } finally {
    await watcher.end();
    await closeDb(db);
  }
});
