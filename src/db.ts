import { statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import Database from "better-sqlite3";
import type pg from "pg";
import { QueryCompiler } from "@prisma/client/runtime/query_compiler_bg.sqlite.mjs";
import { PrismaClient } from "./generated/prisma/client.js";
import { ConfigError, redactPassword } from "./config.js";
import { errorChain } from "./error-chain.js";
import { makeDirectory, migrate } from "./store/migrate.js";
import { keepQueryPlans } from "./store/query-plans.js";
import { usePlainPrismaPromises } from "./store/prisma-promises.js";
import { ConnectionLockTimeoutError } from "./store/connection-lock.js";
import { CommitFailedError, isStorageError, SerialSqliteAdapterFactory, type WriterStatus } from "./store/sqlite-adapter.js";

export { CommitFailedError, ConnectionLockTimeoutError };

export type Db = PrismaClient;
import { Prisma } from "./generated/prisma/client.js";
export { Prisma };

keepQueryPlans(QueryCompiler);

/** Which database a DATABASE_URL names: `postgresql://` and `postgres://` are PostgreSQL; anything else is a SQLite `file:` URL. */
export type DatabaseKind = "sqlite" | "postgresql";

export function databaseKind(databaseUrl: string): DatabaseKind {
  return /^postgres(ql)?:\/\//i.test(databaseUrl) ? "postgresql" : "sqlite";
}

/** Path of the SQLite file behind a `file:` URL, resolved against the working directory. */
export function sqlitePath(databaseUrl: string): string {
  const path = databaseUrl.replace(/^file:/, "").replace(/\?.*$/, "");
  return resolve(path);
}

/**
 * A Prisma client (either generated one) made by `make` with Prisma's query events on when
 * `onQuery` is given, and each query's SQL passed to it.
 */
export function withQueryLog<T>(onQuery: ((sql: string) => void) | undefined, make: (log: { emit: "event"; level: "query" }[]) => T): T {
  const db = make(onQuery ? [{ emit: "event", level: "query" }] : []);
  if (onQuery) (db as unknown as { $on(e: "query", cb: (ev: { query: string }) => void): void }).$on("query", (ev) => onQuery(ev.query));
  return db;
}

export interface DbOptions {
  /** Log every SQL statement to this callback (tests count queries with it). */
  onQuery?: (sql: string) => void;
  /**
   * How long a statement waits for another process's write lock, and for this client's connection
   * while another transaction holds it, in ms. A transaction that holds the connection longer is
   * taken to be stuck and is rolled back.
   */
  busyTimeoutMs?: number;
  /** Told about every failed commit and every replaced connection (the service logs them). */
  onWriteFailure?: (err: unknown, what: string) => void;
  /**
   * Plain reads (SELECTs outside a transaction) on a second, query-only connection that never
   * waits for this client's writer (default true; false only to show what it prevents).
   */
  separateReader?: boolean;
  /** PostgreSQL: the most pooled connections this client opens (DATABASE_POOL_SIZE; default 10). */
  poolSize?: number;
}

/**
 * One Prisma client: over better-sqlite3 for a `file:` URL (the database file is in WAL mode), over
 * node-postgres for a `postgresql://` URL (see src/store/postgres-client.ts).
 */
export async function createDb(databaseUrl: string, options: DbOptions = {}): Promise<Db> {
  if (databaseKind(databaseUrl) === "postgresql") {
    // Loaded only when asked for, so a SQLite deployment never loads the second client.
    const { createPostgresClient } = await import("./store/postgres-client.js");
    const db = await createPostgresClient(databaseUrl, options);
    kinds.set(db, "postgresql");
    postgresUrls.set(db, databaseUrl);
    return db;
  }
  const file = sqlitePath(databaseUrl);
  makeDirectory(dirname(file));
  const adapter = new SerialSqliteAdapterFactory({
    file,
    busyTimeoutMs: options.busyTimeoutMs ?? 15_000,
    separateReader: options.separateReader,
    // Per connection, so a replaced connection gets them too. synchronous=NORMAL is safe in WAL
    // mode and much faster.
    setup: (client) => {
      client.pragma("synchronous = NORMAL");
      client.pragma("foreign_keys = ON");
    },
    onFailure: options.onWriteFailure,
  });
  const db = withQueryLog(options.onQuery, (log) => new PrismaClient({ adapter, log, transactionOptions: transactionWaits(options.busyTimeoutMs) }));
  usePlainPrismaPromises(db);
  // journal_mode is stored in the file.
  const [mode] = await db.$queryRawUnsafe<{ journal_mode: string }[]>("PRAGMA journal_mode = WAL");
  if (mode?.journal_mode.toLowerCase() !== "wal") {
    // Readers and the writer work side by side only in WAL mode (readConnection relies on it).
    await db.$disconnect();
    throw new Error(`SQLite could not put ${file} in WAL mode (journal_mode is ${mode?.journal_mode}): keep the database on a local file system`);
  }
  files.set(db, file);
  adapters.set(db, adapter);
  kinds.set(db, "sqlite");
  return db;
}

/**
 * How long Prisma lets an interactive transaction wait to begin and then run. Its defaults (2 s to
 * begin, 5 s to run) are shorter than the waits the stores are built for: on SQLite, beginning waits
 * for this process's connection and then for another process's write lock, each up to
 * `busyTimeoutMs`; on PostgreSQL, writeTransaction's advisory lock is taken inside the transaction
 * and waits up to lock_timeout (= `busyTimeoutMs`). With the defaults a finished description was
 * thrown away after 2 s behind a sync's write (P2028).
 */
export function transactionWaits(busyTimeoutMs = 15_000): { maxWait: number; timeout: number } {
  return { maxWait: 2 * busyTimeoutMs + 1_000, timeout: busyTimeoutMs + 10_000 };
}

/**
 * Creates the database if needed, applies pending migrations and opens the client. A DATABASE_URL
 * that cannot be opened (a folder, a file that is not SQLite, a place that cannot be created or
 * written) is a ConfigError that names the variable.
 */
export async function openDatabase(
  databaseUrl: string,
  options: DbOptions & { allowUnfinishedCopy?: boolean } = {},
): Promise<{ db: Db; applied: string[] }> {
  let opened: { db: Db; applied: string[] };
  if (databaseKind(databaseUrl) === "postgresql") {
    try {
      // node-postgres is loaded for a PostgreSQL store only (as createDb loads its client).
      const { migratePostgres } = await import("./store/migrate-postgres.js");
      const { applied } = await migratePostgres(databaseUrl);
      opened = { db: await createDb(databaseUrl, options), applied };
    } catch (err) {
      throw postgresOpenFailure(databaseUrl, err) ?? err;
    }
  } else {
    try {
      const { applied } = migrate(sqlitePath(databaseUrl));
      opened = { db: await createDb(databaseUrl, options), applied };
    } catch (err) {
      throw openFailure(databaseUrl, err) ?? err;
    }
  }
  if (!options.allowUnfinishedCopy) await refuseUnfinishedCopy(opened.db, databaseUrl);
  return opened;
}

/** The Lease row that marks a database as the target of `artdesc db copy` until the copy is verified. */
export const COPY_MARKER = "artdesc-db-copy";

/**
 * A database a `db copy` is still filling (interrupted, or not verified) looks whole to everything
 * else: every work without its current description, tables missing. Nothing but the copy may open it.
 */
async function refuseUnfinishedCopy(db: Db, databaseUrl: string): Promise<void> {
  const marker = await db.lease.findUnique({ where: { name: COPY_MARKER }, select: { holder: true } });
  if (!marker) return;
  await closeDb(db);
  throw new ConfigError([
    `DATABASE_URL=${JSON.stringify(redactPassword(databaseUrl))}: this database is the target of an artdesc db copy that did not finish (or did not verify): run the same db copy again to finish it, or copy into a new, empty database`,
  ]);
}

/**
 * Connection errors that mean "this URL does not lead to a database we may use": no server, an
 * unknown host, a database that does not exist, a refused login. SQLSTATE classes 08 (connection),
 * 28 (authorization) and 3D000 (no such database).
 */
const POSTGRES_UNOPENABLE = /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENOENT|08...|28...|3D000)$/;

