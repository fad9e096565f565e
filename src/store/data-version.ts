import type Database from "better-sqlite3";
import { type Db, kindOf, readConnection } from "../db.js";

const statements = new WeakMap<Database.Database, Database.Statement>();

/**
 * A number that moves with every commit that changed data, made by any connection of any process,
 * and never otherwise. Anything kept "until the database changes" (creator lookups, GraphQL
 * answers; search keeps its pages the same way inside its own read transaction) notes the version
 * before it reads and is dropped once the version moves.
 *
 * SQLite: `PRAGMA data_version` on `db`'s query-only connection (readConnection): it changes with
 * every commit made by any other connection, this process's writer and every other process
 * included, and never by itself (that connection never writes). Read outside a transaction, the
 * statement opens its own read snapshot, so the value counts every commit that has returned.
 * https://www.sqlite.org/pragma.html#pragma_data_version
 *
 * PostgreSQL: the one row of `artdesc_data_version`, which every transaction that wrote to a table
 * of ours adds one to as it commits (triggers made by migratePostgres, POSTGRES_DATA_VERSION_SQL):
 * the new number becomes visible in the same instant as the data, so a reader that sees version v
 * sees every commit counted in it. (A sequence would move before the commit is visible, and
 * `pg_stat_database.xact_commit` counts read-only transactions and lags behind.) A query, so the
 * answer is a promise there.
 */
export function dataVersion(db: Db): number | Promise<number> {
  if (kindOf(db) === "postgresql") return postgresDataVersion(db);
  const connection = readConnection(db);
  let statement = statements.get(connection);
  if (!statement) statements.set(connection, (statement = connection.prepare("PRAGMA data_version").pluck()));
  return statement.get() as number;
}

/**
 * `read`, answered once per database version: callers until the next commit (by any connection of
 * any process) share one reading, those asking at the same moment included. For whole-table counts
 * that anyone may ask for (`stats`, the review page): asking in a loop then costs one cheap version
 * read each, not one scan. A failed reading is not kept.
 */
export function untilNextCommit<T>(read: (db: Db) => Promise<T>): (db: Db) => Promise<T> {
  const kept = new WeakMap<Db, { version: number; value: Promise<T> }>();
  return async (db) => {
    // Read before the reading: a commit while it runs makes the next call read again.
    const version = await dataVersion(db);
    const k = kept.get(db);
    if (k && k.version === version) return k.value;
    const value = read(db);
    kept.set(db, { version, value });
    value.catch(() => {
      if (kept.get(db)?.value === value) kept.delete(db);
    });
    return value;
  };
}

async function postgresDataVersion(db: Db): Promise<number> {
  const [row] = await db.$queryRawUnsafe<{ version: bigint | number }[]>(`SELECT version FROM artdesc_data_version WHERE id = 1`);
  if (!row) throw new Error("artdesc_data_version has no row: the database was not migrated by artdesc (migratePostgres)");
  return Number(row.version);
}

/**
 * The commit counter behind dataVersion on PostgreSQL, (re)made by migratePostgres after the
 * migrations, so every table a later migration adds is counted too. A statement-level trigger on
 * every table marks the transaction once (a row in artdesc_data_version_marks, skipped after the
 * first by a transaction-local setting); the mark's deferred constraint trigger adds one to the
 * counter as the transaction commits. The counter's row lock is taken only then, after every other
 * lock the transaction takes, so writers queue for it briefly and can never deadlock on it; a
 * rolled-back transaction leaves the counter as it was.
 */
export const POSTGRES_DATA_VERSION_SQL = `
CREATE TABLE IF NOT EXISTS artdesc_data_version (id int PRIMARY KEY CHECK (id = 1), version bigint NOT NULL);
INSERT INTO artdesc_data_version VALUES (1, 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS artdesc_data_version_marks (txid bigint PRIMARY KEY);
CREATE OR REPLACE FUNCTION artdesc_mark_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('artdesc.marked', true) IS DISTINCT FROM txid_current()::text THEN
    INSERT INTO artdesc_data_version_marks VALUES (txid_current()) ON CONFLICT DO NOTHING;
    PERFORM set_config('artdesc.marked', txid_current()::text, true);
  END IF;
  RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION artdesc_count_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE artdesc_data_version SET version = version + 1 WHERE id = 1;
  DELETE FROM artdesc_data_version_marks WHERE txid = NEW.txid;
  RETURN NULL;
END $$;
-- Triggers are made only where missing: making one locks its table against writes for a moment.
DO $$
DECLARE t record;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'artdesc_count_commit' AND tgrelid = 'artdesc_data_version_marks'::regclass) THEN
    CREATE CONSTRAINT TRIGGER artdesc_count_commit AFTER INSERT ON artdesc_data_version_marks
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION artdesc_count_commit();
  END IF;
  FOR t IN SELECT c.relname FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
      AND c.relname NOT IN ('_prisma_migrations', 'artdesc_data_version', 'artdesc_data_version_marks')
      AND NOT EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = c.oid AND g.tgname = 'artdesc_data_changed') LOOP
    EXECUTE format('CREATE TRIGGER artdesc_data_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION artdesc_mark_write()', t.relname);
  END LOOP;
END $$;
`;
