#!/usr/bin/env node
import { userInfo } from "node:os";
import { Command } from "commander";
import { loadConfig, redactPassword } from "./config.js";
import { closeDb, databaseKind, databaseOpenFailure, sqlitePath } from "./db.js";
import { positiveInt } from "./cli-args.js";
import { COPY_HELP } from "./copy/help.js";
import { parseSeed } from "./experiments/sample.js";
import { addGenerationOptions, flagOf, requestedFromOptions } from "./generation/flags.js";
import { checkRequested, ParamOutOfRangeError, paramsFromConfig } from "./generation/params.js";
import type { Config } from "./config.js";
import type { Db } from "./db.js";
import { commandErrorWords, outputErrorWords } from "./ops/command-errors.js";
import { exitProcess } from "./ops/exit.js";
import { type Component, exitOnConfigError, openRuntime, runUntilSignal } from "./runtime.js";
import { migrate } from "./store/migrate.js";
import { SyncConfigError } from "./sync/http.js";

/*
 * Each command loads what it runs, when it runs (the dynamic imports in the actions below): the
 * GraphQL API alone takes about 0.8 s of CPU to load, and `artdesc status --check`, a container's
 * health check every minute, needs none of it. test/cli/lazy-load.test.ts holds each command to
 * its modules.
 */

/** The GraphQL API (graphql-yoga, Pothos and the schema): start and serve. */
const api = () => import("./api/component.js");
/** The sync schedule (node-cron and the sync it starts): start and daemon. */
const schedule = () => import("./jobs/schedule.js");
/** The one-shot commands over the database (status, search, export, the search index). */
const ops = () => import("./ops/commands.js");
/** IMAGE_DIR's check (sharp): the commands that download images. */
const checkImageDir = async (config: Config) => (await import("./sync/images.js")).checkImageDir(config);

/** The describe worker pulls in onnxruntime and transformers.js: loaded only by the commands that run it. */
async function startDescribeWorker(...args: Parameters<typeof import("./jobs/worker.js").startDescribeWorker>) {
  const worker = await import("./jobs/worker.js");
  return worker.startDescribeWorker(...args);
}

/** The background embedder (semantic search): runs next to every describe worker. */
async function startEmbedWorker(rt: { db: Db; config: Config; log: import("./log.js").Logger }, role: string, beside: { holder: string }): Promise<Component> {
  const { startEmbedWorker: start } = await import("./embed/jobs.js");
  return start({ db: rt.db, config: rt.config, log: rt.log, role, heartbeatId: beside.holder });
}

const program = new Command()
  .name("artdesc")
  .description("Mirror artworks from Wikidata and Commons, describe them with SmolVLM, serve them over GraphQL.")
  .showHelpAfterError()
  // Bad usage (an unknown command or option, a missing argument) exits 2, as every usage error
  // does; commander's own code is 1. Commands made below inherit it.
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));

program
  .command("start")
  .description("Run everything one machine needs in one process: the GraphQL API, the sync schedule and the describe worker")
  .action(async () => {
    const rt = await openRuntime().catch(exitOnConfigError);
    await checkImageDir(rt.config).catch(exitOnSyncConfigError);
    await runUntilSignal(rt, async () => {
      const { isApiWorkerProcess, startApiService } = await api();
      const components: Component[] = [await startApiService(rt)];
      // With API_WORKERS > 1 the forked API processes run this command too: they serve the API only.
      if (isApiWorkerProcess()) return components;
      try {
        // Each sync runs in a child process at background priority: the API keeps this
        // process's one JavaScript thread, and the worker here picks up the jobs it queues.
        components.push(await (await schedule()).startSyncSchedule(rt, { inChildProcess: true }));
      } catch (err) {
        // The API is still useful without the schedule; say plainly why nothing will sync.
        if (!(err instanceof SyncConfigError)) throw err;
        rt.log.error(err.message + " The sync schedule is off.");
      }
      const describer = await startDescribeWorker(rt, "start");
      components.push(describer);
      components.push(await startEmbedWorker(rt, "start", describer));
      return components;
    });
  });

