import { createHash, randomUUID } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { ConfigError } from "../config.js";

/** The committed migrations, next to the schema. */
export const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), "../../prisma/migrations");

export interface MigrationResult {
  applied: string[];
  total: number;
}

/**
 * Applies pending migrations from prisma/migrations, in order, each in its own transaction.
 * It keeps Prisma's `_prisma_migrations` table in Prisma's format (checksum = sha256 of the
 * file), so `prisma migrate deploy` and this function agree on what has been applied. Running it
 * in-process avoids starting the Prisma CLI at every start and in every test.
 */
export function migrate(file: string, dir: string = MIGRATIONS_DIR): MigrationResult {
  makeDirectory(dirname(file));
  const db = new Database(file, { timeout: 15_000 });
  try {
    db.pragma("journal_mode = WAL");
    db.exec(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    TEXT PRIMARY KEY NOT NULL,
    "checksum"              TEXT NOT NULL,
    "finished_at"           DATETIME,
    "migration_name"        TEXT NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        DATETIME,
    "started_at"            DATETIME NOT NULL DEFAULT current_timestamp,
    "applied_steps_count"   INTEGER UNSIGNED NOT NULL DEFAULT 0
)`);
    const names = readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
    // A migration that rebuilds a table (SQLite cannot change a column in place) drops the old one,
    // and with foreign keys enforced DROP TABLE first deletes its rows, cascading to every table that
    // points at it. SQLite's procedure (https://www.sqlite.org/lang_altertable.html#otheralter): keys
    // off outside the transaction (the pragma does nothing inside one), checked before each commit.
    db.pragma("foreign_keys = OFF");
    const finished = db.prepare(`SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`).pluck().all() as string[];
    refuseNewerDatabase(file, finished, names);
    const applied: string[] = [];
    for (const name of names) {
      const sql = readFileSync(join(dir, name, "migration.sql"), "utf8");
      const checksum = createHash("sha256").update(sql).digest("hex");
      // IMMEDIATE takes the write lock first, so two processes starting together apply each migration once.
      const run = db.transaction(() => {
        const done = db
          .prepare(`SELECT checksum FROM "_prisma_migrations" WHERE migration_name = ? AND finished_at IS NOT NULL AND rolled_back_at IS NULL`)
          .get(name) as { checksum: string } | undefined;
        if (done) {
          if (done.checksum !== checksum) {
            throw new ChangedMigrationError(name);
          }
          return false;
        }
        const startedAt = prismaTimestamp();
        db.exec(sql);
        const broken = db.pragma("foreign_key_check") as unknown[];
        if (broken.length) throw new ForeignKeyViolationError(name, broken.length);
        db.prepare(
          `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, applied_steps_count, started_at)
           VALUES (?, ?, ?, ?, 1, ?)`,
        ).run(randomUUID(), checksum, prismaTimestamp(), name, startedAt);
        return true;
      });
      if (run.immediate()) applied.push(name);
    }
    return { applied, total: names.length };
  } finally {
    db.close();
  }
}

/**
 * The database was migrated by a newer artdesc (it records migrations this version does not have):
 * this version's queries were not written for its schema, and running on it could write rows the
 * newer one cannot read. Going back means restoring the backup taken before the upgrade.
 */
export class NewerDatabaseError extends ConfigError {
  constructor(
    where: string,
    readonly unknown: string[],
  ) {
    super([
      `DATABASE_URL (${where}): the database was migrated by a newer artdesc (migration${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")} ${unknown.length > 1 ? "are" : "is"} not in this version): ` +
        "run that version, or restore the backup taken before the upgrade (README, \"Backups, restores and upgrades\")",
    ]);
    this.name = "NewerDatabaseError";
  }
}

/** Throws NewerDatabaseError when `finished` (applied migration names) holds one that `known` lacks. */
export function refuseNewerDatabase(where: string, finished: readonly string[], known: readonly string[]): void {
  const mine = new Set(known);
  const unknown = [...new Set(finished)].filter((n) => !mine.has(n)).sort();
  if (unknown.length) throw new NewerDatabaseError(where, unknown);
}

/** A migration file differs from the one applied to this database (its checksum changed). */
export class ChangedMigrationError extends Error {
  constructor(readonly migration: string) {
    super(`migration ${migration} was changed after it was applied (checksum differs); restore the committed file`);
    this.name = "ChangedMigrationError";
  }
}

/** After a migration, rows point at rows that do not exist; the migration was rolled back. */
export class ForeignKeyViolationError extends Error {
  constructor(
    readonly migration: string,
    readonly violations: number,
  ) {
    super(`migration ${migration} would leave ${violations} rows pointing at missing rows (PRAGMA foreign_key_check); it was rolled back`);
    this.name = "ForeignKeyViolationError";
  }
}

/** Prisma writes "2026-11-27T15:53:45.830+00:00". */
function prismaTimestamp(): string {
  return new Date().toISOString().replace("Z", "+00:00");
}

/**
 * mkdir -p, one level at a time: Node 20's `mkdirSync(path, { recursive: true })` loops forever
 * when mkdir answers ENOENT for a parent that exists (any path under /proc).
 */
export function makeDirectory(path: string): void {
  if (existsSync(path)) return;
  const parent = dirname(path);
  if (parent !== path) makeDirectory(parent);
  try {
    mkdirSync(path);
  } catch (err) {
    // Another process starting at the same time made it first.
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
}
