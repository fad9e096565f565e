#!/usr/bin/env node
import { Command } from "commander";
import { startApi } from "./api/component.js";
import { loadConfig } from "./config.js";
import { sqlitePath } from "./db.js";
import type { Config } from "./config.js";
import type { Db } from "./db.js";
import { exportCommand, openCommandDb, rebuildSearchIndexCommand, searchCommand, statusCommand } from "./ops/commands.js";
import { type Component, exitOnConfigError, openRuntime, runUntilSignal } from "./runtime.js";
import { migrate } from "./store/migrate.js";

const program = new Command()
  .name("artdesc")
  .description("Mirror artworks from Wikidata and Commons, describe them with SmolVLM, serve them over GraphQL.")
  .showHelpAfterError();

program
  .command("start")
  .description("Run everything one machine needs in one process: the GraphQL API (more components join as they land)")
  .action(async () => {
    const rt = await openRuntime().catch(exitOnConfigError);
    const components: Component[] = [await startApi(rt)];
    await runUntilSignal(rt, components);
  });

program
  .command("serve")
  .description("Run the GraphQL API alone (for split deployments)")
  .action(async () => {
    const rt = await openRuntime().catch(exitOnConfigError);
    await runUntilSignal(rt, [await startApi(rt)]);
  });

program
  .command("migrate")
  .description("Create the database if needed and apply pending migrations")
  .action(() => {
    let config;
    try {
      config = loadConfig();
    } catch (err) {
      exitOnConfigError(err);
    }
    const file = sqlitePath(config.DATABASE_URL);
    const { applied, total } = migrate(file);
    console.log(`${file}: ${applied.length} migration(s) applied, ${total} in all`);
  });

/** Runs a one-shot command with a database; its return value is the exit code. */
async function withDb(fn: (db: Db, config: Config) => Promise<number>): Promise<void> {
  const { config, db } = await openCommandDb().catch(exitOnConfigError);
  try {
    process.exitCode = await fn(db, config);
  } finally {
    await db.$disconnect();
  }
}
const io = { stdout: process.stdout, stderr: process.stderr };
const collect = (value: string, previous: string[]) => [...previous, value];

program
  .command("search")
  .description("Full-text search over active artworks; prints the best matches with snippets")
  .argument("<words...>", 'what to look for, as typed: words, "a phrase", prefix*, -excluded')
  .option("-n, --limit <n>", "how many matches to print (1-100)", "10")
  .option("--creator <creator>", "only works by this creator (QID or label words)")
  .action((words: string[], opts: { limit: string; creator?: string }) =>
    withDb((db) => searchCommand(db, words.join(" "), { limit: Number(opts.limit), creator: opts.creator }, io)),
  );

program
  .command("search-index")
  .description("Maintain the full-text index")
  .command("rebuild")
  .description("Refill the search index from the store (after a restore; triggers keep it current otherwise)")
  .action(() => withDb((db) => rebuildSearchIndexCommand(db, io)));

program
  .command("status")
  .description("Last sync, jobs, worker heartbeats, throughput and backlog")
  .option("--check", "exit 1 when a heartbeat is stale (for container health checks)")
  .option("--role <role>", "with --check: only heartbeats of this role (worker, daemon, start), and at least one must exist")
  .option("--json", "print the status as JSON")
  .action((opts: { check?: boolean; role?: string; json?: boolean }) => withDb((db, config) => statusCommand(db, config, opts, io)));

program
  .command("export")
  .description("Stream artworks with their current descriptions as JSON lines or CSV, in constant memory")
  .requiredOption("--format <format>", "jsonl or csv")
  .option("--creator <creator>", "only works by this creator (QID or label words); repeat for several", collect, [])
  .option("--since <date>", "only works changed or described since this date (YYYY-MM-DD or ISO date-time)")
  .option("--out <file>", "write to this file instead of stdout")
  .option("--include-inactive", "also export merged, deleted and no-longer-attributed works")
  .action((opts: { format: string; creator: string[]; since?: string; out?: string; includeInactive?: boolean }) =>
    withDb((db, config) => exportCommand(db, config, opts, io)),
  );

program.parseAsync().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
