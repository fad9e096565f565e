import type { Config } from "../config.js";
import { type Db, writeTransaction } from "../db.js";
import type { Job } from "../generated/prisma/client.js";
import type { Logger } from "../log.js";
import { LostClaimError } from "../jobs/descriptions.js";
import { acquireLease, holderId, releaseLease } from "../jobs/lease.js";
import { beatClaims, EMBED, failJob, leaseName, PRIORITY, requeueJob } from "../jobs/queue.js";
import type { Component } from "../runtime.js";
import { type Embedder, EmbedderStoppedError, EmbedModelMissingError, openEmbedder } from "./embedder.js";
import { dbTime } from "../store/db-clock.js";
import { type EmbedConfig, embedderKey, installedVectorModel, loadedVectorModel, type VectorModel } from "./model-files.js";
import { countStale, embedStale, type EmbedRunSummary, rivalEmbedder } from "./store.js";
import { rateLimited } from "../ops/rate-limited-log.js";

/**
 * The embed job kind: one queued job at a time ("embed:stale"), at the lowest priority, refreshes
 * up to EMBED_BATCH missing or stale vectors per run and queues the next while any are left. A new
 * current description (from the worker, a person, a review) makes its work's vector stale; the
 * embed worker notices within EMBED_POLL_S and queues the job, as it does for a renamed work.
 * Several worker processes may run: the job's lease lets one of them run it.
 */

const DEDUPE_KEY = "embed:stale";
/** Finished embed jobs are kept this long (for the jobs list), then removed. */
const KEEP_FINISHED_MS = 86_400_000;
/** Failed ones longer, so that their errors can be read; a model that keeps failing fails a job every few minutes at most. */
const KEEP_FAILED_MS = 7 * 86_400_000;

/**
 * Queues the embed job when vectors of `model` (default: the configured model as installed) are
 * missing or stale and none is queued or running. Returns it when created.
 */
export async function queueEmbedJob(
  db: Db,
  config: EmbedConfig & Pick<Config, "JOB_MAX_ATTEMPTS">,
  model: VectorModel = installedVectorModel(config),
  reason = "stale embeddings",
): Promise<Job | null> {
  if ((await countStale(db, model)) === 0) return null;
  const now = await dbTime(db);
  // Find, then queue, in one write transaction: two processes at once take turns (enqueueDescribe).
  return writeTransaction(db, async (tx) => {
    if (await tx.job.findFirst({ where: { dedupeKey: DEDUPE_KEY, status: { in: ["QUEUED", "RUNNING"] } }, select: { id: true } })) return null;
    await tx.job.deleteMany({
      where: {
        kind: EMBED,
        OR: [
          { status: { in: ["SUCCEEDED", "CANCELLED"] }, finishedAt: { lt: new Date(now.getTime() - KEEP_FINISHED_MS) } },
          { status: "FAILED", finishedAt: { lt: new Date(now.getTime() - KEEP_FAILED_MS) } },
        ],
      },
    });
    return tx.job.create({
      data: { kind: EMBED, dedupeKey: DEDUPE_KEY, priority: PRIORITY.embed, reason, maxAttempts: config.JOB_MAX_ATTEMPTS, runAfter: now },
    });
  });
}

/** Claims the ready embed job (lease, then QUEUED -> RUNNING), or null. */
export async function claimEmbedJob(db: Db, holder: string, ttlMs: number, at?: Date): Promise<Job | null> {
  const now = at ?? (await dbTime(db));
  const job = await db.job.findFirst({ where: { kind: EMBED, status: "QUEUED", runAfter: { lte: now } }, orderBy: [{ priority: "desc" }, { id: "asc" }] });
  if (!job || !(await acquireLease(db, leaseName(job.id), holder, ttlMs, now))) return null;
  const moved = await db.job.updateMany({
    where: { id: job.id, status: "QUEUED" },
    data: { status: "RUNNING", holder, attempts: { increment: 1 }, startedAt: now, heartbeatAt: now, progress: 0, error: null },
  });
  if (moved.count !== 1) {
    await releaseLease(db, leaseName(job.id), holder);
    return null;
  }
  return db.job.findUniqueOrThrow({ where: { id: job.id } });
}

/**
 * Runs a claimed embed job: one batch, then SUCCEEDED (progress = vectors made) and the next job if
 * more are stale. While the batch runs the job beats and its lease is renewed every
 * HEARTBEAT_INTERVAL_S, as a describe job's do: the describe workers give back any RUNNING job whose
 * heartbeat is older than HEARTBEAT_STALE_S, and a long batch (a large EMBED_BATCH, a CPU the
 * describe model keeps busy) would otherwise be handed to a second embedder halfway. A job lost all
 * the same (cancelled, or taken over after a stall) ends in LostClaimError, its vectors kept.
 */
