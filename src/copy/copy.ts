import { createHash } from "node:crypto";
import { hostname } from "node:os";
import { COPY_MARKER, type Db, kindOf, Prisma } from "../db.js";
import { getDatamodel } from "../generated/pothos-types.js";
import { rebuildSearchIndex } from "../search/search.js";
import { compareTables, TableHash, type TableVerdict } from "./hash.js";
import { type CopyPlan, copyPlan, type DataModel, type TablePlan } from "./plan.js";

/**
 * `artdesc db copy`: moves every table of the data model from one open store to another (SQLite or
 * PostgreSQL either way), keeping primary keys; the I/O around the pure plan (plan.ts) and hash
 * (hash.ts).
 *
 * Resume: the target holds a marker (a Lease row named COPY_MARKER whose holder is the source's
 * identity) from the first row copied until the copy is verified. Each batch is one transaction, and
 * each table is copied in key order, so after a kill the target holds whole batches only: a rerun
 * finds its own marker, starts each integer-keyed table after the target's largest key, and skips
 * any key already there (text keys, which the two stores sort differently).
 */

/** The plan for this build's schema. */
export function schemaPlan(): CopyPlan {
  return copyPlan(getDatamodel().datamodel as unknown as DataModel);
}

// COPY_MARKER: the Lease row that marks a target as being filled by a copy (leases are otherwise
// not copied); openDatabase refuses to open such a target for anything but the copy.
export { COPY_MARKER };

/** The target has rows and is not an interrupted copy of this source. */
export class TargetNotEmptyError extends Error {
  constructor(readonly reason: string) {
    super(`the target database is not empty: ${reason}. Copy into a new, empty database (artdesc creates its tables)`);
    this.name = "TargetNotEmptyError";
  }
}

/** --to names the database DATABASE_URL names. */
export class SameDatabaseError extends Error {
  constructor() {
    super("the target is the source database itself (same migration history): nothing to copy");
    this.name = "SameDatabaseError";
  }
}

/** A value the target store cannot hold (PostgreSQL text cannot contain NUL characters). */
export class UnrepresentableValueError extends Error {
  constructor(
    readonly model: string,
    readonly key: unknown,
    readonly column: string,
    problem: string,
  ) {
    super(`${model} ${String(key)}: ${column} ${problem}; fix the row in the source and run the copy again`);
    this.name = "UnrepresentableValueError";
  }
}

type Row = Record<string, unknown>;
type Client = Db | Prisma.TransactionClient;

/** The model methods the copy calls, the same on both generated clients. */
interface Delegate {
  findMany(args: object): Promise<Row[]>;
  createMany(args: { data: Row[] }): Promise<{ count: number }>;
  count(args?: object): Promise<number>;
  aggregate(args: object): Promise<{ _max: Row }>;
  update(args: object): Promise<unknown>;
}

const delegate = (db: Client, t: TablePlan) => (db as unknown as Record<string, Delegate>)[t.delegate]!;

/** Model and column names go into SQL text (sequences, deferred keys): schema identifiers, never input. */
function ident(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`unexpected identifier ${JSON.stringify(name)}`);
  return name;
}
const tableName = (t: TablePlan) => ident(t.model);

export interface CopyOptions {
  /** Rows per read and per write transaction. */
  batch: number;
  /** One line per batch and per table (progress, to stderr). */
  progress: (line: string) => void;
  plan?: CopyPlan;
}

export interface TableCopy {
  model: string;
  sourceRows: number;
  /** Rows inserted by this run. */
  copied: number;
  /** Rows a previous, interrupted run had copied. */
  present: number;
}

export interface CopyResult {
  resumed: boolean;
  tables: TableCopy[];
  verdicts: TableVerdict[];
  ok: boolean;
  /** Search index entries rebuilt on a SQLite target (null on PostgreSQL). */
  searchIndexed: number | null;
}

/**
 * Copies `source` into `target` (both migrated to this build's schema), then verifies every table.
 * The marker is removed only when every table verifies, so a failed verification can be rerun.
 */
