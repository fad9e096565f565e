import { createWriteStream, existsSync, fstatSync, rmSync, type Stats } from "node:fs";
import { chmod, lstat, open, readlink, realpath, rename, rm, stat } from "node:fs/promises";
import { once } from "node:events";
import { hostname } from "node:os";
import { dirname, resolve } from "node:path";
import type { Writable } from "node:stream";
import { type Config, ConfigError, loadConfig } from "../config.js";
import { databaseKind, type Db, openDatabase, sqlitePath } from "../db.js";
import { writeExport, type ExportFormat, ExportOptionsError, parseSince } from "../export/export.js";
import { SearchQueryError } from "../search/fts-query.js";
import { EmbedModelMissingError } from "../embed/embedder.js";
import { semanticSearchStatus } from "../embed/status.js";
import {
  countMatches,
  type MeaningSource,
  prepareSearch,
  rebuildSearchIndex,
  SEARCH_MODES,
  type SearchMode,
  searchPage,
  SemanticSearchUnavailableError,
  snippetText,
} from "../search/search.js";
import type { SyncSummary } from "../sync/summary.js";
import { checkHeartbeats, getStatus, HEARTBEAT_ROLES, type Status } from "./status.js";
import { creatorWhere } from "../store/artwork-filter.js";
import { sweepStalePartFiles, syncFolder, tempPathFor } from "../store/file-writes.js";
import { outputErrorWords } from "./command-errors.js";
import { terminalLine } from "../text/controls.js";

/**
 * The operator commands behind `artdesc search | status | export | search-index rebuild`.
 * Each takes what it needs and the streams to write to, and returns the exit code, so tests run
 * them in-process and cli.ts stays a thin entry point.
 */
export interface CommandIo {
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable;
}

/**
 * Config and a migrated database for a one-shot command. Unlike openRuntime it logs nothing to
 * stdout, which `export` may be writing the data to. These commands read an existing mirror: a
 * SQLite file that is not there is a ConfigError (a relative DATABASE_URL read from another folder,
 * a mistyped path), not a new empty database answering "none yet" or "0 artworks" with exit 0.
 */
export async function openCommandDb(env: NodeJS.ProcessEnv = process.env): Promise<{ config: Config; db: Db }> {
  const config = loadConfig(env);
  if (databaseKind(config.DATABASE_URL) === "sqlite") {
    const path = sqlitePath(config.DATABASE_URL);
    if (!existsSync(path)) throw new ConfigError([missingDatabase(config.DATABASE_URL, path)]);
  }
  return { config, db: (await openDatabase(config.DATABASE_URL)).db };
}

/** Why a one-shot command will not run on a SQLite file that is not there, and what to do. */
export function missingDatabase(databaseUrl: string, path: string): string {
  return (
    `DATABASE_URL=${JSON.stringify(databaseUrl)}: there is no database at ${path}. This command reads an existing mirror: ` +
    "run it where the database is (a relative path is read from the current folder), point DATABASE_URL at it, " +
    "or create one with `npx artdesc migrate` (`artdesc sync` or `artdesc start` then fills it)"
  );
}

const print = (s: Writable, text: string) => s.write(`${text}\n`);

/**
 * Why a --creator matches nobody (with the creators the database has), or null when it matches
 * someone: a misspelt name would otherwise find nothing and look like an answer.
 */
export async function unknownCreator(db: Db, creator: string): Promise<string | null> {
  if (await db.creator.count({ where: creatorWhere(creator) })) return null;
  const known = await db.creator.findMany({ select: { qid: true, label: true }, orderBy: { id: "asc" }, take: 10 });
  const list = known.map((c) => `${c.label ?? "?"} (${c.qid})`).join(", ");
  return `--creator ${JSON.stringify(creator)} matches no creator in the database${list ? `; it has ${list}` : " (run a sync first)"}`;
}

