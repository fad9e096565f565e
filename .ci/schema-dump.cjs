// Prints a SQLite database's schema (sqlite_master) in a stable order, for the drift check.
const Database = require("better-sqlite3");
const db = new Database(process.argv[2], { readonly: true });
// Left out: the migrations log, and full-text index tables that migrations create with raw SQL
// (FTS5 virtual tables and their shadow tables), which the Prisma schema cannot describe.
const rows = db
  .prepare(
    `SELECT type, name, sql FROM sqlite_master
     WHERE name NOT LIKE '\\_prisma\\_migrations%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
       AND name NOT LIKE '%\\_fts%' ESCAPE '\\'
     ORDER BY type, name`,
  )
  .all();
// Whitespace is not significant: ALTER TABLE ADD COLUMN appends ", col ..." after the last column
// with its own spacing, where a pushed table has "col ...," on its own line.
const canonical = (sql) => sql.replace(/\s+/g, " ").replace(/ ?([(),]) ?/g, "$1");
for (const r of rows) console.log(r.type, r.name, canonical(r.sql || ""));