export async function copyDatabase(source: Db, target: Db, options: CopyOptions): Promise<CopyResult> {
  const plan = options.plan ?? schemaPlan();
  const resumed = await claimTarget(source, target, plan);
  if (resumed) options.progress("resuming an interrupted copy into this target");
  const tables: TableCopy[] = [];
  for (const t of plan.tables) tables.push(await copyTable(source, target, t, options));
  for (const t of plan.tables) if (t.deferred.length) await copyDeferred(source, target, t, options);
  await advanceSequences(source, target, plan);
  let searchIndexed: number | null = null;
  if (kindOf(target) === "sqlite") {
    // The FTS triggers kept the index current row by row; a rebuild also merges its segments.
    searchIndexed = await rebuildSearchIndex(target);
    options.progress(`search index rebuilt: ${searchIndexed} artworks`);
  }
  const verdicts = await verifyCopy(source, target, plan, options);
  const ok = verdicts.every((v) => v.same);
  if (ok) await target.lease.deleteMany({ where: { name: COPY_MARKER } });
  return { resumed, tables, verdicts, ok, searchIndexed };
}

/**
 * Who the database is: a hash of its first migration's row id, a random UUID written when the
 * database was made, so two URLs of one database (or a copy's resume) are recognised.
 */
export async function databaseIdentity(db: Db): Promise<string> {
  const [row] = await db.$queryRawUnsafe<{ id: string }[]>(`SELECT "id" FROM "_prisma_migrations" ORDER BY "migration_name", "id" LIMIT 1`);
  if (!row) throw new Error("the database has no migration history: it was not made by artdesc");
  return createHash("sha256").update(`${kindOf(db)}:${row.id}`).digest("hex");
}

/** Marks an empty target as this copy's, or recognises this copy's marker: true when resuming. */
async function claimTarget(source: Db, target: Db, plan: CopyPlan): Promise<boolean> {
  const [sourceId, targetId] = await Promise.all([databaseIdentity(source), databaseIdentity(target)]);
  if (sourceId === targetId) throw new SameDatabaseError();
  const holder = `copy-from:${sourceId}`;
  const marker = await target.lease.findUnique({ where: { name: COPY_MARKER } });
  if (marker) {
    if (marker.holder === holder) return true;
    throw new TargetNotEmptyError("an interrupted copy from another database is in it");
  }
  const filled: string[] = [];
  for (const t of plan.tables) {
    const n = await delegate(target, t).count();
    if (n > 0) filled.push(`${t.model} has ${n} rows`);
  }
  if (filled.length) throw new TargetNotEmptyError(filled.join(", "));
  try {
    await target.lease.create({
      data: { name: COPY_MARKER, holder, expiresAt: new Date(Date.now() + 365 * 86_400_000), hostname: hostname(), pid: process.pid },
    });
  } catch (err) {
    if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === "P2002") throw new TargetNotEmptyError("another copy into it has just started");
    throw err;
  }
  return false;
}

const select = (columns: readonly string[]) => Object.fromEntries(columns.map((c) => [c, true]));

/** The table's rows in key order, `batch` at a time, after `after` (exclusive) when given. */
async function* pages(db: Db, t: TablePlan, batch: number, columns: readonly string[], after?: unknown): AsyncGenerator<Row[]> {
  const key = t.key.name;
  let cursor = after;
  for (;;) {
    const rows = await delegate(db, t).findMany({
      where: cursor === undefined || cursor === null ? {} : { [key]: { gt: cursor } },
      orderBy: { [key]: "asc" },
      take: batch,
      select: select(columns),
    });
    if (!rows.length) return;
    yield rows;
    cursor = rows[rows.length - 1]![key];
    if (rows.length < batch) return;
  }
}

