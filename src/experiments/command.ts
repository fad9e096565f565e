import type { Writable } from "node:stream";
import type { Config } from "../config.js";
import type { Db } from "../db.js";
import { paramsFromConfig } from "../generation/params.js";
import { numberedIdOrNull } from "../graphql/ids.js";
import type { Component } from "../runtime.js";
import { ArmError, type ArmText, decodeArms, formatArm, parseArms } from "./arms.js";
import { addCounts, experimentState, jobTotal, NO_JOBS, progressLine, renderMarkdown } from "./report.js";
import { cancelExperiment, createExperiment, ExperimentNotFoundError, ExperimentRequestError, experimentJobCounts, experimentReport, findExperiment } from "./store.js";
import { dbTime } from "../store/db-clock.js";

/**
 * `artdesc experiment …`: create an experiment and wait for it, wait for one again, print its
 * report, list, cancel. Each takes what it needs and the streams to write to and returns the exit
 * code; cli.ts is the thin entry. The report goes to stdout, progress and notes to stderr.
 *
 * Waiting: the jobs are ordinary describe jobs, so any `artdesc worker`/`start`/`daemon` runs them.
 * When no worker is alive (no fresh heartbeat of one with its model loaded or loading) the command
 * runs a worker in its own process that takes this experiment's jobs only (`--run` always does,
 * `--no-run` never). Stopping the command (Ctrl-C) hands running jobs back to the queue; waiting
 * again (`artdesc experiment wait <id>`) or any worker carries on where it stopped.
 */

export interface ExperimentIo {
  stdout: Writable;
  stderr: Writable;
}

/** What waiting needs from outside: a worker to start (the real engine in cli.ts) and when to stop. */
export interface WaitDeps {
  /** Starts a worker that claims this experiment's jobs only. */
  startWorker: (experimentId: number) => Promise<Component>;
  /** Aborted on SIGINT/SIGTERM: stop waiting, hand the jobs back. */
  signal?: AbortSignal;
  /** How often the jobs are counted (default 1 s). */
  pollMs?: number;
  /** Least time between two progress lines (default 5 s); the last one is always printed. */
  progressEveryMs?: number;
}

export interface WaitOptions {
  /** true: always run a worker here; false: never; undefined: when no worker is alive. */
  run?: boolean | undefined;
  json?: boolean | undefined;
}

export interface CreateOptions extends WaitOptions {
  sample: number;
  seed: number;
  creator?: string | undefined;
  name?: string | undefined;
  arms: ArmText[];
  /** Wait for the jobs and print the report (default); false: queue and exit. */
  wait: boolean;
  requestedBy?: string | null;
}

/** Exit codes: 0 finished with every job done, 1 finished with failed jobs (or cancelled), 2 bad usage, 130 interrupted. */
export const EXPERIMENT_EXIT = { ok: 0, failures: 1, usage: 2, interrupted: 130 } as const;

const line = (s: Writable, text: string) => s.write(`${text}\n`);

/** An experiment id as a user gives it: its number or its GraphQL global id; null when neither. */
export function parseExperimentArg(raw: string): number | null {
  return numberedIdOrNull(raw, "Experiment");
}