program
  .command("serve")
  .description("Run the GraphQL API alone (for split deployments)")
  .action(async () => {
    const rt = await openRuntime().catch(exitOnConfigError);
    await runUntilSignal(rt, async () => [await (await api()).startApiService(rt)]);
  });

program
  .command("daemon")
  .description(
    "Run the sync schedule (SYNC_CRON in SYNC_TIMEZONE; a first sync when the store was never synced) and the describe worker, without the API",
  )
  .action(async () => {
    const rt = await openRuntime().catch(exitOnConfigError);
    await checkImageDir(rt.config).catch(exitOnSyncConfigError);
    await runUntilSignal(rt, async () => {
      const syncs = await (await schedule()).startSyncSchedule(rt).catch(exitOnSyncConfigError);
      const describer = await startDescribeWorker(rt, "daemon");
      return [syncs, describer, await startEmbedWorker(rt, "daemon", describer)];
    });
  });

program
  .command("worker")
  .description("Run the describe worker alone: loads the model once and describes queued jobs (run as many as you like)")
  .action(async () => {
    const rt = await openRuntime().catch(exitOnConfigError);
    await runUntilSignal(rt, async () => {
      const describer = await startDescribeWorker(rt, "worker");
      return [describer, await startEmbedWorker(rt, "worker", describer)];
    });
  });

program
  .command("sync")
  .description("Sync the mirror with Wikidata and Commons once, now")
  .option("--creator <qid...>", "creator QIDs (default SYNC_CREATORS)")
  .option("--full", "fetch every work's details, every label and every image record, not only what changed")
  .action(async (opts: { creator?: string[]; full?: boolean }) => {
    const creators = opts.creator?.map((q) => q.trim().toUpperCase());
    const bad = opts.creator?.filter((q) => !/^Q[1-9][0-9]*$/i.test(q.trim())) ?? [];
    if (bad.length) {
      // As typed: "goya" is a name, which sync cannot look up (export, search and the API take names).
      console.error(`--creator: not a Wikidata item id like Q5432: ${bad.map((q) => JSON.stringify(q)).join(", ")} (sync takes creators' QIDs; find one on wikidata.org)`);
      process.exit(2);
    }
    // A one-off batch job: it leaves the CPU to an API or worker running on the same machine.
    const [{ runAtBackgroundPriority }, { syncCommand }] = await Promise.all([import("./sync/sync.js"), import("./sync/command.js")]);
    runAtBackgroundPriority();
    // Its log goes to stderr with the progress: stdout holds the summary alone.
    const rt = await openRuntime(process.env, "stderr").catch(exitOnConfigError);
    const status = await syncCommand(rt, { creators, full: opts.full }).catch(exitOnSyncConfigError);
    await closeDb(rt.db);
    process.exit(status);
  });

program
  .command("migrate")
  .description("Create the database if needed and apply pending migrations")
  .action(async () => {
    let config;
    try {
      config = loadConfig();
    } catch (err) {
      exitOnConfigError(err);
    }
    // PostgreSQL: the migrator that openDatabase runs too, under Prisma's advisory lock.
    const postgres = databaseKind(config.DATABASE_URL) === "postgresql";
    const where = postgres ? redactPassword(config.DATABASE_URL) : sqlitePath(config.DATABASE_URL);
    // A DATABASE_URL that names nothing usable (a folder, a file that is no database, a server that does not answer) is said as every command says it: exit 2.
    const { applied, total } = await (postgres ? (await import("./store/migrate-postgres.js")).migratePostgres(config.DATABASE_URL) : Promise.resolve().then(() => migrate(where))).catch(
      (err: unknown) => exitOnConfigError(databaseOpenFailure(config.DATABASE_URL, err) ?? err),
    );
    console.log(`${where}: ${applied.length} migration(s) applied, ${total} in all`);
  });

