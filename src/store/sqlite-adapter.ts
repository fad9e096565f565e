import { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3";
import type {
  IsolationLevel,
  SqlDriverAdapter,
  SqlDriverAdapterFactory,
  SqlQuery,
  SqlResultSet,
  Transaction,
  TransactionOptions,
} from "@prisma/driver-adapter-utils";
import type Database from "better-sqlite3";
import { turnIfDue } from "../ops/event-loop-turns.js";
import { ConnectionLock, type Release } from "./connection-lock.js";
import { cachingStatements } from "./statement-cache.js";

/** A COMMIT failed (disk full, I/O error, read-only file); the transaction was rolled back. */
export class CommitFailedError extends Error {
  override name = "CommitFailedError";
  constructor(cause: unknown) {
    super(`the database could not save the change, which was rolled back: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

/** A statement was sent on a transaction that had already ended (committed, rolled back, or aborted as stuck). */
export class TransactionClosedError extends Error {
  override name = "TransactionClosedError";
  constructor() {
    super("the transaction has already ended");
  }
}

/** What /health and /ready read about the writer, without waiting for it. */
export interface WriterStatus {
  /** How long the current transaction or statement has held the connection (null: free). */
  heldForMs: number | null;
  /** Callers waiting for the connection. */
  waiting: number;
  /** The connection was held longer than a waiter may wait: the writer is stuck. */
  stuck: boolean;
  /** The last commit or recovery failure, when no commit has succeeded since. */
  lastFailure: { at: Date; message: string } | null;
}

export interface SerialSqliteOptions {
  /** Path of the database file. */
  file: string;
  /** How long a statement waits for SQLite's lock (another process) and for this connection (another transaction), in ms. */
  busyTimeoutMs: number;
  /**
   * Plain reads (a SELECT outside any transaction) go to a second, query-only connection, so they
   * never wait for this process's writer (default true).
   */
  separateReader?: boolean;
  /** Per-connection settings (pragmas), run on every (re)opened connection. */
  setup: (client: Database.Database) => void;
  /** Told about every failed commit and every connection replaced. */
  onFailure?: (err: unknown, what: string) => void;
}

/**
 * How long one attempt blocks the thread in SQLite's own busy handler (it sleeps on the calling
 * thread, which is the event loop) before the wait goes on asynchronously; see withBusyRetry.
 */
export const SYNC_BUSY_WAIT_MS = 5;
/** The longest pause between two attempts to take SQLite's write lock. */
const MAX_BUSY_BACKOFF_MS = 25;
/** Statements whose read-only verdict is remembered (Prisma sends the same few hundred shapes). */
const READ_VERDICTS = 1_000;

/** A transaction takes SQLite's write lock at BEGIN, so none of its statements can meet SQLITE_BUSY later. */
const BEGIN: SqlQuery = { sql: "BEGIN IMMEDIATE", args: [], argTypes: [] };
const COMMIT: SqlQuery = { sql: "COMMIT", args: [], argTypes: [] };
const ROLLBACK: SqlQuery = { sql: "ROLLBACK", args: [], argTypes: [] };

/**
 * Prisma's driver adapter for our one SQLite connection, built over @prisma/adapter-better-sqlite3
 * (its value conversion and error mapping) with our own ownership of the connection:
 *
 * - The upstream adapter serialises transactions with a mutex that only its `commit()` and
 *   `rollback()` release. Prisma sends COMMIT as a statement first and calls `commit()` only when
 *   that succeeded, so a COMMIT that fails (SQLITE_IOERR_WRITE, SQLITE_FULL) never releases it and
 *   every later transaction waits forever. A failing BEGIN leaks it the same way.
 * - Statements outside a transaction do not wait for that mutex: they run on the same connection
 *   inside whatever transaction is open, and vanish with its rollback.
 *
 * Here every write and every transaction takes one ConnectionLock with a bounded wait; the
 * transaction runs COMMIT and ROLLBACK itself (`usePhantomQuery`), rolls back what a failed COMMIT
 * left open, and always releases. A connection that cannot leave its transaction is replaced.
 *
 * Two more things keep the event loop free while a sync writes (in this process or another):
 * - A plain read (a read-only SELECT outside any transaction) runs on a second, query-only
 *   connection and takes no lock. In WAL mode it never waits for a writer and sees every committed
 *   write; better-sqlite3 is synchronous, so a write that has returned is committed before any
 *   later read starts (read-your-writes holds).
 * - SQLite's busy handler sleeps on the calling thread. The writer's busy timeout is only
 *   SYNC_BUSY_WAIT_MS; beyond that, the wait for another process's write lock goes on with
 *   timers (withBusyRetry), up to `busyTimeoutMs`. Transactions BEGIN IMMEDIATE, which either takes
 *   the write lock or fails with SQLITE_BUSY having changed nothing, so that is the only place
 *   (with autocommit writes) where the wait happens.
 */
export class SerialSqliteAdapterFactory implements SqlDriverAdapterFactory {
  readonly provider = "sqlite" as const;
  readonly adapterName = "@prisma/adapter-better-sqlite3";
  readonly lock: ConnectionLock;
  /**
   * Reads on the query-only connection take turns too: the lock hands over on the next turn of
   * the event loop, so Prisma maps one query's rows per turn instead of every concurrent query's
   * rows in one go (which held /health for seconds under a few heavy requests).
   */
  readonly readLock: ConnectionLock;
  lastFailure: { at: Date; message: string } | null = null;

  constructor(readonly options: SerialSqliteOptions) {
    this.lock = new ConnectionLock(options.busyTimeoutMs);
    this.readLock = new ConnectionLock(options.busyTimeoutMs);
  }

  #adapter: SerialSqliteAdapter | null = null;

  async connect(): Promise<SqlDriverAdapter> {
    const writer = await this.openConnection();
    const reader = this.options.separateReader === false ? null : await this.openReader().catch(async (err: unknown) => {
      await writer.adapter.dispose();
      throw err;
    });
    this.#adapter = new SerialSqliteAdapter(this, writer, reader);
    return this.#adapter;
  }

  /**
   * Proves that this process can write now: waits at most `waitMs` for the connection and for
   * SQLite's write lock, then commits a real (unchanging) write to the file. A success clears
   * `lastFailure`; a failure records it and throws.
   */
  async probeWrite(waitMs: number): Promise<"ok" | "busy"> {
    if (!this.#adapter) throw new Error("the database client is not connected");
    return this.#adapter.probeWrite(waitMs);
  }

  status(): WriterStatus {
    const heldForMs = this.lock.heldForMs();
    return { heldForMs, waiting: this.lock.waiting, stuck: heldForMs !== null && heldForMs >= this.lock.stuckAfterMs, lastFailure: this.lastFailure };
  }

  /** A new upstream adapter (one better-sqlite3 connection) with our settings applied. */
  async openConnection(): Promise<Connection> {
    return this.#open(SYNC_BUSY_WAIT_MS, this.options.setup);
  }

  /** The query-only connection for plain reads (WAL readers wait for nobody; the timeout covers recovery). */
  openReader(): Promise<Connection> {
    return this.#open(this.options.busyTimeoutMs, (client) => client.pragma("query_only = ON"));
  }

  async #open(timeout: number, setup: (client: Database.Database) => void): Promise<Connection> {
    const adapter = await new PrismaBetterSQLite3({ url: `file:${this.options.file}`, timeout }).connect();
    // The upstream adapter keeps its better-sqlite3 handle in a public field; we need it to see
    // whether a failed COMMIT left the transaction open.
    const client = (adapter as unknown as { client?: Database.Database }).client;
    if (!client || typeof client.prepare !== "function" || typeof client.inTransaction !== "boolean") {
      await adapter.dispose();
      throw new Error("@prisma/adapter-better-sqlite3 no longer exposes its connection; update src/store/sqlite-adapter.ts");
    }
    // The upstream adapter prepares every statement afresh; it gets the connection with
    // prepared statements kept (our own uses of `client` keep the plain connection).
    (adapter as unknown as { client: Database.Database }).client = cachingStatements(client);
    try {
      // The first statement on a new connection reads the file, and a connection closing in
      // another process (checkpointing and removing the WAL) or a migration holds it for a moment:
      // the setup pragmas (all idempotent) wait for that with timers, like any other statement.
      await withBusyRetry(async () => setup(client), this.options.busyTimeoutMs);
    } catch (err) {
      await adapter.dispose();
      throw err;
    }
    return { adapter, client };
  }

  failed(err: unknown, what: string): void {
    this.lastFailure = { at: new Date(), message: `${what}: ${(err as Error)?.message ?? String(err)}` };
    this.options.onFailure?.(err, what);
  }
}

/**
 * SQLite result codes that say the file cannot be written or read (not that the statement was
 * wrong): https://www.sqlite.org/rescode.html. better-sqlite3 names extended codes, e.g.
 * SQLITE_IOERR_WRITE; the upstream adapter passes these errors through unconverted.
 */
export function isStorageError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === "string" && /^SQLITE_(IOERR|FULL|READONLY|CANTOPEN|CORRUPT|NOTADB|PERM)/.test(code);
}

interface Connection {
  adapter: SqlDriverAdapter;
  client: Database.Database;
}

/**
 * Busy codes that mean "another connection holds a lock; this statement did nothing": plain
 * SQLITE_BUSY, another connection recovering the WAL index, and a lock wait that timed out.
 * SQLITE_BUSY_SNAPSHOT is left out: it means a read transaction's snapshot is stale, which
 * waiting does not cure.
 */
const BUSY_CODES = new Set(["SQLITE_BUSY", "SQLITE_BUSY_RECOVERY", "SQLITE_BUSY_TIMEOUT"]);

/** SQLite could not take a lock because another connection (usually another process) holds it. */
export function isBusyError(err: unknown): boolean {
  // The upstream adapter wraps SQLITE_BUSY as a DriverAdapterError whose cause keeps the code.
  const code = (err as { code?: unknown })?.code ?? (err as { cause?: { originalCode?: unknown } })?.cause?.originalCode;
  return typeof code === "string" && BUSY_CODES.has(code);
}

/**
 * Runs `attempt` (which must change nothing when it fails with SQLITE_BUSY: an autocommit
 * statement, BEGIN IMMEDIATE) until it succeeds or `waitMs` has passed, pausing between attempts
 * with timers so the event loop keeps serving while another process holds the write lock.
 */
export async function withBusyRetry<T>(attempt: () => Promise<T>, waitMs: number, now: () => number = () => performance.now()): Promise<T> {
  const deadline = now() + waitMs;
  for (let pause = 1; ; pause = Math.min(MAX_BUSY_BACKOFF_MS, pause * 2)) {
    try {
      return await attempt();
    } catch (err) {
      const left = deadline - now();
      if (!isBusyError(err) || left <= 0) throw err;
      await new Promise((resolve) => setTimeout(resolve, Math.min(pause, left)));
    }
  }
}

/** Whether `sql` only reads (checked by SQLite itself on the reader, then remembered). */
class ReadClassifier {
  readonly #verdicts = new Map<string, boolean>();

  constructor(private readonly reader: Database.Database) {}

  isPlainRead(sql: string): boolean {
    let verdict = this.#verdicts.get(sql);
    if (verdict === undefined) {
      verdict = this.#judge(sql);
      if (this.#verdicts.size >= READ_VERDICTS) this.#verdicts.clear();
      this.#verdicts.set(sql, verdict);
    }
    return verdict;
  }

  #judge(sql: string): boolean {
    // A PRAGMA or ATTACH that reads would still act on the reader's own connection: only queries.
    if (!/^\s*(SELECT|WITH)\b/i.test(sql)) return false;
    try {
      // sqlite3_stmt_readonly: false for INSERT … RETURNING, a CTE that writes, and the like.
      return this.reader.prepare(sql).readonly;
    } catch {
      // Not valid here: the writer reports the error as before.
      return false;
    }
  }
}

class SerialSqliteAdapter implements SqlDriverAdapter {
  readonly provider = "sqlite" as const;
  readonly adapterName: string;

  readonly #reads: ReadClassifier | null;

  constructor(
    private readonly factory: SerialSqliteAdapterFactory,
    private connection: Connection,
    private readonly reader: Connection | null,
  ) {
    this.adapterName = factory.adapterName;
    this.#reads = reader ? new ReadClassifier(reader.client) : null;
  }

  async queryRaw(query: SqlQuery): Promise<SqlResultSet> {
    // Let the event loop turn first when it is due: Prisma maps rows between statements without
    // ever yielding, so a long request would otherwise hold every other one.
    await turnIfDue();
    const reader = this.reader;
    if (reader && this.#reads!.isPlainRead(query.sql)) return this.factory.readLock.run(() => reader.adapter.queryRaw(query));
    return this.factory.lock.run(() => this.#noting(() => this.#retryingBusy(() => this.connection.adapter.queryRaw(query))));
  }

  async executeRaw(query: SqlQuery): Promise<number> {
    await turnIfDue();
    return this.factory.lock.run(() => this.#noting(() => this.#retryingBusy(() => this.connection.adapter.executeRaw(query))));
  }

  async executeScript(script: string): Promise<void> {
    await turnIfDue();
    // Several statements: a retry could repeat the ones that ran, so SQLite waits (on the thread).
    return this.factory.lock.run(() =>
      this.#noting(async () => {
        const { client } = this.connection;
        client.pragma(`busy_timeout = ${this.factory.options.busyTimeoutMs}`);
        try {
          return await this.connection.adapter.executeScript(script);
        } finally {
          client.pragma(`busy_timeout = ${SYNC_BUSY_WAIT_MS}`);
        }
      }),
    );
  }

  /** An autocommit statement that met SQLITE_BUSY changed nothing: it is tried again. */
  #retryingBusy<T>(fn: () => Promise<T>): Promise<T> {
    return withBusyRetry(fn, this.factory.options.busyTimeoutMs);
  }

  /** A statement outside a transaction commits by itself: its storage failures count as failed commits. */
  async #noting<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (isStorageError(err)) this.failed(err, "write");
      throw err;
    }
  }

  async startTransaction(isolationLevel?: IsolationLevel): Promise<Transaction> {
    let tx: SerialTransaction | undefined;
    const release = await this.factory.lock.acquire(() => void tx?.abort());
    try {
      // SQLite transactions are serializable; anything else is refused as upstream does.
      if (isolationLevel && isolationLevel !== "SERIALIZABLE") return await this.connection.adapter.startTransaction(isolationLevel);
      await this.recoverIfStillInTransaction();
      await this.#retryingBusy(() => this.connection.adapter.executeRaw(BEGIN));
    } catch (err) {
      release();
      throw err;
    }
    tx = new SerialTransaction(this, release);
    return tx;
  }

  async probeWrite(waitMs: number): Promise<"ok" | "busy"> {
    const release = await this.factory.lock.acquire(undefined, waitMs);
    try {
      await this.recoverIfStillInTransaction();
      const { client } = this.connection;
      await withBusyRetry(async () => client.exec("BEGIN IMMEDIATE"), waitMs);
      try {
        // Setting user_version rewrites page 1 (it is unused here; the value stays the same).
        client.pragma(`user_version = ${client.pragma("user_version", { simple: true })}`);
        client.exec("COMMIT");
      } finally {
        if (client.inTransaction) client.exec("ROLLBACK");
      }
      this.commitSucceeded();
      return "ok";
    } catch (err) {
      // Another process holds SQLite's write lock: our writes would wait for it, not fail.
      if ((err as { code?: unknown }).code === "SQLITE_BUSY") return "busy";
      if (isStorageError(err)) this.failed(err, "write probe");
      throw err;
    } finally {
      release();
    }
  }

  getConnectionInfo() {
    return this.connection.adapter.getConnectionInfo?.() ?? { supportsRelationJoins: false };
  }

  async dispose(): Promise<void> {
    await this.reader?.adapter.dispose();
    await this.connection.adapter.dispose();
  }

  /** The statements of a transaction run on the connection it holds. */
  get current(): Connection {
    return this.connection;
  }

  commitSucceeded(): void {
    this.factory.lastFailure = null;
  }

  failed(err: unknown, what: string): void {
    this.factory.failed(err, what);
  }

  /**
   * Leaves whatever transaction the connection is still in (after a failed COMMIT or ROLLBACK, or
   * a forced abort); a connection that cannot leave it is closed and replaced.
   */
  async recoverIfStillInTransaction(): Promise<void> {
    const { client } = this.connection;
    if (client.open && !client.inTransaction) return;
    try {
      if (client.open) client.prepare("ROLLBACK").run();
    } catch (err) {
      this.failed(err, "rollback after a failed transaction");
    }
    if (client.open && !client.inTransaction) return;
    this.failed(new Error("the connection could not leave its transaction"), "replacing the database connection");
    await this.connection.adapter.dispose().catch(() => undefined);
    this.connection = await this.factory.openConnection();
  }
}

class SerialTransaction implements Transaction {
  readonly provider = "sqlite" as const;
  readonly adapterName: string;
  readonly options: TransactionOptions = { usePhantomQuery: true };
  #closed = false;

  constructor(
    private readonly owner: SerialSqliteAdapter,
    private readonly release: Release,
  ) {
    this.adapterName = owner.adapterName;
  }

  queryRaw(query: SqlQuery): Promise<SqlResultSet> {
    if (this.#closed) return Promise.reject(new TransactionClosedError());
    return this.owner.current.adapter.queryRaw(query);
  }

  executeRaw(query: SqlQuery): Promise<number> {
    if (this.#closed) return Promise.reject(new TransactionClosedError());
    return this.owner.current.adapter.executeRaw(query);
  }

  async commit(): Promise<void> {
    if (this.#closed) throw new TransactionClosedError();
    this.#closed = true;
    try {
      await this.owner.current.adapter.executeRaw(COMMIT);
      this.owner.commitSucceeded();
    } catch (err) {
      this.owner.failed(err, "commit");
      await this.owner.recoverIfStillInTransaction().catch((e: unknown) => this.owner.failed(e, "reopening the database connection"));
      throw new CommitFailedError(err);
    } finally {
      this.release();
    }
  }

  async rollback(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      if (this.owner.current.client.inTransaction) await this.owner.current.adapter.executeRaw(ROLLBACK);
    } catch (err) {
      this.owner.failed(err, "rollback");
      await this.owner.recoverIfStillInTransaction().catch((e: unknown) => this.owner.failed(e, "reopening the database connection"));
    } finally {
      this.release();
    }
  }

  /** Ends a transaction that held the connection too long: later statements on it fail. */
  async abort(): Promise<void> {
    if (this.#closed) return;
    this.owner.failed(new Error("a transaction held the database connection too long"), "aborting a stuck transaction");
    await this.rollback();
  }
}
