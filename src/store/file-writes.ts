import { open, readdir, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/**
 * Writing a file whole: under a temporary name beside it, renamed over it once written, the
 * folder synced after the rename; and the sweep of what a killed writer left. No sharp here, so the
 * CLI's export can use it without loading libvips.
 */

/**
 * The temporary name `file` is written under before its rename (storeImage, the thumbnail cache,
 * `export --out` with extension "part"): `<file>.<pid>.<random>.<extension>`, unique per writer;
 * sweepStaleTempFiles recognises the ".tmp" ones (TEMP_FILE).
 */
export function tempPathFor(file: string, extension = "tmp"): string {
  return `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.${extension}`;
}

const TEMP_FILE = /\.\d+\.[a-z0-9]+\.tmp$/;

/** A temporary file older than this was left by a process that died mid-write (a write takes well under a second). */
export const STALE_TEMP_MS = 3_600_000;

/**
 * Removes the temporary files that a process killed mid-write (SIGKILL, a power cut) left in
 * `dir`'s two-level layout (`ab/…`), when older than `olderThanMs`, so that a writer still at work
 * keeps its own. Returns how many were removed. Housekeeping only: a folder or file that cannot be
 * read or removed is left as it is.
 */
export async function sweepStaleTempFiles(dir: string, olderThanMs = STALE_TEMP_MS, now = Date.now()): Promise<number> {
  const folders = await readdir(dir, { withFileTypes: true }).catch(() => []);
  let removed = 0;
  for (const folder of folders) {
    if (!folder.isDirectory() || folder.name.length !== 2) continue;
    const sub = join(dir, folder.name);
    for (const name of await readdir(sub).catch((): string[] => [])) {
      if (!TEMP_FILE.test(name)) continue;
      if (await removeIfStale(join(sub, name), olderThanMs, now)) removed++;
    }
  }
  return removed;
}

/**
 * Removes the part files an earlier write of `file` left when it was killed (SIGKILL, a power cut:
 * `<file>.<pid>.<random>.part` beside it, tempPathFor), when older than `olderThanMs`, so that a
 * writer still at work keeps its own. Returns how many were removed; best effort, like
 * sweepStaleTempFiles.
 */
export async function sweepStalePartFiles(file: string, olderThanMs = STALE_TEMP_MS, now = Date.now()): Promise<number> {
  const dir = dirname(file);
  const prefix = `${basename(file)}.`;
  let removed = 0;
  for (const name of await readdir(dir).catch((): string[] => [])) {
    if (!name.startsWith(prefix) || !/^\d+\.[a-z0-9]+\.part$/.test(name.slice(prefix.length))) continue;
    if (await removeIfStale(join(dir, name), olderThanMs, now)) removed++;
  }
  return removed;
}

/** Removes `file` when it is a regular file last written more than `olderThanMs` ago; whether it did (never throws). */
async function removeIfStale(file: string, olderThanMs: number, now: number): Promise<boolean> {
  const info = await stat(file).catch(() => null);
  if (!info?.isFile() || info.mtimeMs > now - olderThanMs) return false;
  return rm(file).then(() => true, () => false);
}

/**
 * Puts a folder's entries on disk (fsync of the folder), after a rename into it: without it a
 * power loss can undo the rename while the database row naming the file is kept. Best effort: a
 * file system that cannot sync a folder is left as it is.
 */
export async function syncFolder(dir: string): Promise<void> {
  const handle = await open(dir, "r").catch(() => null);
  if (!handle) return;
  try {
    await handle.sync().catch(() => undefined);
  } finally {
    await handle.close().catch(() => undefined);
  }
}