/** An error opening or migrating the database that means DATABASE_URL names nothing usable (a usage error, exit 2), as a ConfigError; null for any other. */
export function databaseOpenFailure(databaseUrl: string, err: unknown): ConfigError | null {
  return databaseKind(databaseUrl) === "postgresql" ? postgresOpenFailure(databaseUrl, err) : openFailure(databaseUrl, err);
}

function postgresOpenFailure(databaseUrl: string, err: unknown): ConfigError | null {
  const code = (err as { code?: unknown })?.code;
  if (typeof code !== "string" || !POSTGRES_UNOPENABLE.test(code)) return null;
  return new ConfigError([`DATABASE_URL=${JSON.stringify(redactPassword(databaseUrl))}: cannot open the PostgreSQL database (${code}: ${(err as Error).message})`]);
}

/** File-system and SQLite codes that mean "this path cannot hold our database". */
const UNOPENABLE = /^(EACCES|EPERM|ENOTDIR|EISDIR|EROFS|ELOOP|ENAMETOOLONG|SQLITE_CANTOPEN|SQLITE_NOTADB|SQLITE_READONLY|SQLITE_PERM|SQLITE_AUTH)/;

function openFailure(databaseUrl: string, err: unknown): ConfigError | null {
  const code = (err as { code?: unknown })?.code;
  const file = sqlitePath(databaseUrl);
  const path = (err as { path?: unknown })?.path;
  // A file-system error about the database's own path (or a folder above it), whatever its code.
  const aboutOurPath = typeof path === "string" && (file === path || file.startsWith(`${path}/`));
  if (typeof code !== "string" || !(UNOPENABLE.test(code) || aboutOurPath)) return null;
  const message = (err as Error).message;
  const reason = message.startsWith(code) ? message : `${code}: ${message}`;
  return new ConfigError([`DATABASE_URL=${JSON.stringify(databaseUrl)}: cannot open ${file} as a SQLite database (${reason})`]);
}

