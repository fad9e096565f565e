import { createRequire } from "node:module";
import { defineConfig } from "vitest/config";
import { ISOLATED_TEST_FILES } from "./test/support/isolation.js";

const require = createRequire(import.meta.url);

export default defineConfig({
  resolve: {
    // graphql ships ESM and CJS builds; Node (and so graphql-yoga and Pothos) loads the CJS one.
    // Vite would pick the ESM one for our sources: two copies and a failing `instanceof GraphQLError`.
    alias: { graphql: require.resolve("graphql") },
  },
  test: {
    // The CLI the tests run in child processes is the compiled one: built here when src/ changed.
    globalSetup: ["test/support/build-cli.ts"],
    // What must happen once per test file (a PostgreSQL server's stop, the factories' numbering), as modules load once per worker.
    setupFiles: ["test/support/each-file.ts"],
    pool: "forks",
    // Two cores: two test files at a time.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    projects: [
      // Most files run one after the other in a worker that keeps the modules loaded (Prisma's
      // client, graphql-yoga, transformers.js...): reloading them for every file took a quarter of
      // the suite's CPU. The few listed in test/support/isolation.ts (with why) get a fresh one.
      { extends: true, test: { name: "shared", include: ["test/**/*.test.ts"], exclude: ISOLATED_TEST_FILES, isolate: false } },
      { extends: true, test: { name: "isolated", include: ISOLATED_TEST_FILES, isolate: true } },
    ],
  },
});
