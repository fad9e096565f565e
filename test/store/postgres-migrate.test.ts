import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { POSTGRES_MIGRATIONS_DIR, postgresRuntimeSql, MigrationFailedError, migratePostgres } from "../../src/store/migrate-postgres.js";
import { ChangedMigrationError, NewerDatabaseError } from "../../src/store/migrate.js";
import { startPostgres, type TestPostgres } from "../support/postgres.js";

let server: TestPostgres;
const scratch = mkdtempSync(join(tmpdir(), "artdesc-pgmig-"));
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(() => {
  server?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

const migrationRows = (url: string) =>
  query<{ migration_name: string; checksum: string; finished_at: Date | null; applied_steps_count: number }>(
    url,
    `SELECT migration_name, checksum, finished_at, applied_steps_count FROM "_prisma_migrations" ORDER BY migration_name`,
  );

it("applies every migration once, and a second run applies nothing", async () => {
  const url = await server.createDatabase();
  const first = await migratePostgres(url);
  expect(first.total).toBeGreaterThan(0);
  expect(first.applied).toHaveLength(first.total);
  expect(await migratePostgres(url)).toEqual({ applied: [], total: first.total });
  const tables = (await query<{ tablename: string }>(url, `SELECT tablename FROM pg_tables WHERE schemaname = 'public'`)).map((r) => r.tablename);
  expect(tables).toEqual(expect.arrayContaining(["Artwork", "Image", "Description", "Job", "SyncRun", "Lease", "Heartbeat", "_prisma_migrations"]));
  const rows = await migrationRows(url);
  expect(rows.map((r) => r.migration_name)).toEqual(first.applied);
  for (const row of rows) {
    const sql = readFileSync(join(POSTGRES_MIGRATIONS_DIR, row.migration_name, "migration.sql"));
    expect(row.finished_at).toBeInstanceOf(Date);
    expect(row.applied_steps_count).toBe(1);
    expect(row.checksum).toBe(createHash("sha256").update(sql).digest("hex"));
  }
});

it("applies each migration once when several processes start together (advisory lock)", async () => {
  const url = await server.createDatabase();
  // Each call has its own connection, so its own session: to PostgreSQL these are separate processes.
  const results = await Promise.all(Array.from({ length: 4 }, () => migratePostgres(url)));
  const appliedBy = results.map((r) => r.applied.length);
  expect(appliedBy.filter((n) => n === results[0]!.total)).toHaveLength(1);
  expect(appliedBy.filter((n) => n === 0)).toHaveLength(3);
  const rows = await migrationRows(url);
  expect(rows).toHaveLength(results[0]!.total);
  // No lock is left behind: a later run gets it at once.
  const locks = await query<{ n: number }>(url, `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'`);
  expect(locks[0]!.n).toBe(0);
});

it("is what Prisma's CLI sees as applied (migrate status reads the same _prisma_migrations)", async () => {
  const url = await server.createDatabase();
  await migratePostgres(url);
  const out = execFileSync("npx", ["prisma", "migrate", "status"], { env: { ...process.env, DATABASE_URL: url }, encoding: "utf8" });
  expect(out).toMatch(/prisma\/postgresql\/schema\.prisma/);
  expect(out).toMatch(/Database schema is up to date/);
});

it("gives the schema that prisma/postgresql/schema.prisma describes (no forgotten migration)", async () => {
  const migrated = await server.createDatabase();
  await migratePostgres(migrated);
  const pushed = await server.createDatabase();
  const script = execFileSync(
    "npx",
    ["prisma", "migrate", "diff", "--from-empty", "--to-schema-datamodel", "prisma/postgresql/schema.prisma", "--script"],
    { env: { ...process.env, DATABASE_URL: pushed }, encoding: "utf8" },
  );
  await query(pushed, script);
  // Raw SQL that schema.prisma cannot describe: the full-text index (a table, a view, triggers) and
  // the review queue's NULLS LAST index.
  for (const raw of ["20261203100000_search", "20261203110000_review_queue"]) {
    await query(pushed, readFileSync(join(POSTGRES_MIGRATIONS_DIR, raw, "migration.sql"), "utf8"));
  }
  // Not from a migration: made by the migrator on every run (the commit counter, dialect functions).
  await query(pushed, postgresRuntimeSql());
  const dump = (url: string) => {
    const bin = execFileSync("bash", ["-c", "ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1"], { encoding: "utf8" }).trim();
    return execFileSync(join(bin, "pg_dump"), ["--schema-only", "--no-owner", "--exclude-table=_prisma_migrations", "--dbname", url], { encoding: "utf8" })
      .split("\n")
      .filter((line) => !line.startsWith("--") && !/^\\(un)?restrict /.test(line))
      .join("\n");
  };
  const expected = dump(pushed);
  expect(expected).toMatch(/CREATE TABLE public\."Artwork"/);
  const actual = dump(migrated);
  if (actual !== expected) {
    throw new Error(
      "prisma/postgresql/migrations do not produce prisma/postgresql/schema.prisma: add a migration (README, Development) " +
        "and run `npm run db:schemas` after editing prisma/schema.prisma",
    );
  }
});

it("refuses a migration that was edited after it was applied", async () => {
  const url = await server.createDatabase();
  await migratePostgres(url);
  await query(url, `UPDATE "_prisma_migrations" SET checksum = 'x'`);
  await expect(migratePostgres(url)).rejects.toBeInstanceOf(ChangedMigrationError);
});

it("refuses a database that a newer artdesc migrated", async () => {
  const url = await server.createDatabase();
  await migratePostgres(url);
  await query(url, `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, applied_steps_count) VALUES ('f', 'x', now(), '20991231000002_future', 1)`);
  await expect(migratePostgres(url)).rejects.toBeInstanceOf(NewerDatabaseError);
  await expect(migratePostgres(url)).rejects.toThrow(/20991231000002_future is not in this version/);
});

it("rolls a failing migration back whole and records nothing for it", async () => {
  const url = await server.createDatabase();
  const dir = join(scratch, "failing");
  cpSync(POSTGRES_MIGRATIONS_DIR, dir, { recursive: true });
  const bad = join(dir, "29990101000000_bad");
  mkdirSync(bad);
  writeFileSync(join(bad, "migration.sql"), `CREATE TABLE "Half" ("id" INTEGER);\nSELECT no_such_function();\n`);
  const err = await migratePostgres(url, dir).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(MigrationFailedError);
  expect((err as MigrationFailedError).migration).toBe("29990101000000_bad");
  expect(await query(url, `SELECT to_regclass('public."Half"') AS t`)).toEqual([{ t: null }]);
  const rows = await migrationRows(url);
  expect(rows.map((r) => r.migration_name)).not.toContain("29990101000000_bad");
  // The migrations before it stay applied; fixing the file lets the next run finish.
  writeFileSync(join(bad, "migration.sql"), `CREATE TABLE "Half" ("id" INTEGER);\n`);
  expect((await migratePostgres(url, dir)).applied).toEqual(["29990101000000_bad"]);
});

it("widens wikidataRevision and bytes to bigint keeping their values", async () => {
  const url = await server.createDatabase();
  const widen = "20261205100000_bigint_revision_and_bytes";
  const before = join(scratch, "before-widen");
  mkdirSync(before);
  for (const m of readdirSync(POSTGRES_MIGRATIONS_DIR)) if (m < widen) cpSync(join(POSTGRES_MIGRATIONS_DIR, m), join(before, m), { recursive: true });
  await migratePostgres(url, before);
  await query(
    url,
    `INSERT INTO "Artwork" (id, qid, "qidNumber", title, "wikidataRevision", "updatedAt") VALUES (1, 'Q1', 1, 'Sunflowers', 2147483647, now());
     INSERT INTO "Image" (id, "artworkId", "fileTitle", bytes, "updatedAt") VALUES (1, 1, 'File:a.jpg', 2147483647, now());`,
  );
  // The old integer column refused a revision past 2^31 (Prisma's P2020 during a sync).
  await expect(query(url, `UPDATE "Artwork" SET "wikidataRevision" = 2147483648`)).rejects.toThrow(/out of range/);

  expect((await migratePostgres(url)).applied[0]).toBe(widen);
  const types = await query<{ table_name: string; column_name: string; data_type: string }>(
    url,
    `SELECT table_name, column_name, data_type FROM information_schema.columns
     WHERE (table_name, column_name) IN (('Artwork', 'wikidataRevision'), ('Image', 'bytes')) ORDER BY table_name`,
  );
  expect(types.map((t) => t.data_type)).toEqual(["bigint", "bigint"]);
  expect(await query(url, `SELECT "wikidataRevision"::text AS r FROM "Artwork"`)).toEqual([{ r: "2147483647" }]);
  expect(await query(url, `SELECT bytes::text AS b FROM "Image"`)).toEqual([{ b: "2147483647" }]);
  await query(url, `UPDATE "Artwork" SET "wikidataRevision" = 2400000001; UPDATE "Image" SET bytes = 5000000000;`);
  expect(await query(url, `SELECT a."wikidataRevision"::text AS r, i.bytes::text AS b FROM "Artwork" a JOIN "Image" i ON i."artworkId" = a.id`)).toEqual([
    { r: "2400000001", b: "5000000000" },
  ]);
});
