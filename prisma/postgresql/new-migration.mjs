// Writes the PostgreSQL migration for a change to prisma/schema.prisma:
//   npm run db:migration -- <folder name, e.g. 20261202100000_embeddings> [--from <git revision>]
// It regenerates prisma/postgresql/schema.prisma, then diffs the PostgreSQL schema made from
// prisma/schema.prisma at <git revision> (default HEAD: the last committed schema) against it.
// Prisma's diff needs a live server when a driver adapter is configured, even for two schema files,
// so this starts a throwaway PostgreSQL (test/support/postgres.ts) for the duration. Runs under tsx.
// test/store/postgres-migrate.test.ts then checks that the migrations give the schema.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startPostgres } from "../../test/support/postgres.ts";
import { postgresSchema, writePostgresSchema } from "./generate-schema.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "../..");
const args = process.argv.slice(2);
const name = args.find((a, i) => !a.startsWith("--") && args[i - 1] !== "--from");
const from = args.includes("--from") ? args[args.indexOf("--from") + 1] : "HEAD";
if (!name || !/^\d{14}_[a-z0-9_]+$/.test(name) || !from) {
  console.error("usage: npm run db:migration -- <yyyymmddhhmmss_name> [--from <git revision>]");
  process.exit(2);
}
const folder = join(here, "migrations", name);
if (existsSync(folder)) {
  console.error(`${folder} exists already`);
  process.exit(1);
}

writePostgresSchema();
const before = postgresSchema(execFileSync("git", ["show", `${from}:prisma/schema.prisma`], { cwd: root, encoding: "utf8" }));
const scratch = mkdtempSync(join(tmpdir(), "artdesc-pgdiff-"));
const server = await startPostgres();
try {
  const beforeFile = join(scratch, "before.prisma");
  writeFileSync(beforeFile, before);
  const sql = execFileSync(
    "npx",
    ["prisma", "migrate", "diff", "--from-schema-datamodel", beforeFile, "--to-schema-datamodel", "prisma/postgresql/schema.prisma", "--script"],
    { cwd: root, env: { ...process.env, DATABASE_URL: server.url }, encoding: "utf8" },
  );
  if (!/^\s*(CREATE|ALTER|DROP)/m.test(sql)) {
    console.log(`no PostgreSQL schema change between ${from} and the working tree; nothing written`);
  } else {
    mkdirSync(folder);
    writeFileSync(join(folder, "migration.sql"), sql);
    console.log(`wrote prisma/postgresql/migrations/${name}/migration.sql`);
  }
} finally {
  server.stop();
  rmSync(scratch, { recursive: true, force: true });
}
