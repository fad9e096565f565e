import { accessSync, constants } from "node:fs";

/**
 * glibc's malloc settings artdesc runs with. By default glibc gives every freed block above its
 * mmap threshold back to the kernel, and raises that threshold only to the size of the last such
 * block. A decode step's key/value cache is a little larger than the one before it (one position
 * more), so each of the 64 `present.*` buffers onnxruntime-node hands to JavaScript, and (without
 * its arena, as for q4) each `Concat` result inside onnxruntime, is a fresh mmap that the kernel
 * zero-fills page by page: about 85 MB a step for 4 beams on smolvlm-500m. With a fixed 32 MB
 * threshold and a 128 MB trim threshold the freed memory is reused instead (docs/describe.md,
 * "Memory"; BENCHMARKS.md). glibc reads these variables only when a process starts, so the
 * launcher (bin/artdesc.js) starts itself again with them; a value already set is kept, and musl
 * or other platforms ignore them.
 */
export const GLIBC_MALLOC_TUNING: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: String(32 * 1024 * 1024),
  MALLOC_TRIM_THRESHOLD_: String(128 * 1024 * 1024),
};

/**
 * The environment to start with: `env` plus each GLIBC_MALLOC_TUNING variable it does not set, or
 * null when there is nothing to add (all set already, or not Linux).
 */
export function tunedAllocatorEnv(env: NodeJS.ProcessEnv, platform: NodeJS.Platform): NodeJS.ProcessEnv | null {
  if (platform !== "linux") return null;
  const missing = Object.entries(GLIBC_MALLOC_TUNING).filter(([name]) => env[name] === undefined);
  return missing.length ? { ...env, ...Object.fromEntries(missing) } : null;
}

/**
 * Replaces this process (same pid, stdio and arguments) with one started under the tuned
 * environment, unless it already runs under it. Call it first thing, before any thread starts.
 * Where Node's binary cannot be run again, the process goes on as it is (glibc's defaults: slower,
 * not wrong) after one line on stderr.
 */
export function restartWithTunedAllocator(execPath = process.execPath): void {
  const env = tunedAllocatorEnv(process.env, process.platform);
  if (!env || typeof process.execve !== "function") return;
  // A failed execve ends Node with a fatal error instead of throwing, so what can be checked is checked first.
  try {
    accessSync(execPath, constants.X_OK);
  } catch (err) {
    process.stderr.write(`artdesc: could not restart under the malloc settings (${(err as Error).message}); going on with glibc's defaults\n`);
    return;
  }
  process.execve(execPath, [execPath, ...process.execArgv, ...process.argv.slice(1)], env);
}