async function copyTable(source: Db, target: Db, t: TablePlan, o: CopyOptions): Promise<TableCopy> {
  const key = t.key.name;
  const sourceRows = await delegate(source, t).count();
  const present = await delegate(target, t).count();
  // Integer keys: batches commit in key order, so everything up to the target's largest key is there.
  const start = t.key.type === "String" ? undefined : (await delegate(target, t).aggregate({ _max: { [key]: true } }))._max[key];
  const toPostgres = kindOf(target) === "postgresql";
  let copied = 0;
  if (present < sourceRows || present === 0) {
    for await (const rows of pages(source, t, o.batch, t.columns.map((c) => c.name), start ?? undefined)) {
      // An integer key starts after the target's largest: nothing past it is there. Text keys are looked up.
      const there =
        t.key.type === "String"
          ? new Set((await delegate(target, t).findMany({ where: { [key]: { in: rows.map((r) => r[key]) } }, select: { [key]: true } })).map((r) => String(r[key])))
          : new Set<string>();
      const data = rows.filter((r) => !there.has(String(r[key]))).map((r) => prepareRow(t, r, toPostgres));
      if (data.length) {
        await target.$transaction((tx) => delegate(tx, t).createMany({ data }), { maxWait: 30_000, timeout: 300_000 });
        copied += data.length;
      }
      o.progress(`${t.model}: ${present + copied}/${sourceRows} rows`);
    }
  }
  o.progress(`${t.model}: ${sourceRows} rows in the source; ${copied} copied now${present ? `, ${present} were already there` : ""}`);
  return { model: t.model, sourceRows, copied, present };
}

/** The row as the target takes it: deferred foreign keys empty for now, text the target can hold. */
function prepareRow(t: TablePlan, row: Row, toPostgres: boolean): Row {
  const out = { ...row };
  for (const c of t.deferred) out[c] = null;
  if (toPostgres) {
    for (const c of t.columns) {
      const v = out[c.name];
      if (typeof v === "string" && v.includes("\u0000")) throw new UnrepresentableValueError(t.model, row[t.key.name], c.name, "contains a NUL character, which PostgreSQL text cannot hold");
    }
  }
  return out;
}

/** Sets the columns written as NULL (they close a foreign-key cycle) once every row they point at is there. */
async function copyDeferred(source: Db, target: Db, t: TablePlan, o: CopyOptions): Promise<void> {
  const key = t.key.name;
  let updated = 0;
  for await (const rows of pages(source, t, o.batch, [key, ...t.deferred, ...t.updatedAt])) {
    const set = rows.filter((r) => t.deferred.some((c) => r[c] !== null));
    if (!set.length) continue;
    const current = new Map(
      (await delegate(target, t).findMany({ where: { [key]: { in: set.map((r) => r[key]) } }, select: select([key, ...t.deferred]) })).map((r) => [String(r[key]), r]),
    );
    const changes = set.filter((r) => t.deferred.some((c) => current.get(String(r[key]))?.[c] !== r[c]));
    if (!changes.length) continue;
    const integers = changes.every((r) => [key, ...t.deferred].every((c) => r[c] === null || Number.isSafeInteger(r[c])));
    if (integers) {
      await target.$executeRawUnsafe(deferredUpdateSql(t, changes));
    } else {
      // Prisma sets @updatedAt columns on update: the source's values are written back with the keys.
      await target.$transaction(
        async (tx) => {
          for (const r of changes) await delegate(tx, t).update({ where: { [key]: r[key] }, data: Object.fromEntries([...t.deferred, ...t.updatedAt].map((c) => [c, r[c]])) });
        },
        { maxWait: 30_000, timeout: 300_000 },
      );
    }
    updated += changes.length;
  }
  o.progress(`${t.model}: ${t.deferred.join(", ")} set on ${updated} rows`);
}

/**
 * One UPDATE that sets the deferred integer columns of a batch of rows (integer keys): the same SQL
 * on SQLite and PostgreSQL, and, unlike Prisma's update, it leaves `@updatedAt` columns alone. Only
 * integers checked by the caller are written into the text.
 */