const files = new WeakMap<Db, string>();
const kinds = new WeakMap<Db, DatabaseKind>();

/**
 * Makes `alias` (a wrapper of `db`, such as a test's Proxy) count as `db` for everything this module
 * keeps per client: its kind, file, adapter, readers. Returns the alias.
 */
export function aliasDb(alias: Db, db: Db): Db {
  for (const map of [files, kinds, readers, postgresUrls, postgresProbes, adapters, probes] as WeakMap<Db, unknown>[]) {
    if (map.has(db)) map.set(alias, map.get(db));
  }
  return alias;
}

/** The database behind a client made by createDb. */
export function kindOf(db: Db): DatabaseKind {
  const kind = kinds.get(db);
  if (!kind) throw new Error("this needs an open client made by createDb");
  return kind;
}
const readers = new WeakMap<Db, Database.Database>();
const postgresUrls = new WeakMap<Db, string>();
const postgresProbes = new WeakMap<Db, Promise<pg.Client>>();
const adapters = new WeakMap<Db, SerialSqliteAdapterFactory>();
/** The health probe's own connection, and the file it opened (device and inode). */
const probes = new WeakMap<Db, { connection: Database.Database; dev: number; ino: number }>();

/**
 * A SQLite-only operation (the serial writer's status and probes, the raw read connection) was
 * asked of a PostgreSQL client: that part of the store has no PostgreSQL version yet.
 */
export class SqliteOnlyError extends Error {
  constructor(readonly operation: string) {
    super(`${operation} works on SQLite only; this client is connected to PostgreSQL`);
    this.name = "SqliteOnlyError";
  }
}

function requireSqlite(db: Db, operation: string): void {
  if (kinds.get(db) === "postgresql") throw new SqliteOnlyError(operation);
}

function adapterOf(db: Db): SerialSqliteAdapterFactory {
  requireSqlite(db, "the SQLite writer");
  const adapter = adapters.get(db);
  if (!adapter) throw new Error("this needs an open client made by createDb");
  return adapter;
}

