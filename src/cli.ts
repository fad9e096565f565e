#!/usr/bin/env node
import { Command } from "commander";
import { startApi } from "./api/component.js";
import { loadConfig } from "./config.js";
import { sqlitePath } from "./db.js";
import { describeFiles, positiveInt } from "./describe/command.js";
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

program
  .command("describe")
  .description("Describe local image files with the configured model (offline, from MODEL_DIR)")
  .argument("<image-file...>", "images to describe")
  .option("--model <dir>", "model folder (default MODEL_DIR/MODEL_ID)")
  .option("--beams <n>", "number of beams (DESCRIBE_NUM_BEAMS)", positiveInt)
  .option("--max-new-tokens <n>", "token limit (DESCRIBE_MAX_NEW_TOKENS)", positiveInt)
  .option("--target-words <n>", "target length in words, 0 = off (DESCRIBE_TARGET_WORDS)", (v) => (v === "0" ? 0 : positiveInt(v)))
  .option("--image-splitting", "tile the image from its own resolution (DESCRIBE_IMAGE_SPLITTING)")
  .option("--batch <n>", "images decoded together (WORKER_BATCH)", positiveInt)
  .option("--json", "one JSON object per image")
  .action(async (files: string[], opts) => {
    let config;
    try {
      config = loadConfig();
    } catch (err) {
      exitOnConfigError(err);
    }
    const failures = await describeFiles(config, files, opts, {
      out: (l) => process.stdout.write(`${l}\n`),
      err: (l) => process.stderr.write(`${l}\n`),
    });
    if (failures) process.exitCode = 1;
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
