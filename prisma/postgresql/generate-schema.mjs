// Writes prisma/postgresql/schema.prisma from prisma/schema.prisma, the one source of truth for the
// data model: same models, PostgreSQL datasource, its own generated client, no Pothos generator
// (Pothos' types come from the SQLite client; the models are the same).
// Usage: node prisma/postgresql/generate-schema.mjs [--check]   (npm run db:schemas)
// --check exits 1 without writing when the committed file is out of date (CI).
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const source = join(here, "../schema.prisma");
const target = join(here, "schema.prisma");

/** A top-level block (`generator client { ... }`) by kind and name; blocks in a Prisma schema do not nest. */
function block(kind, name) {
  return new RegExp(`^${kind} ${name} \\{\\n[\\s\\S]*?^\\}\\n`, "m");
}

function replaceOnce(text, pattern, replacement, what) {
  if (!pattern.test(text)) throw new Error(`prisma/schema.prisma: ${what} not found; update prisma/postgresql/generate-schema.mjs`);
  return text.replace(pattern, replacement);
}

export function postgresSchema(sqlite) {
  let out = sqlite;
  out = replaceOnce(
    out,
    block("generator", "client"),
    `generator client {
  provider            = "prisma-client"
  output              = "../../src/generated/prisma-postgresql"
  engineType          = "client"
  importFileExtension = "js"
  moduleFormat        = "esm"
}
`,
    "generator client",
  );
  out = replaceOnce(out, /\n?^generator pothos \{\n[\s\S]*?^\}\n/m, "", "generator pothos");
  out = replaceOnce(
    out,
    block("datasource", "db"),
    `datasource db {
  provider = "postgresql"
  url      = env("DATABASE_URL")
}
`,
    "datasource db",
  );
  const header =
    "// GENERATED from prisma/schema.prisma by `npm run db:schemas`: do not edit; edit prisma/schema.prisma.\n" +
    "// PostgreSQL migrations: prisma/postgresql/migrations (applied by src/store/migrate-postgres.ts).\n";
  return header + out;
}

/** Writes the PostgreSQL schema (or, with check, only compares); true when the file was already up to date. */
export function writePostgresSchema({ check = false } = {}) {
  const wanted = postgresSchema(readFileSync(source, "utf8"));
  let current = "";
  try {
    current = readFileSync(target, "utf8");
  } catch {
    // not written yet
  }
  if (current === wanted) return true;
  if (!check) writeFileSync(target, wanted);
  return false;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const check = process.argv.includes("--check");
  if (writePostgresSchema({ check })) {
    console.log("prisma/postgresql/schema.prisma matches prisma/schema.prisma");
  } else if (check) {
    console.error("prisma/postgresql/schema.prisma is out of date with prisma/schema.prisma: run `npm run db:schemas` and commit it");
    process.exit(1);
  } else {
    console.log("wrote prisma/postgresql/schema.prisma");
  }
}
