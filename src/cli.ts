#!/usr/bin/env node
import { Command } from "commander";
import { startApiService } from "./api/component.js";
import { loadConfig } from "./config.js";
import { sqlitePath } from "./db.js";
import { pullCommand, synthCommand } from "./describe/models/commands.js";
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

const models = program.command("models").description("Fetch or synthesize the description model's files");

models
  .command("synth")
  .description("Write a model folder with the real architecture and seeded random weights (for tests and benchmarks)")
  .requiredOption("--preset <name>", "tiny | smolvlm-500m")
  .requiredOption("--out <dir>", "the folder to write")
  .option("--dtype <list>", "fp32, fp16 or fp32,fp16", "fp32")
  .option("--seed <n>", "weight seed", "1")
  .action((opts) => {
    try {
      synthCommand(opts, process.stderr);
    } catch (err) {
      exitOnConfigError(err);
    }
  });

models
  .command("pull")
  .description("Download config, processor, tokenizer and ONNX files from MODEL_HUB_URL into MODEL_DIR/<model>")
  .option("--model <id>", "model id (default MODEL_ID)")
  .option("--revision <rev>", "branch, tag or commit (default MODEL_REVISION)")
  .option("--dtype <dtype>", "one dtype or module=dtype pairs, as MODEL_DTYPE (default: MODEL_DTYPE or the device's default)")
  .action(async (opts) => {
    let config;
    try {
      config = loadConfig();
    } catch (err) {
      exitOnConfigError(err);
    }
    const ok = await pullCommand(opts, config, process.stderr).catch(exitOnConfigError);
    if (!ok) process.exitCode = 1;
  });

program.parseAsync().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