export async function experimentCreateCommand(db: Db, config: Config, o: CreateOptions, io: ExperimentIo, deps: WaitDeps): Promise<number> {
  let arms;
  try {
    arms = parseArms(o.arms, paramsFromConfig(config));
  } catch (err) {
    if (!(err instanceof ArmError)) throw err;
    line(io.stderr, `error: ${err.problem}`);
    return EXPERIMENT_EXIT.usage;
  }
  let created;
  try {
    created = await createExperiment(db, config, { name: o.name, sampleSize: o.sample, seed: o.seed, creator: o.creator, arms, requestedBy: o.requestedBy });
  } catch (err) {
    if (!(err instanceof ExperimentRequestError)) throw err;
    line(io.stderr, `error: ${err.problem}`);
    return EXPERIMENT_EXIT.usage;
  }
  const { experiment: e, jobs } = created;
  const works = jobs / arms.length;
  line(
    io.stderr,
    `experiment ${e.id}: ${works} work${works === 1 ? "" : "s"}${works < o.sample ? ` (of ${o.sample} asked for: no more qualify)` : ""} × ` +
      `${arms.length} arms (${arms.map((a) => `${a.name}: ${formatArm(a.params)}`).join("; ")}) = ${jobs} describe jobs queued`,
  );
  if (!o.wait) {
    line(io.stdout, String(e.id));
    line(io.stderr, `follow it with: artdesc experiment wait ${e.id}   (report: artdesc experiment report ${e.id})`);
    return EXPERIMENT_EXIT.ok;
  }
  return waitForExperiment(db, config, e.id, o, io, deps);
}

/** A worker that can take jobs now: fresh heartbeat, model loaded or loading. */
async function workerAlive(db: Db, config: Config): Promise<boolean> {
  const since = new Date((await dbTime(db)).getTime() - config.HEARTBEAT_STALE_S * 1000);
  const n = await db.heartbeat.count({ where: { role: { in: ["worker", "start", "daemon"] }, beatAt: { gte: since }, modelStatus: { in: ["loaded", "loading"] } } });
  return n > 0;
}

/**
 * Waits until the experiment's jobs are all done (or it is cancelled), printing progress to
 * stderr, then prints the report. See the module comment for when a worker runs here.
 */
export async function waitForExperiment(db: Db, config: Config, id: number, o: WaitOptions, io: ExperimentIo, deps: WaitDeps): Promise<number> {
  const e = await findExperiment(db, id);
  const arms = decodeArms(e.arms);
  const pollMs = deps.pollMs ?? 1_000;
  const progressEveryMs = deps.progressEveryMs ?? 5_000;
  let worker: Component | null = null;
  let lastText = "";
  let lastAt = 0;
  let hinted = false;
  const progress = async (force: boolean) => {
    const counts = await experimentJobCounts(db, id);
    const perArm = arms.map((a) => ({ name: a.name, jobs: counts[a.name] ?? NO_JOBS }));
    const cancelled = (await db.experiment.findUniqueOrThrow({ where: { id }, select: { cancelledAt: true } })).cancelledAt;
    const state = experimentState(perArm.map((a) => a.jobs).reduce(addCounts, NO_JOBS), cancelled);
    const text = progressLine(perArm, state);
    if (text !== lastText && (force || state !== "RUNNING" || Date.now() - lastAt >= progressEveryMs)) {
      line(io.stderr, `experiment ${id}: ${text}`);
      lastText = text;
      lastAt = Date.now();
    }
    return state;
  };
  try {
    let state = await progress(true);
    if (state === "RUNNING") {
      const run = o.run ?? !(await workerAlive(db, config));
      if (run) {
        line(io.stderr, `describing in this process (this experiment's jobs only)${o.run ? "" : ": no worker is running"}`);
        worker = await deps.startWorker(id);
      }
    }
    while (state === "RUNNING") {
      if (deps.signal?.aborted) {
        line(io.stderr, `stopped waiting; the jobs stay queued. Carry on with: artdesc experiment wait ${id}`);
        return EXPERIMENT_EXIT.interrupted;
      }
      await sleep(pollMs, deps.signal);
      state = await progress(false);
      if (state === "RUNNING" && !worker && !hinted && o.run === undefined && !(await workerAlive(db, config))) {
        // The worker we relied on went away: take over, so the wait ends.
        line(io.stderr, "no worker is running any more: describing in this process (this experiment's jobs only)");
        worker = await deps.startWorker(id);
      } else if (state === "RUNNING" && !worker && !hinted && o.run === false && !(await workerAlive(db, config))) {
        line(io.stderr, `no worker is running: start one (artdesc worker), or wait with --run`);
        hinted = true;
      }
    }
  } finally {
    // A stopped worker hands back what it holds (the jobs go back to the queue).
    if (worker) await worker.stop();
  }
  return printReport(db, id, o, io);
}