export async function searchCommand(
  db: Db,
  query: string,
  options: { limit: number; creator?: string; mode?: string; meaning?: MeaningSource },
  io: CommandIo,
): Promise<number> {
  if (!Number.isInteger(options.limit) || options.limit < 1 || options.limit > 100) {
    print(io.stderr, `--limit must be a whole number from 1 to 100 (got ${options.limit})`);
    return 2;
  }
  const mode = options.mode?.toUpperCase();
  if (mode !== undefined && !(SEARCH_MODES as readonly string[]).includes(mode)) {
    print(io.stderr, `--mode must be one of ${SEARCH_MODES.join(", ").toLowerCase()} (got ${options.mode})`);
    return 2;
  }
  const unknown = options.creator === undefined ? null : await unknownCreator(db, options.creator);
  if (unknown) {
    print(io.stderr, unknown);
    return 2;
  }
  let search;
  try {
    search = await prepareSearch(db, query, { creator: options.creator ?? null }, { mode: mode as SearchMode | undefined, meaning: options.meaning ?? null });
  } catch (err) {
    if (err instanceof SearchQueryError || err instanceof SemanticSearchUnavailableError || err instanceof EmbedModelMissingError) {
      print(io.stderr, err.message);
      return 2;
    }
    throw err;
  }
  const page = await searchPage(db, search, options.limit);
  if (!page.hits.length) {
    print(io.stdout, `No matches for ${JSON.stringify(query)}.`);
    return 0;
  }
  const artworks = await db.artwork.findMany({
    where: { id: { in: page.hits.map((h) => h.artworkId) } },
    select: { id: true, qid: true, title: true, inceptionYear: true },
  });
  const byId = new Map(artworks.map((a) => [a.id, a]));
  const [open, close] = io.stdout.isTTY ? ["\x1b[1m", "\x1b[22m"] : ["[", "]"];
  for (const [i, hit] of page.hits.entries()) {
    const a = byId.get(hit.artworkId);
    if (!a) continue;
    const year = a.inceptionYear != null ? ` (${a.inceptionYear})` : "";
    const meaning = hit.similarity != null ? `  similarity ${hit.similarity.toFixed(3)}` : "";
    const by = search && search.mode !== "TEXT" ? `  (${hit.matchedBy.join("+").toLowerCase()})` : "";
    // Titles and texts come from elsewhere: one line each, with no control character a terminal would act on.
    print(io.stdout, `${i + 1}. ${a.qid}  ${terminalLine(a.title ?? "(untitled)")}${year}  score ${hit.score.toFixed(2)}${meaning}${by}`);
    if (hit.snippet) print(io.stdout, `   ${snippetText(terminalLine(hit.snippet), open, close)}`);
  }
  if (page.hasMore) print(io.stdout, `(${await countMatches(db, search)} matches: raise --limit, or page with the GraphQL search query)`);
  return 0;
}