export async function runEmbedJob(
  db: Db,
  config: EmbedConfig & Pick<Config, "EMBED_BATCH" | "JOB_MAX_ATTEMPTS" | "HEARTBEAT_INTERVAL_S" | "HEARTBEAT_STALE_S">,
  embedder: Embedder,
  job: Job,
  holder: string,
  log?: Logger,
): Promise<EmbedRunSummary> {
  const lease = leaseName(job.id);
  let beating: Promise<unknown> = Promise.resolve();
  const beat = setInterval(() => {
    beating = beatClaims(db, [job.id], holder, config.HEARTBEAT_STALE_S * 1000).catch((err: unknown) => log?.warn({ err, job: job.id }, "could not renew the embed job's heartbeat; it is given back if this goes on"));
  }, config.HEARTBEAT_INTERVAL_S * 1000);
  beat.unref();
  try {
    const summary = await embedStale(db, embedder, config.EMBED_BATCH);
    clearInterval(beat);
    await beating;
    const done = await db.job.updateMany({
      where: { id: job.id, holder, status: "RUNNING" },
      data: { status: "SUCCEEDED", holder: null, finishedAt: await dbTime(db), progress: summary.embedded, progressTotal: summary.embedded + summary.unchanged },
    });
    await releaseLease(db, lease, holder);
    if (done.count !== 1) throw new LostClaimError(job.id);
    await queueEmbedJob(db, config, loadedVectorModel(embedder.info));
    return summary;
  } catch (err) {
    clearInterval(beat);
    if (!(err instanceof LostClaimError)) await failJob(db, job, holder, err instanceof Error ? `${err.name}: ${err.message}` : String(err));
    throw err;
  }
}

/**
 * `artdesc embed --missing`: embeds every missing or stale vector now, in this process, batch by
 * batch (no job needed: the command is the run). Each batch takes its works out of the candidates
 * (embedStale), so it ends when a batch finds none. Returns the totals.
 */
export async function embedMissing(db: Db, embedder: Embedder, batch: number, onBatch?: (s: EmbedRunSummary) => void): Promise<EmbedRunSummary> {
  const total: EmbedRunSummary = { embedded: 0, unchanged: 0 };
  for (;;) {
    const s = await embedStale(db, embedder, batch);
    if (s.embedded + s.unchanged + (s.refused?.length ?? 0) === 0) return total;
    total.embedded += s.embedded;
    total.unchanged += s.unchanged;
    if (s.refused) (total.refused ??= []).push(...s.refused);
    onBatch?.(s);
  }
}

/** The longest wait before loading the embedding model again after its thread stopped or a load failed. */
const RELOAD_MAX_MS = 600_000;

/**
 * The background embedder's model: loaded when first needed, closed and dropped when its thread
 * stops (every later request would fail), and loaded again on a later job after a backoff that
 * doubles with each stop or failed load in a row (from `baseMs`, at most RELOAD_MAX_MS), so a model
 * that keeps failing is not reloaded in a loop. A job that ran starts the backoff over.
 */
class EmbedModelHolder {
  private embedder: Embedder | null = null;
  private failures = 0;
  /** performance.now() before which no load is tried (a clock step cannot move it). */
  private retryAt = 0;
  private saidMissing = false;

  constructor(
    private readonly open: () => Promise<Embedder>,
    private readonly log: Logger,
    private readonly baseMs: number,
  ) {}

  /** The loaded model, or null: none installed, or waiting to load it again. */
  async get(): Promise<Embedder | null> {
    if (this.embedder) return this.embedder;
    if (performance.now() < this.retryAt) return null;
    try {
      this.embedder = await this.open();
    } catch (err) {
      if (err instanceof EmbedModelMissingError) {
        if (!this.saidMissing) this.log.info({ command: err.command }, "no embedding model: semantic search is off until it is installed");
        this.saidMissing = true;
        return null;
      }
      this.log.error({ err, retryInS: this.backOff() / 1000 }, "the embedding model did not load");
      return null;
    }
    this.log.info({ model: this.embedder.info }, "embedding model loaded");
    return this.embedder;
  }

  /** `embedder`'s thread stopped: it is closed and dropped, and loaded again after the backoff. */
  async stopped(embedder: Embedder, err: unknown): Promise<void> {
    if (this.embedder !== embedder) return;
    this.embedder = null;
    await embedder.close().catch(() => undefined);
    this.log.error({ err, retryInS: this.backOff() / 1000 }, "the embedding thread stopped: the model is loaded again on a later job");
  }

  /** A job ran on the model: the next stop waits `baseMs` again. */
  worked(): void {
    this.failures = 0;
  }

  async close(): Promise<void> {
    const e = this.embedder;
    this.embedder = null;
    await e?.close();
  }

  private backOff(): number {
    this.failures++;
    const ms = Math.min(RELOAD_MAX_MS, this.baseMs * 2 ** (this.failures - 1));
    this.retryAt = performance.now() + ms;
    return ms;
  }
}

export interface EmbedWorkerOptions {
  db: Db;
  config: Config;
  log: Logger;
  role?: string;
  open?: typeof openEmbedder;
  pollMs?: number;
  /** The first wait before loading the model again after its thread stopped (doubles each time); default the poll interval. */
  reloadMs?: number;
  /** The heartbeat row of this process's describe worker: it records which vectors this embedder makes. */
  heartbeatId?: string;
}

