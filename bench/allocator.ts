import { GLIBC_MALLOC_TUNING, restartWithTunedAllocator, tunedAllocatorEnv } from "../src/ops/allocator.js";

/**
 * Engine benchmarks run under the malloc settings `artdesc` starts with (src/ops/allocator.ts):
 * this restarts the benchmark process with them, and its child processes inherit them.
 * BENCH_MALLOC=glibc keeps glibc's own defaults instead, to compare. Returns the label for the table.
 */
export function benchAllocator(): string {
  if (process.env.BENCH_MALLOC !== "glibc") restartWithTunedAllocator();
  const mmap = process.env.MALLOC_MMAP_THRESHOLD_;
  const trim = process.env.MALLOC_TRIM_THRESHOLD_;
  return mmap || trim ? `MALLOC_MMAP_THRESHOLD_=${mmap ?? "(glibc's)"}, MALLOC_TRIM_THRESHOLD_=${trim ?? "(glibc's)"}` : "glibc's defaults (BENCH_MALLOC=glibc)";
}

/**
 * The malloc variables for a server a benchmark starts from the TypeScript sources (which skips the
 * launcher, bin/artdesc.js, that sets them): as `artdesc` would run, unless BENCH_MALLOC=glibc.
 */
export function serverAllocatorEnv(): Record<string, string> {
  if (process.env.BENCH_MALLOC === "glibc") return {};
  const env = tunedAllocatorEnv(process.env, process.platform) ?? process.env;
  return Object.fromEntries(Object.keys(GLIBC_MALLOC_TUNING).flatMap((k) => (env[k] === undefined ? [] : [[k, env[k]!]])));
}
