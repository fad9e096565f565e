import { createHash, randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { POSTGRES_DATA_VERSION_SQL } from "./data-version.js";
import { POSTGRES_SQL_FUNCTIONS } from "./sql.js";
import { redactPassword } from "../config.js";
import { ChangedMigrationError, type MigrationResult, refuseNewerDatabase } from "./migrate.js";

/** The committed PostgreSQL migrations, next to the generated PostgreSQL schema. */
export const POSTGRES_MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), "../../prisma/postgresql/migrations");

/**
 * The advisory lock key Prisma's own migrate commands take (schema-engine's
 * ADVISORY_LOCK_TIMEOUT path), so this migrator and `prisma migrate` never run side by side.
 */
const PRISMA_MIGRATE_LOCK = 72707369;

/**
 * Applies pending migrations from prisma/postgresql/migrations, in order, each in its own
 * transaction (PostgreSQL's DDL is transactional), and records them in `_prisma_migrations` in
 * Prisma's format, so `prisma migrate status` agrees. `prisma migrate deploy` cannot do this with
 * adapter-pg 6.19 (prisma/orm#27403). A session advisory lock makes two processes starting
 * together apply each migration once: the second waits, then finds nothing left to do.
 */
export async function migratePostgres(databaseUrl: string, dir: string = POSTGRES_MIGRATIONS_DIR): Promise<MigrationResult> {
  const names = readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query("SELECT pg_advisory_lock($1)", [PRISMA_MIGRATE_LOCK]);
    // The table Prisma's schema engine creates on PostgreSQL.
    await client.query(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`);
    const finished = await client.query<{ migration_name: string }>(`SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`);
    refuseNewerDatabase(redactPassword(databaseUrl), finished.rows.map((r) => r.migration_name), names);
    const applied: string[] = [];
    for (const name of names) {
      const sql = readFileSync(join(dir, name, "migration.sql"), "utf8");
      const checksum = createHash("sha256").update(sql).digest("hex");
      const done = await client.query<{ checksum: string }>(
        `SELECT checksum FROM "_prisma_migrations" WHERE migration_name = $1 AND finished_at IS NOT NULL AND rolled_back_at IS NULL`,
        [name],
      );
      if (done.rows.length > 0) {
        if (done.rows[0]!.checksum !== checksum) throw new ChangedMigrationError(name);
        continue;
      }
      await client.query("BEGIN");
      try {
        const startedAt = new Date();
        // No parameters: the simple query protocol, which runs a file of several statements.
        await client.query(sql);
        await client.query(
          `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, applied_steps_count, started_at)
           VALUES ($1, $2, now(), $3, 1, $4)`,
          [randomUUID(), checksum, name, startedAt],
        );
        await client.query("COMMIT");
      } catch (err) {
        // The session ends below either way, which rolls back too; the migration's error is the one to report.
        await client.query("ROLLBACK").catch(() => {});
        throw new MigrationFailedError(name, err);
      }
      applied.push(name);
    }
    // Not in a migration: made from the tables that exist now, so a table a later migration adds
    // is counted too; each statement is idempotent.
    await client.query("BEGIN");
    try {
      await client.query(postgresRuntimeSql());
      await client.query("COMMIT");
    } catch (err) {
      await client.query("ROLLBACK").catch(() => {});
      throw err;
    }
    return { applied, total: names.length };
  } finally {
    // Ending the session releases the advisory lock too.
    await client.end();
  }
}

/**
 * What the migrator makes besides the migrations: the commit counter behind dataVersion and the
 * functions the PostgreSQL dialect's statements call. Idempotent.
 */
export function postgresRuntimeSql(): string {
  // A function: the two modules import db.ts, which imports this one, so their constants may not
  // be set yet while this module loads.
  return POSTGRES_DATA_VERSION_SQL + POSTGRES_SQL_FUNCTIONS;
}

/** A migration's SQL failed; nothing of it was applied (its transaction was rolled back). */
export class MigrationFailedError extends Error {
  constructor(
    readonly migration: string,
    cause: unknown,
  ) {
    super(`migration ${migration} failed and was rolled back: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = "MigrationFailedError";
  }
}