/**
 * The database cannot take this request now (a failing disk, a connection busy past its limit):
 * an operational condition to answer with "try again later", not a bug. Looks through `cause`.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  return errorChain(err).some(
    (e) =>
      e instanceof CommitFailedError ||
      e instanceof ConnectionLockTimeoutError ||
      isStorageError(e) ||
      // P2028: a transaction that could not begin, or ran out of time, within transactionWaits.
      (e instanceof Prisma.PrismaClientKnownRequestError && e.code === "P2028") ||
      isPostgresUnavailable(e),
  );
}

/**
 * PostgreSQL cannot be reached or is not taking work now. Prisma reports the driver's code as its
 * own: a socket error (EPIPE when the server went away mid-connection, ECONNREFUSED or ENOENT for a
 * Unix socket when it is down), a pool that gave no connection in time (P2024), or SQLSTATE class
 * 08 (connection), 57P01-57P03 (shutting down, starting up) or 53300 (too many connections).
 */
// P2037 and SQLSTATE 53300: the server has no connection left (too many processes' pools).
const POSTGRES_UNAVAILABLE = /^(ECONNREFUSED|ECONNRESET|EPIPE|ENOENT|ETIMEDOUT|EHOSTUNREACH|P1001|P1002|P1017|P2024|P2037|08...|57P0[123]|53300)$/;

function isPostgresUnavailable(err: unknown): boolean {
  // A raw query's failure (P2010) carries the SQLSTATE in meta instead (dataVersion, the probes, src/store/sql.ts statements).
  return err instanceof Prisma.PrismaClientKnownRequestError && (POSTGRES_UNAVAILABLE.test(err.code) || POSTGRES_UNAVAILABLE.test(postgresSqlState(err) ?? ""));
}

/**
 * The writer's state as it is now; never waits. On PostgreSQL there is no serial writer in this
 * process: a pooled connection is never held past Prisma's transaction timeout (it rolls the
 * transaction back), so the status is always "free, not stuck".
 */
export function writerStatus(db: Db): WriterStatus {
  if (kinds.get(db) === "postgresql") return { heldForMs: null, waiting: 0, stuck: false, lastFailure: null };
  return adapterOf(db).status();
}

/**
 * Commits a real write within `waitMs` (for readiness): "busy" when another process holds
 * SQLite's write lock (on PostgreSQL: writeTransaction's advisory lock, or every pooled connection
 * stays busy past `waitMs`); throws when this client cannot write (stuck connection, failing disk,
 * a server that is down or read-only).
 */
export function probeWrite(db: Db, waitMs: number): Promise<"ok" | "busy"> {
  if (kinds.get(db) === "postgresql") return probePostgresWrite(db, waitMs);
  return adapterOf(db).probeWrite(waitMs);
}

/** PostgreSQL's SQLSTATE behind a failed raw query (P2010 carries the driver adapter's error in meta). */
function postgresSqlState(err: Prisma.PrismaClientKnownRequestError): string | undefined {
  const cause = (err.meta as { driverAdapterError?: { cause?: { code?: unknown } } } | undefined)?.driverAdapterError?.cause;
  return typeof cause?.code === "string" ? cause.code : undefined;
}

async function probePostgresWrite(db: Db, waitMs: number): Promise<"ok" | "busy"> {
  const ms = Math.max(1, Math.round(waitMs));
  try {
    return await db.$transaction(
      async (tx) => {
        await tx.$executeRawUnsafe(`SET LOCAL lock_timeout = ${ms}`);
        const [lock] = await tx.$queryRaw<{ free: boolean }[]>`SELECT pg_try_advisory_xact_lock(${WRITE_LOCK_KEY}::bigint) AS free`;
        if (!lock?.free) return "busy" as const;
        // Rewrites the commit counter's row with its own value (readers see no change) and commits.
        await tx.$executeRawUnsafe(`UPDATE artdesc_data_version SET version = version WHERE id = 1`);
        return "ok" as const;
      },
      { maxWait: ms, timeout: ms * 4 },
    );
  } catch (err) {
    // No pooled connection within waitMs (P2028), or the counter's row stayed locked (SQLSTATE 55P03, lock_not_available).
    if (err instanceof Prisma.PrismaClientKnownRequestError && (err.code === "P2028" || postgresSqlState(err) === "55P03")) return "busy";
    throw err;
  }
}

/**
 * Reads the database header through a connection of its own that gives up after 200 ms: never
 * waits for this process's writer, and never blocks the event loop for long. On PostgreSQL a
 * `SELECT 1` on a connection of its own (not the pool's, which busy requests may all hold) that
 * gives up after PROBE_TIMEOUT_MS; the answer is then a promise.
 */
