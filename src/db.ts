import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3";
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
  await db.$queryRawUnsafe("PRAGMA journal_mode = WAL");
  await db.$executeRawUnsafe("PRAGMA synchronous = NORMAL");
  await db.$executeRawUnsafe("PRAGMA foreign_keys = ON");
  return db;
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