/**
 * The background embedder of `artdesc worker`, `start` and `daemon`: loads the embedding model in
 * its own thread (when installed; it looks again every poll otherwise; after its thread stopped,
 * after EmbedModelHolder's backoff), queues the embed job when vectors are stale, and runs it. It
 * never blocks the describe worker: they share only the database.
 */
export async function startEmbedWorker(o: EmbedWorkerOptions): Promise<Component> {
  const { db, config } = o;
  const holder = holderId(`${o.role ?? "worker"}-embed`);
  const log = o.log.child({ component: "embed", holder });
  const pollMs = o.pollMs ?? config.EMBED_POLL_S * 1000;
  const ttlMs = config.HEARTBEAT_STALE_S * 1000;
  const model = new EmbedModelHolder(() => (o.open ?? openEmbedder)(config), log, o.reloadMs ?? pollMs);
  let stopping = false;
  /** The embed job this worker runs now, for a hurried stop to hand back. */
  let running: Job | null = null;
  let wake: (() => void) | null = null;
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(() => ((wake = null), resolve()), ms);
      wake = () => (clearTimeout(t), (wake = null), resolve());
    });

  // What the describe worker's heartbeat row says this process embeds (embedderKey): written when it changes,
  // not every poll (the row lives as long as the process; its own beats leave this column alone).
  let recorded: string | null = null;
  async function recordEmbedModel(model: string | null): Promise<void> {
    if (!o.heartbeatId || model === recorded) return;
    await db.heartbeat.updateMany({ where: { id: o.heartbeatId }, data: { embedModelId: model } });
    recorded = model;
  }

  async function tick(): Promise<boolean> {
    const embedder = await model.get();
    if (!embedder) {
      // Not embedding: no other embedder need hold off for this one.
      await recordEmbedModel(null);
      return false;
    }
    // Two live embedders of other models would re-embed each other's works for ever: both hold
    // off, and say why, until the settings agree (one is restarted with the other's, or stops).
    // Vectors a previous setting left (a changed EMBED_MODEL_DTYPE, weights pulled again) are made
    // again at once.
    const ours = embedderKey(embedder.info);
    await recordEmbedModel(ours);
    const rival = await rivalEmbedder(db, ours, o.heartbeatId ?? null, config.HEARTBEAT_STALE_S * 1000);
    if (rival) {
      rateLimited(log).warn(
        "rival-embed-model",
        { ours, theirs: rival.embedModelId, process: rival.id },
        "another process embeds with another model (EMBED_MODEL_ID or EMBED_MODEL_DTYPE differ, or its model files were pulled at another revision): not embedding, so that neither re-embeds the other's works; give every worker the same settings and files, and restart the one with the old files",
      );
      return false;
    }
    await queueEmbedJob(db, config, loadedVectorModel(embedder.info));
    const job = await claimEmbedJob(db, holder, ttlMs);
    if (!job) return false;
    running = job;
    try {
      const s = await runEmbedJob(db, config, embedder, job, holder, log);
      model.worked();
      const { refused, ...counts } = s;
      log.info({ job: job.id, ...counts, refused: refused?.length ?? 0 }, "embeddings refreshed");
      if (refused) log.warn({ job: job.id, refused }, "the embedding model refused these works' texts: they are left out of meaning search until their text changes");
      return s.embedded + s.unchanged + (refused?.length ?? 0) > 0;
    } catch (err) {
      // The job failed (runEmbedJob recorded it); the model is loaded again for a later one.
      if (err instanceof EmbedderStoppedError) {
        await model.stopped(embedder, err);
        return false;
      }
      if (!(err instanceof LostClaimError)) throw err;
      log.warn({ job: job.id }, "the embed job was cancelled or given to another worker while it ran; its vectors are kept");
      return true;
    } finally {
      running = null;
    }
  }

  const loop = (async () => {
    while (!stopping) {
      let busy = false;
      try {
        busy = await tick();
      } catch (err) {
        log.error({ err }, "embedding run failed");
      }
      if (!busy && !stopping) await sleep(pollMs);
    }
  })();

  // hurry(): the process ends soon (an uncaught error). The batch in progress is not waited for
  // (its vectors are made again), so that the describe worker, stopped after this, still hands its
  // job back within the deadline; its job is handed back at once, as the describe worker's are, not
  // after HEARTBEAT_STALE_S. Should the batch still finish, its vectors are kept and the job,
  // no longer this worker's, is left alone (LostClaimError).
  let hurried = () => {};
  const hurry = new Promise<void>((resolve) => (hurried = resolve));
  return {
    name: "embed",
    hurry: () => hurried(),
    async stop() {
      stopping = true;
      wake?.();
      if ((await Promise.race([loop.then(() => "done" as const), hurry.then(() => "hurried" as const)])) === "hurried") {
        const job = running;
        if (job) await requeueJob(db, job.id, holder, "interrupted: the process stopped after an error").catch((err: unknown) => log.warn({ err, job: job.id }, "could not hand the embed job back; it is given back once its heartbeat is stale"));
        return;
      }
      await Promise.race([model.close(), hurry]);
    },
  };
}