async function printReport(db: Db, id: number, o: { json?: boolean | undefined }, io: ExperimentIo): Promise<number> {
  const report = await experimentReport(db, id);
  line(io.stdout, o.json ? JSON.stringify(report) : renderMarkdown(report));
  return report.state === "FINISHED" && report.jobs.failed === 0 ? EXPERIMENT_EXIT.ok : EXPERIMENT_EXIT.failures;
}

/** Runs `fn` with the experiment id parsed and found; a bad or unknown id is reported (exit 2 / 1). */
async function withExperiment(db: Db, raw: string, io: ExperimentIo, fn: (id: number) => Promise<number>): Promise<number> {
  const id = parseExperimentArg(raw);
  if (id === null) {
    line(io.stderr, `error: ${JSON.stringify(raw.length > 80 ? `${raw.slice(0, 80)}…` : raw)} is not an experiment id (a number or an Experiment global id)`);
    return EXPERIMENT_EXIT.usage;
  }
  try {
    return await fn(id);
  } catch (err) {
    if (!(err instanceof ExperimentNotFoundError)) throw err;
    line(io.stderr, `error: ${err.message}`);
    return EXPERIMENT_EXIT.failures;
  }
}

export function experimentWaitCommand(db: Db, config: Config, raw: string, o: WaitOptions, io: ExperimentIo, deps: WaitDeps): Promise<number> {
  return withExperiment(db, raw, io, (id) => waitForExperiment(db, config, id, o, io, deps));
}

/** The report as it stands (partial while the experiment runs). Exit 0 once finished without failures, else 1. */
export function experimentReportCommand(db: Db, raw: string, o: { json?: boolean | undefined }, io: ExperimentIo): Promise<number> {
  return withExperiment(db, raw, io, (id) => printReport(db, id, o, io));
}

export function experimentCancelCommand(db: Db, raw: string, io: ExperimentIo): Promise<number> {
  return withExperiment(db, raw, io, async (id) => {
    const n = await cancelExperiment(db, id);
    if (n === 0) {
      const { cancelledAt } = await findExperiment(db, id);
      line(io.stdout, `experiment ${id} ${cancelledAt ? "was already cancelled" : "has finished"}: no job left to cancel`);
      return EXPERIMENT_EXIT.ok;
    }
    line(io.stdout, `experiment ${id} cancelled: ${n} job${n === 1 ? "" : "s"} cancelled; texts already written stay in its report`);
    return EXPERIMENT_EXIT.ok;
  });
}

export async function experimentListCommand(db: Db, o: { limit: number }, io: ExperimentIo): Promise<number> {
  const rows = await db.experiment.findMany({ orderBy: { id: "desc" }, take: o.limit });
  if (rows.length === 0) {
    line(io.stdout, "No experiments yet: artdesc experiment --sample 50 --a numBeams=1 --b numBeams=4");
    return EXPERIMENT_EXIT.ok;
  }
  for (const e of rows) {
    const counts = Object.values(await experimentJobCounts(db, e.id)).reduce(addCounts, NO_JOBS);
    const arms = decodeArms(e.arms).map((a) => `${a.name}: ${formatArm(a.params)}`).join("; ");
    line(
      io.stdout,
      `${e.id}  ${experimentState(counts, e.cancelledAt).toLowerCase().padEnd(9)} ${counts.succeeded}/${jobTotal(counts)} jobs  ` +
        `${e.createdAt.toISOString().slice(0, 16).replace("T", " ")}  ${e.name ? `${JSON.stringify(e.name)}  ` : ""}${arms}`,
    );
  }
  return EXPERIMENT_EXIT.ok;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
