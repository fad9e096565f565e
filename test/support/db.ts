import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { aliasDb, closeDb, createDb, type Db } from "../../src/db.js";
import { migrate } from "../../src/store/migrate.js";
import { migratePostgres } from "../../src/store/migrate-postgres.js";
import { startPostgres, type TestPostgres } from "./postgres.js";

export interface TestDb {
  db: Db;
  url: string;
  /** The SQLite file (on PostgreSQL: "", there is no file). */
  file: string;
  dir: string;
  /** SQL statements seen since the last reset (when created with countQueries). */
  queries: string[];
  close(): Promise<void>;
}

/**
 * Which database createTestDb gives: SQLite (default) or, with TEST_DATABASE=postgresql (see
 * `npm run test:postgresql`), a database of its own on a PostgreSQL server started for the test file (and stopped after it).
 */
export const testDatabase: "sqlite" | "postgresql" = process.env.TEST_DATABASE === "postgresql" ? "postgresql" : "sqlite";

/** True when this run's createTestDb gives PostgreSQL: for `it.skipIf(onPostgres)` on SQLite-only tests (say why next to it). */
export const onPostgres = testDatabase === "postgresql";

let server: Promise<TestPostgres> | null = null;

/**
 * Stops the PostgreSQL server of the test file that just ended, if it started one. test/support/
 * each-file.ts runs it after every file's last test: this module is loaded once per test worker,
 * and most workers run many files one after the other (vitest.config.ts, isolate: false).
 */
export async function stopFileServer(): Promise<void> {
  const started = server;
  server = null;
  if (started) (await started).stop();
}

/**
 * A DATABASE_URL for a process a test starts (`artdesc sync|serve|worker`), which applies the
 * migrations itself: a SQLite file `name`.db in `dir`, or with TEST_DATABASE=postgresql a new empty
 * database on this test file's server.
 */
export async function testDatabaseUrl(dir: string, name: string): Promise<string> {
  if (!onPostgres) return `file:${join(dir, `${name}.db`)}`;
  server ??= startPostgres();
  return (await server).createDatabase();
}

/**
 * A real database with the committed migrations applied: a SQLite file in a temporary folder, or,
 * with TEST_DATABASE=postgresql, a fresh PostgreSQL database on this test file's server.
 */
export async function createTestDb(options: { countQueries?: boolean } = {}): Promise<TestDb> {
  const dir = mkdtempSync(join(tmpdir(), "artdesc-test-"));
  const queries: string[] = [];
  const dbOptions = options.countQueries ? { onQuery: (q: string) => queries.push(q) } : {};
  if (onPostgres) {
    server ??= startPostgres();
    const url = await (await server).createDatabase();
    await migratePostgres(url);
    const db = await createDb(url, dbOptions);
    return {
      db,
      url,
      file: "",
      dir,
      queries,
      async close() {
        await closeDb(db);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const file = join(dir, "test.db");
  migrate(file);
  const url = `file:${file}`;
  const db = await createDb(url, dbOptions);
  return {
    db,
    url,
    file,
    dir,
    queries,
    async close() {
      await closeDb(db);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * `db`, except that `first` runs (once) just before its first transaction opens: another writer
 * whose commit lands between a function's reads and its write transaction. Code that decides
 * inside its transaction sees that commit; code that decided on earlier reads does not.
 */
export function otherWriterFirst(db: Db, first: () => Promise<unknown>): Db {
  let fired = false;
  const proxy = new Proxy(db, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (prop === "$transaction" && typeof value === "function") {
        return async (...args: unknown[]) => {
          if (!fired) {
            fired = true;
            await first();
          }
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  // The same client to writeTransaction and kindOf: on PostgreSQL the advisory lock is taken as in production.
  return aliasDb(proxy, db);
}
