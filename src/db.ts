import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3";
import Database from "better-sqlite3";
import { PrismaClient } from "./generated/prisma/client.js";

export type Db = PrismaClient;
import { Prisma } from "./generated/prisma/client.js";
export { Prisma };

/** Path of the SQLite file behind a `file:` URL, resolved against the working directory. */
export function sqlitePath(databaseUrl: string): string {
  const path = databaseUrl.replace(/^file:/, "").replace(/\?.*$/, "");
  return resolve(path);
}

export interface DbOptions {
  /** Log every SQL statement to this callback (tests count queries with it). */
  onQuery?: (sql: string) => void;
  /** How long a statement waits for another process's write lock, in ms. */
  busyTimeoutMs?: number;
}

/** One Prisma client over better-sqlite3; the database file is in WAL mode. */
export async function createDb(databaseUrl: string, options: DbOptions = {}): Promise<Db> {
  const file = sqlitePath(databaseUrl);
  mkdirSync(dirname(file), { recursive: true });
  const adapter = new PrismaBetterSQLite3({ url: `file:${file}`, timeout: options.busyTimeoutMs ?? 15_000 });
  const db = new PrismaClient({
    adapter,
    log: options.onQuery ? [{ emit: "event", level: "query" }] : [],
  });
  if (options.onQuery) {
    const onQuery = options.onQuery;
    (db as unknown as { $on(e: "query", cb: (ev: { query: string }) => void): void }).$on("query", (ev) => onQuery(ev.query));
  }
  // journal_mode is stored in the file; synchronous=NORMAL is safe in WAL mode and much faster.
  const [mode] = await db.$queryRawUnsafe<{ journal_mode: string }[]>("PRAGMA journal_mode = WAL");
  if (mode?.journal_mode.toLowerCase() !== "wal") {
    // Readers and the writer work side by side only in WAL mode (readConnection relies on it).
    await db.$disconnect();
    throw new Error(`SQLite could not put ${file} in WAL mode (journal_mode is ${mode?.journal_mode}): keep the database on a local file system`);
  }
  await db.$executeRawUnsafe("PRAGMA synchronous = NORMAL");
  await db.$executeRawUnsafe("PRAGMA foreign_keys = ON");
  files.set(db, file);
  return db;
}

const files = new WeakMap<Db, string>();
const readers = new WeakMap<Db, Database.Database>();

/**
 * A second, query-only better-sqlite3 connection to `db`'s file, opened on first use, for hot
 * read paths written in SQL that Prisma cannot express (full-text search). Its statements can be
 * prepared once and kept: Prisma's adapter prepares every statement on every call. In WAL mode
 * it reads committed data only and never waits for or blocks the writer.
 */
export function readConnection(db: Db): Database.Database {
  let reader = readers.get(db);
  if (!reader) {
    const file = files.get(db);
    if (!file) throw new Error("readConnection needs an open client made by createDb");
    reader = new Database(file, { fileMustExist: true, timeout: 15_000 });
    reader.pragma("query_only = ON");
    readers.set(db, reader);
  }
  return reader;
}

/** Closes the client and its read connection (if one was opened). */
export async function closeDb(db: Db): Promise<void> {
  readers.get(db)?.close();
  readers.delete(db);
  files.delete(db);
  await db.$disconnect();
}

/**
 * A transaction that takes SQLite's write lock before anything else. In WAL mode a transaction
 * that reads first and writes later fails at once with SQLITE_BUSY (no waiting) when another
 * process committed in between; one that starts with a write waits for the lock (busy timeout)
 * and then sees the latest data. The first statement writes nothing: it only begins the write.
 */
export function writeTransaction<T>(db: Db, fn: (tx: Prisma.TransactionClient) => Promise<T>): Promise<T> {
  return db.$transaction(async (tx) => {
    await tx.$executeRawUnsafe(`UPDATE "Lease" SET "name" = "name" WHERE 0`);
    return fn(tx);
  });
}
