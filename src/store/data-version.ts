import type Database from "better-sqlite3";
import { type Db, readConnection } from "../db.js";

const statements = new WeakMap<Database.Database, Database.Statement>();

/**
 * SQLite's `PRAGMA data_version` on `db`'s query-only connection (readConnection): it changes
 * with every commit made by any other connection, this process's writer and every other process
 * included, and never by itself (that connection never writes). Read outside a transaction, the
 * statement opens its own read snapshot, so the value counts every commit that has returned.
 * https://www.sqlite.org/pragma.html#pragma_data_version
 *
 * Anything kept "until the database changes" (creator lookups, GraphQL answers; search keeps its
 * pages the same way inside its own read transaction) notes the version before it reads and is
 * dropped once the version moves.
 */
export function dataVersion(db: Db): number {
  const connection = readConnection(db);
  let statement = statements.get(connection);
  if (!statement) statements.set(connection, (statement = connection.prepare("PRAGMA data_version").pluck()));
  return statement.get() as number;
}