const describeCommand = program
  .command("describe")
  .description("Describe local image files with the configured model (offline, from MODEL_DIR)")
  .argument("[image-file...]", "images to describe")
  .option("--model <dir>", "model folder (default MODEL_DIR/MODEL_ID)")
  .option("--like <descriptionId>", "run a stored description again (its parameters, instruction and image); exit 0 same tokens, 1 other tokens, 3 not reproducible");
// Every generation parameter is a flag; a value out of its range is a usage error (exit 2).
addGenerationOptions(describeCommand)
  .option("--batch <n>", "images decoded together (WORKER_BATCH)", positiveInt)
  .option("--json", "one JSON object per image")
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
  .action(async (files: string[], opts: { model?: string; batch?: number; json?: boolean; like?: string } & Record<string, unknown>) => {
    if (opts.like !== undefined) {
      // The stored description says every parameter and the image: nothing else may be given.
      if (files.length || Object.keys(requestedFromOptions(opts)).length || opts.batch !== undefined) {
        console.error("error: --like runs a stored description as it was made: give no image files, generation flags or --batch");
        process.exit(2);
      }
      const { describeLike } = await import("./describe/command.js");
      const like = opts.like;
      return withDb((db, config) =>
        describeLike(config, db, like, { model: opts.model, json: opts.json }, {
          out: (l) => process.stdout.write(`${l}\n`),
          err: (l) => process.stderr.write(`${l}\n`),
        }),
      );
    }
    if (files.length === 0) {
      console.error("error: missing argument 'image-file' (or --like <descriptionId>)");
      process.exit(2);
    }
    let config;
    try {
      config = loadConfig();
    } catch (err) {
      exitOnConfigError(err);
    }
    let params;
    try {
      params = checkRequested(requestedFromOptions(opts), paramsFromConfig(config));
    } catch (err) {
      // Each flag was checked alone; this is a combination (--min-new-tokens above the max in force).
      if (!(err instanceof ParamOutOfRangeError)) throw err;
      console.error(`error: ${flagOf(err.field)} ${err.problem}`);
      process.exit(2);
    }
    const { describeFiles } = await import("./describe/command.js");
    const failures = await describeFiles(config, files, { model: opts.model, batch: opts.batch, json: opts.json, params }, {
      out: (l) => process.stdout.write(`${l}\n`),
      err: (l) => process.stderr.write(`${l}\n`),
    });
    if (failures) process.exitCode = 1;
  });

const models = program.command("models").description("Fetch or synthesize the description model's (or, with --embed / an embed-* preset, the embedding model's) files");