export function probeRead(db: Db): void | Promise<void> {
  if (kinds.get(db) === "postgresql") return probePostgresRead(db);
  const file = files.get(db);
  if (!file) throw new Error("probeRead needs an open client made by createDb");
  let probe = probes.get(db);
  if (!probe) {
    const connection = new Database(file, { fileMustExist: true, timeout: 200 });
    connection.pragma("query_only = ON");
    const { dev, ino } = statSync(file);
    probe = { connection, dev, ino };
    probes.set(db, probe);
  }
  // An open connection keeps reading a file that was deleted or replaced (a restore by copying a
  // new file in): this process's connections still hold the old one, so the process is not healthy.
  const now = statSync(file, { throwIfNoEntry: false });
  if (!now || now.dev !== probe.dev || now.ino !== probe.ino) {
    throw new Error(`the database file ${file} was ${now ? "replaced" : "deleted"} while this process had it open: restart the process`);
  }
  probe.connection.pragma("schema_version");
}

/** How long the PostgreSQL read probe waits to connect, and for its answer. */
const PROBE_TIMEOUT_MS = 1_000;

async function probePostgresRead(db: Db): Promise<void> {
  let probe = postgresProbes.get(db);
  if (!probe) {
    const url = postgresUrls.get(db);
    if (!url) throw new Error("probeRead needs an open client made by createDb");
    const { default: pgModule } = await import("pg");
    const client = new pgModule.Client({ connectionString: url, connectionTimeoutMillis: PROBE_TIMEOUT_MS, query_timeout: PROBE_TIMEOUT_MS });
    // A connection lost between probes: the next probe fails and opens a new one.
    client.on("error", () => {});
    probe = client.connect().then(() => client);
    postgresProbes.set(db, probe);
  }
  try {
    await (await probe).query("SELECT 1");
  } catch (err) {
    // The next probe opens a new connection.
    if (postgresProbes.get(db) === probe) postgresProbes.delete(db);
    void probe.then((c) => c.end()).catch(() => {});
    throw err;
  }
}

/**
 * A query-only better-sqlite3 connection to `db`'s file, opened on first use, for hot read paths
 * written in SQL that Prisma cannot express (full-text search). It is not the one Prisma's plain
 * reads use: that one returns integers as BigInt, as Prisma's value conversion expects. Its statements can be
 * prepared once and kept: Prisma's adapter prepares every statement on every call. In WAL mode
 * it reads committed data only and never waits for or blocks the writer.
 */
export function readConnection(db: Db): Database.Database {
  requireSqlite(db, "readConnection");
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
  const postgresProbe = postgresProbes.get(db);
  postgresProbes.delete(db);
  postgresUrls.delete(db);
  if (postgresProbe) await postgresProbe.then((c) => c.end()).catch(() => {});
  readers.get(db)?.close();
  readers.delete(db);
  probes.get(db)?.connection.close();
  probes.delete(db);
  adapters.delete(db);
  files.delete(db);
  kinds.delete(db);
  await db.$disconnect();
}

/**
 * A transaction that takes SQLite's write lock before anything else. In WAL mode a transaction
 * that reads first and writes later fails at once with SQLITE_BUSY (no waiting) when another
 * process committed in between; one that takes the lock first waits for it and then sees the
 * latest data. Every transaction of our adapter begins IMMEDIATE (see sqlite-adapter.ts), so on
 * SQLite this is `$transaction` under a name that says what callers rely on. On PostgreSQL it takes
 * one advisory lock first, so write transactions take turns there too.
 */
export function writeTransaction<T>(db: Db, fn: (tx: Prisma.TransactionClient) => Promise<T>): Promise<T> {
  if (kinds.get(db) !== "postgresql") return db.$transaction(fn);
  // PostgreSQL's READ COMMITTED lets two transactions read the same state and both write on it;
  // one transaction-scoped advisory lock makes write transactions take turns, as on SQLite.
  return db.$transaction(async (tx) => {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(${WRITE_LOCK_KEY}::bigint)`;
    return fn(tx);
  });
}

/** The advisory lock key behind writeTransaction on PostgreSQL ("artdesc" in ASCII). */
const WRITE_LOCK_KEY = 0x61727464657363n;
