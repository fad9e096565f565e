#!/usr/bin/env node
import { Command } from "commander";
import { startApiService } from "./api/component.js";
import { loadConfig } from "./config.js";
import { sqlitePath } from "./db.js";
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
    const components: Component[] = [await startApiService(rt)];
    await runUntilSignal(rt, components);
  });

program
  .command("serve")
  .description("Run the GraphQL API alone (for split deployments)")
  .action(async () => {
    const rt = await openRuntime().catch(exitOnConfigError);
    await runUntilSignal(rt, [await startApiService(rt)]);
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

program.parseAsync().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
