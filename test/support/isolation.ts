/**
 * The test files that run each in a fresh module graph (vitest.config.ts, project "isolated"). Every
 * other file shares its worker's loaded modules with the files that ran there before it, which
 * saves about a second of imports a file. A file belongs here when:
 * - it mocks a module (`vi.mock`): a module already loaded by an earlier file would keep its real
 *   imports (test/isolation.test.ts checks that every such file is listed);
 * - it leaves embedding threads behind on purpose (test/embed/jobs.test.ts): src/embed/embedder.ts
 *   counts them per process and refuses to start more past MAX_LEFT_BEHIND;
 * - it times the event loop of an API it runs in the test process (/health under attack, a loop
 *   watch): a worker whose heap holds what earlier files loaded pauses longer to collect it than
 *   an API process does.
 */
export const ISOLATED_TEST_FILES = [
  // vi.mock
  "test/api/image-read-errors.test.ts",
  "test/web/diff.test.ts",
  "test/web/thumb-read-errors.test.ts",
  // embedding threads left behind
  "test/embed/jobs.test.ts",
  // the event loop's turns timed
  "test/api/health-errors.test.ts",
  "test/hostile/busy-reads.test.ts",
  "test/hostile/limits-health.test.ts",
  "test/hostile/store-stuck-writer.test.ts",
  "test/hostile/subs-streams.test.ts",
];
