import type Database from "better-sqlite3";
import { BoundedLru } from "../graphql/bounded-lru.js";

/** Prepared statements kept per connection (Prisma sends a few hundred shapes; `IN (?, …)` lists add more). */
export const STATEMENT_CACHE_SIZE = 500;

/**
 * What @prisma/adapter-better-sqlite3 does with a statement: `prepare(sql).bind(args)`, then
 * `reader`, `run()`, `columns()` and `raw().all()` on the bound one (and `prepare(sql).run()`
 * for BEGIN). Nothing else.
 */
interface BoundStatement {
  readonly reader: boolean;
  run(): Database.RunResult;
  columns(): Database.ColumnDefinition[];
  raw(): { all(): unknown[] };
}

interface CachedStatement extends BoundStatement {
  bind(args: unknown[]): BoundStatement;
}

/**
 * The upstream adapter's view of a better-sqlite3 connection, with prepared statements kept: it
 * prepares every query afresh (`client.prepare(sql)` per call: SQLite parses and plans it again,
 * about a tenth of an uncached `artwork(id)` request's CPU), and binds the parameters to the
 * statement, which better-sqlite3 allows once per statement. Here `prepare` returns a kept
 * statement (least recently used dropped beyond `size`), and `bind` only remembers the arguments,
 * passed on each call instead, which binds them the same way (an array binds its items as the
 * anonymous parameters). Every other property is the connection's own.
 *
 * A kept statement is safe to run again: better-sqlite3 runs `run()` and `all()` to the end
 * before returning, and SQLite prepares a kept statement again by itself when the schema has
 * changed. A statement that fails to prepare is not kept.
 */
export function cachingStatements(client: Database.Database, size = STATEMENT_CACHE_SIZE): Database.Database {
  // Bounded by count only: a statement's memory is SQLite's, not measured here.
  const kept = new BoundedLru<Database.Statement>({ maxEntries: size, maxBytes: Number.POSITIVE_INFINITY });
  const statement = (sql: string): Database.Statement => {
    let stmt = kept.get(sql);
    if (!stmt) {
      stmt = client.prepare(sql);
      kept.set(sql, stmt, 0);
    }
    return stmt;
  };
  const bound = (stmt: Database.Statement, args: unknown[]): BoundStatement => ({
    reader: stmt.reader,
    run: () => stmt.run(args),
    columns: () => stmt.columns(),
    raw: () => ({ all: () => stmt.raw(true).all(args) }),
  });
  const prepare = (sql: string): CachedStatement => {
    const stmt = statement(sql);
    return { ...bound(stmt, []), bind: (args) => bound(stmt, args) };
  };
  return new Proxy(client, {
    get(target, property) {
      if (property === "prepare") return prepare;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
