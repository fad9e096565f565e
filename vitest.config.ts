import { createRequire } from "node:module";
import { defineConfig } from "vitest/config";

const require = createRequire(import.meta.url);

export default defineConfig({
  resolve: {
    // graphql ships ESM and CJS builds; Node (and so graphql-yoga and Pothos) loads the CJS one.
    // Vite would pick the ESM one for our sources: two copies and a failing `instanceof GraphQLError`.
    alias: { graphql: require.resolve("graphql") },
  },
  test: {
    include: ["test/**/*.test.ts"],
    // The CLI the tests run in child processes is the compiled one: built here when src/ changed.
    globalSetup: ["test/support/build-cli.ts"],
    pool: "forks",
    // Two cores: two test files at a time.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