export async function rebuildSearchIndexCommand(db: Db, io: CommandIo): Promise<number> {
  const started = Date.now();
  const n = await rebuildSearchIndex(db);
  print(io.stdout, `search index rebuilt: ${n} active artworks in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return 0;
}

export async function statusCommand(
  db: Db,
  config: Config,
  options: { check?: boolean; role?: string; thisHost?: boolean; json?: boolean; now?: Date; hostname?: string },
  io: CommandIo,
): Promise<number> {
  if (options.role != null && !(HEARTBEAT_ROLES as readonly string[]).includes(options.role)) {
    // A misspelt role in a container's health check would report it unhealthy forever.
    print(io.stderr, `--role ${JSON.stringify(options.role)} is not a role that beats: use ${HEARTBEAT_ROLES.join(", ")}`);
    return 2;
  }
  const status = await getStatus(db, {
    staleAfterS: config.HEARTBEAT_STALE_S,
    now: options.now,
    schedule: { cron: config.SYNC_CRON, timezone: config.SYNC_TIMEZONE },
  });
  // --this-host: only this machine's (this container's) processes, as a container's health check wants.
  const check = checkHeartbeats(status, options.role, options.thisHost ? (options.hostname ?? hostname()) : undefined);
  const semantic = await semanticSearchStatus(db, config);
  if (options.json) print(io.stdout, JSON.stringify({ ...status, semanticSearch: semantic }, null, 2));
  else print(io.stdout, `${formatStatus(status)}\nSemantic    ${semantic.enabled ? "on" : "off"}: ${semantic.message}`);
  if (options.check) {
    if (!check.ok) {
      for (const p of check.problems) print(io.stderr, `stale: ${p}`);
      return 1;
    }
    print(io.stderr, options.role ? `ok: ${options.role} heartbeat fresh${options.thisHost ? " on this host" : ""}` : "ok: no stale heartbeat");
  }
  return 0;
}

function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.round(h / 24)} days`;
}

function formatSync(run: SyncSummary): string {
  const when = run.finishedAt ? `finished ${run.finishedAt.toISOString()}` : `started ${run.startedAt.toISOString()}`;
  return (
    `#${run.runId} ${run.status} (${run.trigger}${run.full ? ", full" : ""}) ${when}, took ${formatDuration(run.durationSeconds)}: ` +
    `seen ${run.seen}, created ${run.created}, updated ${run.updated}, unchanged ${run.unchanged}, removed ${run.removed}, ` +
    `no image ${run.skippedNoImage}, failed ${run.failed}; images downloaded ${run.imagesDownloaded}, jobs queued ${run.jobsQueued}` +
    (run.error ? `\n            error: ${run.error}` : "")
  );
}

export function formatStatus(s: Status): string {
  const lines: string[] = [];
  lines.push(`Last sync   ${s.lastSync ? formatSync(s.lastSync) : "none yet"}`);
  if (s.lastSuccessfulSync && s.lastSuccessfulSync.runId !== s.lastSync?.runId) {
    lines.push(`Last good   ${formatSync(s.lastSuccessfulSync)}`);
  }
  if (s.nextSyncAt) lines.push(`Next sync   ${s.nextSyncAt.toISOString()}`);
  const j = s.jobs;
  lines.push(`Jobs        queued ${j.queued}, running ${j.running}, succeeded ${j.succeeded}, failed ${j.failed}, cancelled ${j.cancelled}`);
  if (!s.heartbeats.length) lines.push("Processes   no heartbeat recorded");
  for (const h of s.heartbeats) {
    const model = h.modelStatus
      ? `, model ${h.modelStatus}${h.modelId ? ` ${h.modelId}@${h.modelRevision ?? "?"}` : ""}${h.device ? ` on ${h.device}` : ""}${h.modelError ? ` (${h.modelError})` : ""}`
      : "";
    lines.push(
      `Process     ${h.role} ${h.id}: ${h.alive ? "alive" : "STALE"}, last beat ${formatDuration(h.ageSeconds)} ago, pid ${h.pid} on ${h.hostname}${model}`,
    );
  }
  const avg = s.averageDescriptionSeconds != null ? `, ${s.averageDescriptionSeconds.toFixed(1)} s each on average` : "";
  lines.push(`Throughput  ${s.descriptionsLastHour} descriptions in the last hour${avg}`);
  const eta =
    s.backlog === 0
      ? "empty"
      : s.backlogSeconds == null
        ? `${s.backlog} describe jobs; no estimate (nothing described in the last hour)`
        : `${s.backlog} describe jobs, done in about ${formatDuration(s.backlogSeconds)} (${s.backlogDoneAt!.toISOString()})`;
  lines.push(`Backlog     ${eta}`);
  return lines.join("\n");
}

/** Why `export --out` could not create its file, in words (the error itself names the part file, not the user's path). */
const CANNOT_CREATE: Record<string, string> = {
  ELOOP: "too many symbolic links",
  ENOENT: "its folder does not exist",
  ENOTDIR: "a part of its path is not a folder",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EROFS: "read-only file system",
  EISDIR: "it is a folder",
  ENOSPC: "no space left on the device",
};

export async function exportCommand(
  db: Db,
  config: Config,
  options: { format: string; creator?: string[]; since?: string; out?: string; includeInactive?: boolean },
  io: CommandIo,
): Promise<number> {
  let since: Date | undefined;
  try {
    if (options.format !== "jsonl" && options.format !== "csv") {
      throw new ExportOptionsError(`Unknown export format "${options.format}": use jsonl or csv`);
    }
    since = options.since != null ? parseSince(options.since) : undefined;
    for (const creator of options.creator ?? []) {
      // A misspelt name would export nothing and look like success.
      const unknown = await unknownCreator(db, creator);
      if (unknown) throw new ExportOptionsError(unknown);
    }
  } catch (err) {
    if (err instanceof ExportOptionsError) {
      print(io.stderr, err.message);
      return 2;
    }
    throw err;
  }
  let target: ExportTarget;
  try {
    target = await exportTarget(options.out);
  } catch (err) {
    if (!(err instanceof ExportOptionsError)) throw err;
    print(io.stderr, err.message);
    return 2;
  }
  // A file is written beside its final name and renamed over it once whole and on disk: an export
  // cut short (Ctrl-C, a full disk, a database error) never leaves a short file that looks finished,
  // and the previous export stays until the new one replaces it. A device or a pipe (/dev/stdout,
  // a FIFO) is written as it is: it cannot be replaced.
  const partial = target.kind === "file" ? tempPathFor(target.path, "part") : null;
  // What an export killed outright (SIGKILL, a power cut) left beside the same file an hour ago or more.
  if (target.kind === "file") await sweepStalePartFiles(target.path);
  // A private file's replacement is private from its first byte.
  const out = partial
    ? createWriteStream(partial, { flags: "wx", mode: target.kind === "file" && target.mode !== null ? target.mode : 0o666 })
    : target.kind === "device"
      ? createWriteStream(target.path, { flags: target.flags })
      : io.stdout;
  // Ctrl-C, a stop (SIGTERM) or a closed terminal (SIGHUP) mid-export: the part file goes too, then
  // the process ends as a signal would end it. Listened for before the first await: the part file
  // exists as soon as the stream has opened it, before `open` is heard, and a signal in between
  // would otherwise end the process and leave it.
  const onSignal = (signal: NodeJS.Signals) => {
    out.destroy();
    rmSync(partial!, { force: true });
    process.exit(128 + SIGNAL_NUMBERS[signal as (typeof EXPORT_SIGNALS)[number]]);
  };
  if (partial) for (const s of EXPORT_SIGNALS) process.once(s, onSignal);
  let n: number;
  try {
    if (target.kind !== "stdout") await once(out, "open").catch((err: NodeJS.ErrnoException) => Promise.reject(new ExportOptionsError(`--out ${JSON.stringify(options.out)}: cannot write a file there (${CANNOT_CREATE[err.code ?? ""] ?? err.message})`)));
    n = await writeExport(db, out, {
      format: options.format as ExportFormat,
      creators: options.creator,
      since,
      includeInactive: options.includeInactive,
      altTextMaxChars: config.ALT_TEXT_MAX_CHARS,
    });
    if (target.kind !== "stdout") {
      out.end();
      await once(out, "finish");
    }
    if (partial && target.kind === "file") {
      const written = await open(partial, "r+");
      try {
        await written.sync();
      } finally {
        await written.close();
      }
      // The file it replaces keeps its permissions (an export kept private stays private).
      if (target.mode !== null) await chmod(partial, target.mode);
      await rename(partial, target.path);
      await syncFolder(dirname(target.path));
    }
  } catch (err) {
    if (target.kind !== "stdout") {
      out.on("error", () => {}); // a write still queued fails the same way, heard here once
      out.destroy();
    }
    if (partial) await rm(partial, { force: true }).catch(() => undefined);
    if (err instanceof ExportOptionsError) {
      print(io.stderr, err.message);
      return 2;
    }
    // The reader closed the pipe (`artdesc export ... | head`): not a failure of the export.
    const code = (err as NodeJS.ErrnoException).code;
    // The same for a pipe named by --out whose reader went away.
    if (target.kind !== "file" && code === "EPIPE") {
      out.on("error", () => {}); // later writes still queued fail the same way
      return 0;
    }
    // A full disk, a quota, a size limit: said as for stdout, naming the file (nothing was replaced).
    if (target.kind !== "stdout" && code && /^E[A-Z]+$/.test(code)) {
      print(io.stderr, `${outputErrorWords(code)}${target.kind === "file" ? ` ${JSON.stringify(options.out)} was left as it was.` : ""}`);
      return 1;
    }
    throw err;
  } finally {
    for (const s of EXPORT_SIGNALS) process.off(s, onSignal);
  }
  print(io.stderr, `exported ${n} artworks${target.kind !== "stdout" ? ` to ${options.out}` : ""}`);
  return 0;
}

const EXPORT_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
const SIGNAL_NUMBERS: Record<(typeof EXPORT_SIGNALS)[number], number> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

/**
 * Where --out writes: stdout (no --out, "-", or whatever stdout already is: `--out /dev/stdout`);
 * a regular file, replaced whole (a new one, or an existing one whose permissions it keeps), the
 * one a symbolic link names as the kernel resolves it (the link stays); an open descriptor's path
 * (`/dev/fd/3`, a shell's `>(gzip > x.gz)`) or a device or pipe (`/dev/null`, a FIFO), written as it
 * is, appended to when it is a file the shell opened. A folder, or an empty name (an unset variable
 * in a script), is refused.
 */
type ExportTarget = { kind: "stdout" } | { kind: "file"; path: string; mode: number | null } | { kind: "device"; path: string; flags: "a" | "w" };

/** Paths that name an open file descriptor rather than a file: opened, never replaced. */
const DESCRIPTOR_PATH = /^\/(dev\/(fd\/\d+|std(out|err))|proc\/[^/]+\/fd\/\d+)$/;

async function exportTarget(out: string | undefined): Promise<ExportTarget> {
  if (out === undefined || out === "-") return { kind: "stdout" };
  if (out.trim() === "") throw new ExportOptionsError("--out needs a file name (it was empty); leave --out out, or give -, to write to stdout");
  const refuse = (why: string) => new ExportOptionsError(`--out ${JSON.stringify(out)}: cannot write a file there (${why})`);
  // stat follows links as the kernel does.
  const info = await stat(out).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return null;
    throw refuse(CANNOT_CREATE[err.code ?? ""] ?? err.message);
  });
  if (info) {
    const stdout = fstatOrNull(1);
    if (stdout && stdout.dev === info.dev && stdout.ino === info.ino) return { kind: "stdout" };
    if (info.isDirectory()) throw refuse("it is a folder");
    if (DESCRIPTOR_PATH.test(out) || !info.isFile()) return { kind: "device", path: out, flags: info.isFile() ? "a" : "w" };
    // Read, write and execute bits only: a setuid bit is never carried to a text file.
    return { kind: "file", path: await realpath(out), mode: info.mode & 0o777 };
  }
  // Nothing there: a new file, or the missing file a link names (made, and the link stays).
  let path = out;
  for (let hops = 0; hops <= 40; hops++) {
    const link = await lstat(path).catch(() => null);
    if (!link?.isSymbolicLink()) return { kind: "file", path, mode: null };
    // Relative to the link's folder as the kernel finds it (that folder may itself be reached through a link).
    path = resolve(await realpath(dirname(path)).catch(() => dirname(path)), await readlink(path));
  }
  throw refuse("too many symbolic links");
}

function fstatOrNull(fd: number): Stats | null {
  try {
    return fstatSync(fd);
  } catch {
    return null;
  }
}
