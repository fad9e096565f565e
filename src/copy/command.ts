import { existsSync, statSync } from "node:fs";
import Database from "better-sqlite3";
import pg from "pg";
import { getDatamodel } from "../generated/pothos-types.js";
import { type Config, ConfigError, redactPassword } from "../config.js";
import { closeDb, type Db, openDatabase, sqlitePath } from "../db.js";
import type { CommandIo } from "../ops/commands.js";
import { copyDatabase, SameDatabaseError, TargetNotEmptyError, UnrepresentableValueError } from "./copy.js";
import { formatVerdicts } from "./hash.js";
import { parseTargetUrl, TargetUrlError } from "./target-url.js";
import { dbTime } from "../store/db-clock.js";

/** Exit codes of `artdesc db copy`. */
export const COPY_EXIT = { ok: 0, failed: 1, usage: 2, refused: 3 } as const;

export const DEFAULT_BATCH = 500;
export const MAX_BATCH = 10_000;

/** How long the target's PostgreSQL server may take to accept a connection. */
const CONNECT_TIMEOUT_MS = 10_000;

const print = (s: CommandIo["stdout"], text: string) => s.write(`${text}\n`);

/**
 * `artdesc db copy --to URL [--batch N]`: copies the mirror in DATABASE_URL into the database at
 * URL (made and migrated if needed), then prints the verification. Exit 0 copied and verified; 1 a
 * table differs or a row could not be copied; 2 a bad --to or --batch, or a target that cannot be
 * opened; 3 the target is not empty (or is the source).
 */