models
  .command("synth")
  .description("Write a model folder with the real architecture and seeded random weights (for tests and benchmarks)")
  .requiredOption("--preset <name>", "tiny | smolvlm-500m; embedding models: embed-tiny (the semantic test model) | embed-e5-small (multilingual-e5-small's 384 dimensions and 12 layers)")
  .requiredOption("--out <dir>", "the folder to write")
  .option("--dtype <list>", "fp32, fp16, int8, uint8, quantized, q4 or q4f16; comma-separated for several (default: fp32; embed-* presets: fp32 and quantized, the file EMBED_MODEL_DTYPE picks by default)")
  .option("--seed <n>", "weight seed", "1")
  .action(async (opts) => {
    const { synthCommand } = await import("./describe/models/commands.js");
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
  .option("--embed", "the embedding model for semantic search instead (EMBED_MODEL_ID, EMBED_MODEL_REVISION, EMBED_MODEL_DTYPE)")
  .action(async (opts) => {
    let config;
    try {
      config = loadConfig();
    } catch (err) {
      exitOnConfigError(err);
    }
    const { pullCommand } = await import("./describe/models/commands.js");
    const ok = await pullCommand(opts, config, process.stderr).catch(exitOnConfigError);
    if (!ok) process.exitCode = 1;
  });

function exitOnSyncConfigError(err: unknown): never {
  if (err instanceof SyncConfigError) {
    console.error(err.message);
    process.exit(2);
  }
  throw err;
}

/** Runs a one-shot command with a database; its return value is the exit code. */
async function withDb(fn: (db: Db, config: Config) => Promise<number>): Promise<void> {
  const { config, db } = await (await ops()).openCommandDb().catch(exitOnConfigError);
  try {
    process.exitCode = await fn(db, config);
  } finally {
    await closeDb(db);
  }
}
const io = { stdout: process.stdout, stderr: process.stderr };
const collect = (value: string, previous: string[]) => [...previous, value];

program
  .command("search")
  .description("Search active artworks by words, meaning or both; prints the best matches with snippets")
  .argument("<words...>", 'what to look for, as typed: words, "a phrase", prefix*, -excluded')
  .option("-n, --limit <n>", "how many matches to print (1-100)", "10")
  .option("--creator <creator>", "only works by this creator (QID or label words)")
  .option("--mode <mode>", "text, semantic or hybrid (default: hybrid once descriptions are embedded, else text)")
  // "-hound" is an excluded word, not an unknown option: the words take it as typed.
  .allowUnknownOption()
  .action((words: string[], opts: { limit: string; creator?: string; mode?: string }) => {
    // A mistyped long option stays an error, not two words to look for.
    const typo = words.find((w) => /^--\p{L}/u.test(w));
    if (typo) {
      console.error(`error: unknown option '${typo.split("=")[0]}' (an excluded word takes one dash: -word)`);
      process.exit(2);
    }
    return withDb(async (db, config) => {
      const { meaningSource } = await import("./embed/embedder.js");
      const meaning = meaningSource(config);
      try {
        return await (await ops()).searchCommand(db, words.join(" "), { limit: Number(opts.limit), creator: opts.creator, mode: opts.mode, meaning }, io);
      } finally {
        await meaning.close();
      }
    });
  });

program
  .command("embed")
  .description("Embed descriptions for semantic search now (the workers do it in the background too)")
  .option("--missing", "every active described work whose vector is missing or stale (changed text or model)")
  .action((opts: { missing?: boolean }) =>
    withDb(async (db, config) => {
      if (!opts.missing) {
        console.error("artdesc embed: say what to embed: --missing");
        return 2;
      }
      const { embedCommand } = await import("./embed/command.js");
      return embedCommand(db, config, io);
    }),
  );

program
  .command("similar")
  .description("Works whose descriptions are nearest in meaning to this work's (semantic search must be on)")
  .argument("<qid>", "the work's Wikidata QID")
  .option("-n, --limit <n>", "how many to print (1-50)", "10")
  .option("--same-creator", "only works that share a creator with it")
  .action((qid: string, opts: { limit: string; sameCreator?: boolean }) =>
    withDb(async (db, config) => {
      const { similarCommand } = await import("./embed/command.js");
      return similarCommand(db, config, qid, { limit: opts.limit, sameCreator: opts.sameCreator ?? false }, io);
    }),
  );

program
  .command("search-index")
  .description("Maintain the full-text index")
  .command("rebuild")
  .description("Refill the search index from the store (after a restore; triggers keep it current otherwise)")
  .action(() => withDb(async (db) => (await ops()).rebuildSearchIndexCommand(db, io)));

program
  .command("quality")
  .description("Quality signals of descriptions (docs/quality.md)")
  .command("recompute")
  .description("Assess descriptions not yet assessed (written before quality signals, or whose assessment failed)")
  .option("--all", "assess every description again (after the checks changed)")
  .action((opts: { all?: boolean }) =>
    withDb(async (db, config) => (await import("./quality/command.js")).qualityRecomputeCommand(db, config, opts, io)),
  );

const experiment = program
  .command("experiment")
  .description(
    "Describe one sample of works under two or more parameter sets (arms) and compare them; the texts never become current. " +
      "Waits and prints the report (a worker runs here when none is running)",
  )
  .option("--sample <n>", "works to sample: active works with a downloaded image (1-5000)", positiveInt)
  .option("--seed <n>", "sample seed: the same seed draws the same works", parseSeed, 1)
  .option("--creator <creator>", "only works by this creator (QID or label words)")
  .option("--name <text>", "a label for the experiment");
// --a … --h: one arm each; "name=value,…" pairs, a JSON object of parameters, or "defaults".
for (const letter of "abcdefgh") experiment.option(`--${letter} <params>`, letter === "a" ? 'arm a, the baseline: e.g. "numBeams=1" or \'{"prompt":"…"}\'' : `arm ${letter}`);
experiment
  .option("--arm <name:params>", 'a named arm, e.g. "beam4:numBeams=4,maxNewTokens=256" (repeat; after --a…--h)', collect, [])
  .option("--no-wait", "queue the jobs, print the experiment id and exit")
  .option("--run", "describe in this process even when a worker is running")
  .option("--no-run", "never describe in this process: wait for a worker")
  .option("--json", "print the report as JSON")
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
  .action(async (opts: Record<string, unknown> & { sample?: number; seed: number; creator?: string; name?: string; arm: string[]; wait: boolean; run?: boolean; json?: boolean }) => {
    const x = await import("./experiments/command.js");
    const { ArmError, splitArmOption } = await import("./experiments/arms.js");
    const { sample } = opts;
    const arms: { name: string; text: string }[] = [];
    try {
      if (sample === undefined) throw new ArmError("--sample <n> is required (or: artdesc experiment wait|report|list|cancel)");
      for (const letter of "abcdefgh") if (typeof opts[letter] === "string") arms.push({ name: letter, text: opts[letter] as string });
      for (const text of opts.arm) arms.push(splitArmOption(text));
    } catch (err) {
      if (!(err instanceof ArmError)) throw err;
      console.error(`error: ${err.problem}`);
      process.exit(2);
    }
    await withExperimentDb((db, config, deps) => x.experimentCreateCommand(db, config, { ...opts, sample, arms, requestedBy: cliUser() }, io, deps));
  });
experiment
  .command("wait")
  .description("Wait for an experiment's jobs (running a worker here when none is running), then print its report")
  .argument("<id>", "the experiment's number")
  .option("--run", "describe in this process even when a worker is running")
  .option("--no-run", "never describe in this process")
  .option("--json", "print the report as JSON")
  .action(async (id: string, _opts: unknown, cmd: Command) => {
    const x = await import("./experiments/command.js");
    // The parent command has the same flags and takes them wherever they stand: read both.
    const opts = cmd.optsWithGlobals<{ run?: boolean; json?: boolean }>();
    await withExperimentDb((db, config, deps) => x.experimentWaitCommand(db, config, id, opts, io, deps));
  });
experiment
  .command("report")
  .description("Print an experiment's report now (partial while it runs): Markdown, or JSON")
  .argument("<id>", "the experiment's number")
  .option("--json", "print the report as JSON")
  .action(async (id: string, _opts: unknown, cmd: Command) => {
    const x = await import("./experiments/command.js");
    await withDb((db) => x.experimentReportCommand(db, id, cmd.optsWithGlobals<{ json?: boolean }>(), io));
  });
experiment
  .command("list")
  .description("List experiments, newest first")
  .option("-n, --limit <n>", "how many", positiveInt, 20)
  .action(async (opts: { limit: number }) => {
    const x = await import("./experiments/command.js");
    await withDb((db) => x.experimentListCommand(db, opts, io));
  });
experiment
  .command("cancel")
  .description("Cancel an experiment's queued and running jobs (texts already written stay in its report)")
  .argument("<id>", "the experiment's number")
  .action(async (id: string) => {
    const x = await import("./experiments/command.js");
    await withDb((db) => x.experimentCancelCommand(db, id, io));
  });

/** Where a one-off command (no JSON log) says why it ends abnormally. */
const stderrLog = { error: (fields: object, msg: string) => console.error(`${msg} ${JSON.stringify(fields)}`) };

/**
 * An experiment command that may wait: SIGINT/SIGTERM stop the wait (a worker running here hands its
 * jobs back) instead of killing the process; a second signal exits at once.
 */
async function withExperimentDb(fn: (db: Db, config: Config, deps: import("./experiments/command.js").WaitDeps) => Promise<number>): Promise<void> {
  const stop = new AbortController();
  const onSignal = () => (stop.signal.aborted ? exitProcess(stderrLog, 130, 0) : stop.abort());
  process.on("SIGINT", onSignal).on("SIGTERM", onSignal);
  await withDb(async (db, config) => {
    const deps = {
      signal: stop.signal,
      startWorker: async (experimentId: number) => (await import("./experiments/worker.js")).startExperimentWorker(db, config, experimentId),
    };
    return fn(db, config, deps);
  });
  process.off("SIGINT", onSignal).off("SIGTERM", onSignal);
  // A worker thread or a library timer must not keep a finished command alive.
  setImmediate(() => exitProcess(stderrLog));
}

/** Who asked, as recorded on an experiment made from the command line. */
function cliUser(): string | null {
  try {
    return `${userInfo().username} (cli)`;
  } catch {
    return null;
  }
}

program
  .command("status")
  .description("Last sync, jobs, worker heartbeats, throughput and backlog")
  .option("--check", "exit 1 when a heartbeat is stale (for container health checks)")
  .option("--role <role>", "with --check: only heartbeats of this role (worker, daemon, start), and at least one must exist")
  .option("--this-host", "with --check: only the processes on this host (a container's own health check)")
  .option("--json", "print the status as JSON")
  .action((opts: { check?: boolean; role?: string; thisHost?: boolean; json?: boolean }) => withDb(async (db, config) => (await ops()).statusCommand(db, config, opts, io)));

program
  .command("db")
  .description("Database maintenance")
  .command("copy")
  .description(
    "Copy the whole mirror from DATABASE_URL into another database (SQLite file: or postgresql://, either way), keeping ids; " +
      "rerun the same command to resume after an interruption. Image files are not copied: point the new deployment's IMAGE_DIR at the same folder",
  )
  .requiredOption("--to <url>", "the target: file:<path> or postgresql://user@host/database (created and migrated; must be empty)")
  .option("--batch <n>", "rows per read and per write transaction (1-10000, default 500)", positiveInt)
  .addHelpText("after", COPY_HELP)
  // A bad argument is a usage error (exit 2), as the help says, not commander's 1.
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
  .action(async (opts: { to: string; batch?: number }) => {
    let config;
    try {
      config = loadConfig();
    } catch (err) {
      exitOnConfigError(err);
    }
    const { dbCopyCommand } = await import("./copy/command.js");
    process.exitCode = await dbCopyCommand(config, opts, io);
  });

program
  .command("export")
  .description("Stream artworks with their current descriptions as JSON lines or CSV, in constant memory")
  .requiredOption("--format <format>", "jsonl or csv")
  .option("--creator <creator>", "only works by this creator (QID or label words); repeat for several", collect, [])
  .option("--since <date>", "only works changed or described since this date (YYYY-MM-DD or ISO date-time)")
  .option("--out <file>", "write to this file instead of stdout")
  .option("--include-inactive", "also export merged, deleted and no-longer-attributed works")
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
  .action((opts: { format: string; creator: string[]; since?: string; out?: string; includeInactive?: boolean }) =>
    withDb(async (db, config) => (await ops()).exportCommand(db, config, opts, io)),
  );

// A reader that went away (`artdesc status | head -1`, `| true`) is not a failure of the command:
// the EPIPE of a later write ends it quietly (exit 0), not with an unhandled 'error' and a stack.
// A full disk behind a redirected stdout (`export > file`) is one clear line and exit 1, not a stack.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
    if (stream === process.stdout && err.code) {
      console.error(outputErrorWords(err.code));
      process.exit(1);
    }
    throw err;
  });
}

program.parseAsync().catch((err: unknown) => {
  console.error(commandErrorWords(err));
  process.exit(1);
});
