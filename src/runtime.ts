import { type Config, ConfigError, loadConfig } from "./config.js";
import { closeDb, type Db, openDatabase } from "./db.js";
import { createLogger, type Logger } from "./log.js";
import { exitProcess } from "./ops/exit.js";
import { rateLimited } from "./ops/rate-limited-log.js";
import { errorKind } from "./error-chain.js";

/** What every long-running command needs: validated config, a migrated database, a logger. */
export interface Runtime {
  config: Config;
  db: Db;
  log: Logger;
}

/** `logTo`: where the JSON log goes (stderr for a one-off command that answers on stdout). */
export async function openRuntime(env: NodeJS.ProcessEnv = process.env, logTo: "stdout" | "stderr" = "stdout"): Promise<Runtime> {
  const config = loadConfig(env);
  const log = createLogger(config.LOG_LEVEL, "artdesc", logTo);
  const { db, applied } = await openDatabase(config.DATABASE_URL, {
    // Every failed write while the disk is full or the file is gone: logged once a minute per kind,
    // with the count held back, not once per claim, heartbeat and probe.
    onWriteFailure: (err, what) => rateLimited(log).error(`database write failed: ${what}: ${errorKind(err)}`, { err, what }, "database write failed"),
    poolSize: config.DATABASE_POOL_SIZE,
  });
  if (applied.length) log.info({ applied }, "database migrated");
  return { config, db, log };
}

/** How long stopping may take after an uncaught error before the process exits anyway (runUntilSignal). */
export const CRASH_STOP_MS = 15_000;

/** A part of the service that runs until stopped (API, sync schedule, describe worker). */
export interface Component {
  name: string;
  /** Stop taking new work, finish or hand back the current item, release resources. */
  stop(): Promise<void>;
  /**
   * The process must end within CRASH_STOP_MS (an uncaught error): a grace period for work in
   * progress is skipped, and that work is handed back now, while there is time to. Called before
   * or during stop().
   */
  hurry?(): void;
}

/**
 * Starts the components and runs them until SIGTERM or SIGINT, then stops them in reverse order
 * and closes the database. The signal handlers are installed before anything starts, so a signal
 * that arrives while a component is still loading (a model, say) waits for the start to finish
 * and then stops cleanly. A second signal exits at once.
 *
 * An error nothing caught (a promise rejected with no handler, an exception thrown from a
 * callback) is a bug: node would print it to stderr, outside the JSON log, and end the process
 * where it stood. Here it is logged at level fatal with its stack, the components stop as for a
 * signal, but without grace periods (the worker hands its job back at once: hurry), and the process exits with code 1, so that a supervisor
 * (docker compose's restart policy, systemd, the API's primary for a forked API process) starts it
 * again in a known state. A stop that hangs ends after `crashStopMs`.
 */
export function runUntilSignal(rt: Runtime, start: () => Promise<Component[]>, { crashStopMs = CRASH_STOP_MS } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    let stopping = false;
    const started = start();
    const stop = async (signal: string) => {
      if (stopping) {
        rt.log.warn({ signal }, "asked to stop while stopping: exiting now");
        exitProcess(rt.log, 1, 0);
        return;
      }
      stopping = true;
      rt.log.info({ signal }, "shutting down");
      const components = await started.catch(() => [] as Component[]);
      for (const c of [...components].reverse()) {
        try {
          await c.stop();
          rt.log.info({ component: c.name }, "stopped");
        } catch (err) {
          rt.log.error({ component: c.name, err }, "stop failed");
        }
      }
      await closeDb(rt.db);
      resolve();
      // Everything is stopped; leftovers (a cluster IPC channel, a library's timer) must not keep
      // the process alive. The code is 1 after a crash (process.exitCode), else 0. A model thread
      // still inside onnxruntime (a hurried batch, a run left behind) is waited for, within limits.
      setImmediate(() => exitProcess(rt.log));
    };
    process.once("SIGTERM", () => void stop("SIGTERM"));
    process.once("SIGINT", () => void stop("SIGINT"));
    let crashed = false;
    const crash = (what: string) => (err: unknown) => {
      rt.log.fatal({ err }, `${what}: a bug; stopping, to be restarted in a known state`);
      process.exitCode = 1;
      // One bug often brings more errors while the service stops: each is logged, and the stop
      // already under way (a signal's or the first error's) goes on, within the deadline.
      if (!crashed) {
        setTimeout(() => exitProcess(rt.log, 1, 0), crashStopMs).unref();
        // A description may have minutes to run; the deadline would end the process with its
        // job still RUNNING, waiting for HEARTBEAT_STALE_S and one attempt down.
        void started.then(
          (components) => {
            for (const c of components) c.hurry?.();
          },
          () => undefined,
        );
      }
      crashed = true;
      if (!stopping) void stop(what);
    };
    process.on("unhandledRejection", crash("unhandled promise rejection"));
    process.on("uncaughtException", crash("uncaught exception"));
    started.catch(async (err: unknown) => {
      // A setting that only shows its fault at start (HOST, PORT) is a configuration error too.
      if (err instanceof ConfigError) {
        await closeDb(rt.db).catch(() => undefined);
        exitOnConfigError(err);
      }
      reject(err);
    });
  });
}

/** Prints a configuration error as one message and exits 2; other errors propagate. */
export function exitOnConfigError(err: unknown): never {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(2);
  }
  throw err;
}