export async function dbCopyCommand(config: Config, options: { to: string; batch?: number }, io: CommandIo): Promise<number> {
  const batch = options.batch ?? DEFAULT_BATCH;
  if (!Number.isInteger(batch) || batch < 1 || batch > MAX_BATCH) {
    print(io.stderr, `--batch must be a whole number from 1 to ${MAX_BATCH} (got ${options.batch})`);
    return COPY_EXIT.usage;
  }
  let to;
  try {
    to = parseTargetUrl(options.to);
  } catch (err) {
    if (!(err instanceof TargetUrlError)) throw err;
    print(io.stderr, err.message);
    return COPY_EXIT.usage;
  }
  const cannotOpen = (why: string) => {
    print(io.stderr, `--to ${JSON.stringify(to.shown)}: cannot open the target database: ${why}`);
    return COPY_EXIT.usage;
  };
  if (to.kind === "postgresql") {
    // openDatabase's migrator connects without a timeout: an address that drops packets would hang.
    const why = await probePostgres(to.url);
    if (why) return cannotOpen(why);
  }
  let source: Db | undefined;
  let target: Db | undefined;
  try {
    try {
      source = (await openDatabase(config.DATABASE_URL)).db;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      print(io.stderr, err.message);
      return COPY_EXIT.usage;
    }
    // Before anything is created or migrated in it: a database that holds another application's
    // tables is not a target (its own tables would look empty to the emptiness check below).
    const foreign = await foreignTables(to);
    if (foreign.length) {
      print(io.stderr, `--to ${JSON.stringify(to.shown)}: ${new TargetNotEmptyError(`it holds tables that are not artdesc's (${foreign.slice(0, 5).join(", ")}${foreign.length > 5 ? `, and ${foreign.length - 5} more` : ""})`).message}`);
      return COPY_EXIT.refused;
    }
    try {
      // The target may be this copy's, interrupted: finishing it is what the command is for.
      target = (await openDatabase(to.url, { allowUnfinishedCopy: true })).db;
    } catch (err) {
      // Its messages name DATABASE_URL; here the URL came from --to.
      if (err instanceof ConfigError) return cannotOpen(err.problems.map((p) => p.replace(/^DATABASE_URL=("[^"]*"|\S+): /, "")).join("; "));
      throw err;
    }
    print(io.stderr, `copying ${redactPassword(config.DATABASE_URL)} -> ${to.shown} in batches of ${batch}`);
    for (const [db, which] of [[source, "source"], [target, "target"]] as const) {
      for (const h of await liveProcesses(db, config.HEARTBEAT_STALE_S)) {
        print(io.stderr, `warning: a ${h.role} (pid ${h.pid} on ${h.hostname}) beat ${h.ago} s ago on the ${which}: stop it, or rows it writes during the copy make the verification fail`);
      }
    }
    const result = await copyDatabase(source, target, { batch, progress: (line) => print(io.stderr, line) });
    for (const line of formatVerdicts(result.verdicts)) print(io.stdout, line);
    if (!result.ok) {
      print(
        io.stderr,
        "verification failed: the tables marked DIFFERS are not the same in the target (was the source written to during the copy?). " +
          "To start over, drop and recreate the target database (or delete its file) and copy again with nothing writing to the source",
      );
      return COPY_EXIT.failed;
    }
    print(io.stdout, `copied and verified: ${result.tables.reduce((n, t) => n + t.sourceRows, 0)} rows in ${result.tables.length} tables${result.resumed ? " (resumed)" : ""}`);
    if (to.kind === "postgresql") print(io.stdout, "the full-text search index of a PostgreSQL target is kept by its own triggers, if any; image files stay in IMAGE_DIR");
    return COPY_EXIT.ok;
  } catch (err) {
    if (err instanceof TargetNotEmptyError || err instanceof SameDatabaseError) {
      print(io.stderr, `refused: ${err.message}`);
      return COPY_EXIT.refused;
    }
    if (err instanceof UnrepresentableValueError) {
      print(io.stderr, `copy stopped: ${err.message}`);
      return COPY_EXIT.failed;
    }
    throw err;
  } finally {
    if (target) await closeDb(target);
    if (source) await closeDb(source);
  }
}

/** Null when a PostgreSQL server answers at `url` within CONNECT_TIMEOUT_MS, else why not. */
async function probePostgres(url: string): Promise<string | null> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  client.on("error", () => {});
  try {
    await client.connect();
    return null;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    return `${typeof code === "string" ? `${code}: ` : ""}${(err as Error).message}`;
  } finally {
    await client.end().catch(() => {});
  }
}

/** artdesc's own tables: its models', the migration history, the search index's, and the database's own. */
function isArtdescTable(name: string, models: ReadonlySet<string>): boolean {
  return models.has(name) || name === "_prisma_migrations" || /^(artwork_fts|artdesc_|sqlite_)/.test(name);
}

/**
 * Tables in the target (before it is migrated) that are not artdesc's; none for a file that does not
 * exist yet, and none for a target that cannot be read (opening it next says why, as a usage error).
 */
async function foreignTables(to: { kind: "sqlite" | "postgresql"; url: string }): Promise<string[]> {
  try {
    return await listForeignTables(to);
  } catch {
    return [];
  }
}

async function listForeignTables(to: { kind: "sqlite" | "postgresql"; url: string }): Promise<string[]> {
  const models = new Set(Object.keys((getDatamodel().datamodel as { models: Record<string, unknown> }).models));
  let names: string[];
  if (to.kind === "postgresql") {
    const client = new pg.Client({ connectionString: to.url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
    client.on("error", () => {});
    try {
      await client.connect();
      const { rows } = await client.query<{ name: string }>(`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()`);
      names = rows.map((r) => r.name);
    } finally {
      await client.end().catch(() => {});
    }
  } else {
    const file = sqlitePath(to.url);
    if (!existsSync(file) || !statSync(file).isFile() || statSync(file).size === 0) return [];
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      names = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).all() as { name: string }[]).map((r) => r.name);
    } finally {
      db.close();
    }
  }
  return names.filter((n) => !isArtdescTable(n, models)).sort();
}

/** Processes of a deployment whose heartbeat is fresh: they may write while the copy runs. */
async function liveProcesses(db: Db, staleAfterS: number): Promise<{ role: string; pid: number; hostname: string; ago: number }[]> {
  // Heartbeats are written on the database's clock (store/db-clock.ts).
  const now = (await dbTime(db)).getTime();
  const since = new Date(now - staleAfterS * 1000);
  const beats = await db.heartbeat.findMany({ where: { beatAt: { gte: since } }, orderBy: { beatAt: "desc" } });
  return beats.map((h) => ({ role: h.role, pid: h.pid, hostname: h.hostname, ago: Math.max(0, Math.round((now - h.beatAt.getTime()) / 1000)) }));
}
