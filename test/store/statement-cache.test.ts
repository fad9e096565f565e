import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { cachingStatements } from "../../src/store/statement-cache.js";

/** A connection whose prepare calls are counted, behind the statement cache. */
function counted(size?: number, file = ":memory:") {
  const db = new Database(file);
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)");
  const prepared: string[] = [];
  const prepare = db.prepare.bind(db);
  db.prepare = ((sql: string) => (prepared.push(sql), prepare(sql))) as typeof db.prepare;
  return { db, prepared, client: cachingStatements(db, size) };
}

describe("cachingStatements (the upstream adapter's connection with prepared statements kept)", () => {
  let c: ReturnType<typeof counted>;
  beforeEach(() => {
    c = counted();
  });
  afterEach(() => c.db.close());

  it("prepares a statement once and runs it again with other arguments, as the adapter calls it", () => {
    const insert = "INSERT INTO t (id, name) VALUES (?, ?)";
    expect(c.client.prepare(insert).bind([1, "a"]).run().changes).toBe(1);
    expect(c.client.prepare(insert).bind([2, "b"]).run().changes).toBe(1);
    const select = "SELECT id, name FROM t WHERE id >= ? ORDER BY id";
    const first = c.client.prepare(select).bind([1]);
    expect(first.reader).toBe(true);
    expect(first.columns().map((col) => col.name)).toEqual(["id", "name"]);
    expect(first.raw().all()).toEqual([
      [1, "a"],
      [2, "b"],
    ]);
    expect(c.client.prepare(select).bind([2]).raw().all()).toEqual([[2, "b"]]);
    expect(c.prepared).toEqual([insert, select]);
  });

  it("runs a statement without bind (the adapter's BEGIN) and leaves the connection's own members alone", () => {
    c.client.prepare("BEGIN").run();
    expect(c.client.inTransaction).toBe(true);
    c.client.prepare("ROLLBACK").run();
    expect(c.client.inTransaction).toBe(false);
    expect(c.client.open).toBe(true);
    expect(c.client.pragma("query_only", { simple: true })).toBe(0);
  });

  it("keeps no statement that fails to prepare, and throws SQLite's error each time", () => {
    expect(() => c.client.prepare("SELECT nope FROM t").bind([])).toThrow(/no such column: nope/);
    expect(() => c.client.prepare("SELECT nope FROM t").bind([])).toThrow(/no such column: nope/);
    expect(c.prepared).toEqual(["SELECT nope FROM t", "SELECT nope FROM t"]);
  });

  it("sees a schema change made by another connection: SQLite prepares the kept statement again", () => {
    const dir = mkdtempSync(join(tmpdir(), "artdesc-stmt-cache-"));
    const file = join(dir, "db.sqlite");
    const own = counted(undefined, file);
    const other = new Database(file);
    try {
      own.client.prepare("INSERT INTO t (id, name) VALUES (?, ?)").bind([1, "a"]).run();
      const select = "SELECT * FROM t";
      expect(own.client.prepare(select).bind([]).raw().all()).toEqual([[1, "a"]]);
      other.exec("ALTER TABLE t ADD COLUMN year INTEGER DEFAULT 1797");
      const again = own.client.prepare(select).bind([]);
      expect(again.raw().all()).toEqual([[1, "a", 1797]]);
      expect(again.columns().map((col) => col.name)).toEqual(["id", "name", "year"]);
      expect(own.prepared.filter((sql) => sql === select)).toHaveLength(1);
    } finally {
      other.close();
      own.db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("keeps at most `size` statements, dropping the least recently used", () => {
    c.db.close();
    c = counted(2);
    const q = (n: number) => `SELECT ${n}`;
    for (const n of [1, 2, 1, 3, 1, 2]) expect(c.client.prepare(q(n)).bind([]).raw().all()).toEqual([[n]]);
    // 1 and 2 kept; 3 pushes out 2 (1 was used after it); 2 is prepared again.
    expect(c.prepared).toEqual([q(1), q(2), q(3), q(2)]);
  });
});