export function deferredUpdateSql(t: TablePlan, rows: readonly Row[]): string {
  const key = ident(t.key.name);
  const int = (v: unknown) => {
    if (v === null) return "NULL";
    if (!Number.isSafeInteger(v)) throw new Error(`not an integer: ${String(v)}`);
    return String(v);
  };
  const sets = t.deferred.map(ident).map((c) => `"${c}" = CASE "${key}" ${rows.map((r) => `WHEN ${int(r[key])} THEN ${int(r[c])}`).join(" ")} ELSE "${c}" END`);
  return `UPDATE "${tableName(t)}" SET ${sets.join(", ")} WHERE "${key}" IN (${rows.map((r) => int(r[key])).join(", ")})`;
}

/**
 * Moves each target sequence past every id the source ever handed out (not only the largest that is
 * left: a deleted artwork's global id must not come back for another work), so new rows get fresh ids.
 */
async function advanceSequences(source: Db, target: Db, plan: CopyPlan): Promise<void> {
  for (const t of plan.tables.filter((x) => x.sequence)) {
    const max = (await delegate(target, t).aggregate({ _max: { [t.key.name]: true } }))._max[t.key.name];
    const sourceNext = (await nextId(source, t)) ?? 1n;
    const next = [sourceNext, BigInt((max as number | null) ?? 0) + 1n].reduce((a, b) => (a > b ? a : b));
    await setNextId(target, t, next);
  }
}

/** The id the database's sequence for `t` would hand out next (null: it never handed one out). */
export async function nextId(db: Db, t: TablePlan): Promise<bigint | null> {
  const table = tableName(t);
  if (kindOf(db) === "sqlite") {
    const [row] = await db.$queryRawUnsafe<{ seq: number | bigint }[]>(`SELECT seq FROM sqlite_sequence WHERE name = ?`, table);
    return row ? BigInt(row.seq) + 1n : null;
  }
  const seq = await postgresSequence(db, t);
  if (!seq) return null;
  const [row] = await db.$queryRawUnsafe<{ last_value: number | bigint; is_called: boolean }[]>(`SELECT last_value, is_called FROM ${seq}`);
  return row ? BigInt(row.last_value) + (row.is_called ? 1n : 0n) : null;
}

async function postgresSequence(db: Db, t: TablePlan): Promise<string | null> {
  const [row] = await db.$queryRawUnsafe<{ seq: string | null }[]>(`SELECT pg_get_serial_sequence($1, $2) AS seq`, `"${tableName(t)}"`, t.key.name);
  return row?.seq ?? null;
}

async function setNextId(db: Db, t: TablePlan, next: bigint): Promise<void> {
  const table = tableName(t);
  if (kindOf(db) === "sqlite") {
    // AUTOINCREMENT keeps the largest id ever used in sqlite_sequence.
    const last = Number(next - 1n);
    if (last < 1) return;
    await db.$transaction([
      db.$executeRawUnsafe(`UPDATE sqlite_sequence SET seq = ? WHERE name = ? AND seq < ?`, last, table, last),
      db.$executeRawUnsafe(`INSERT INTO sqlite_sequence (name, seq) SELECT ?, ? WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ?)`, table, last, table),
    ]);
    return;
  }
  const seq = await postgresSequence(db, t);
  if (seq) await db.$queryRawUnsafe(`SELECT setval($1::regclass, $2::bigint, false)`, seq, next.toString());
}

/** Row counts and content hashes of every copied table, on both sides. */
export async function verifyCopy(source: Db, target: Db, plan: CopyPlan, o: Pick<CopyOptions, "batch" | "progress">): Promise<TableVerdict[]> {
  const verdicts: TableVerdict[] = [];
  for (const t of plan.tables) {
    const [a, b] = await Promise.all([hashTable(source, t, o.batch), hashTable(target, t, o.batch)]);
    const verdict = compareTables(t.model, a, b);
    o.progress(`verified ${t.model}: ${verdict.same ? "same" : "DIFFERENT"}`);
    verdicts.push(verdict);
  }
  return verdicts;
}

export async function hashTable(db: Db, t: TablePlan, batch: number): Promise<TableHash> {
  const hash = new TableHash(t.columns);
  for await (const rows of pages(db, t, batch, t.columns.map((c) => c.name))) for (const r of rows) hash.add(r);
  return hash;
}
