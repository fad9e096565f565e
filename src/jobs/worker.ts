import { hostname } from "node:os";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, relative } from "node:path";
import type { Config } from "../config.js";
import type { Db } from "../db.js";
import {
  type DescribeInput,
  type Describer,
  EngineOutOfMemoryError,
  EngineStoppedError,
  ImageInputError,
  type ModelInfo,
  ModelMissingError,
} from "../describe/types.js";
import type { Job } from "../generated/prisma/client.js";
import type { Logger } from "../log.js";
import { openDescriber } from "../describe/describer.js";
import { DeviceUnavailableError } from "../describe/device.js";
import { ModelContractError } from "../describe/models/contract.js";
import { type ImageSource, ImageSourceError, imageSourceFor } from "../images/source.js";
import type { Component, Runtime } from "../runtime.js";
import { LostClaimError, recordModelDescription, wordlessOutput } from "./descriptions.js";
import { qualitySettings } from "../quality/store.js";
import { holderId, releaseLease } from "./lease.js";
import { dbTime } from "../store/db-clock.js";
import {
  beatClaims,
  claimJobs,
  describableImage,
  failJob,
  heldJobs,
  leaseName,
  parseJobParams,
  reportProgress,
  requeueJob,
  requeueStale,
  resolveParams,
} from "./queue.js";
import { logDescription } from "../ops/log-events.js";
import { rateLimited } from "../ops/rate-limited-log.js";
import { errorKind } from "../error-chain.js";
import { failureReason } from "../sync/sync.js";
import { attributionWords, formatInception } from "../text/facts.js";
import { checkParams, type GenerationParams, ParamOutOfRangeError, promptProblem, withoutTemplateTokens } from "../generation/params.js";

/** The longest a worker slot waits after errors in a row before it claims again. */
export const SLOT_ERROR_WAIT_MAX_MS = 30_000;

/** Loads the model once; the real one is the engine's `openDescriber(config)`. */
export type DescriberFactory = () => Promise<Describer>;

/** How long the heartbeat row of a process that died stays visible (generationDefaults.workers). */
export const HEARTBEAT_KEEP_MS = 7 * 86_400_000;

/** Jobs whose engine stops a worker remembers (see engineStops in startWorker). */
const MAX_ENGINE_STOP_JOBS = 1_000;

export type ModelStatus = "loading" | "loaded" | "missing" | "error";

export interface WorkerOptions {
  db: Db;
  config: Config;
  log: Logger;
  openDescriber: DescriberFactory;
  /** Heartbeat role: "worker", "start" or "daemon". */
  role?: string;
  /** How often an idle slot looks for work. */
  pollMs?: number;
  /** How long to wait before trying to load a missing or broken model again. */
  modelRetryMs?: number;
  /** How often a running job's progress is written (it is also its liveness signal). */
  progressEveryMs?: number;
  /** Claim only this experiment's jobs (`artdesc experiment --run`). */
  experimentId?: number;
  /** Where images are read (default: IMAGE_SOURCE_URL over HTTP when set, else IMAGE_DIR). */
  images?: ImageSource;
}

export interface DescribeWorker extends Component {
  readonly holder: string;
  modelStatus(): ModelStatus;
}

interface InFlight {
  jobs: Job[];
  abort: AbortController;
  /** The slot's holder the jobs were claimed as. */
  holder: string;
  /** Another batch was on the engine at some point while this one was: an engine stop then names no culprit. */
  shared?: boolean;
}

/** A claimed job with what its description needs. */
interface Ready {
  job: Job;
  imageId: number;
  /** The stored copy as its row describes it (forgetDamagedCopy compares the file with it). */
  stored: { localPath: string; localBytes: number | null; localHash: string | null };
  /** The image's file, for the text to name should the sync remove its row while the job runs. */
  fileTitle: string;
  qid: string;
  input: DescribeInput;
}

/**
 * The describe worker: loads the model once, then WORKER_CONCURRENCY slots each claim up to
 * WORKER_BATCH jobs with the same parameters and describe their images together. Its heartbeat
 * row tells the API (in any process) that it is alive and which model it has.
 */
export async function startWorker(o: WorkerOptions): Promise<DescribeWorker> {
  const { db, config, log } = o;
  const role = o.role ?? "worker";
  const holder = holderId(role);
  const pollMs = o.pollMs ?? 1_000;
  const modelRetryMs = o.modelRetryMs ?? 30_000;
  const progressEveryMs = o.progressEveryMs ?? 500;
  const staleMs = config.HEARTBEAT_STALE_S * 1000;
  const wlog = log.child({ component: "worker", holder });
  const quality = { settings: qualitySettings(config), log: wlog };
  const images = o.images ?? imageSourceFor(config, wlog);

  let stopping = false;
  let describer: Describer | null = null;
  let model: { status: ModelStatus; error: string | null; info: ModelInfo | null } = { status: "loading", error: null, info: null };
  const inFlight = new Set<InFlight>();
  const sleepers = new Set<() => void>();
  let retryTimer: NodeJS.Timeout | null = null;
  // hurry(): the process ends soon (an uncaught error): no grace period for the jobs in progress.
  let hurried = () => {};
  const hurry = new Promise<"hurry">((resolve) => (hurried = () => resolve("hurry")));
  let lastLoadError: string | null = null;
  /**
   * An image that ends the engine's thread every time must end FAILED, not be retried (with a model
   * reload) forever, and the jobs that shared the engine with it must not pay for it. A stop names
   * its job only when that job was alone on the engine (a batch of one, no other slot's batch
   * beside it). `engineStops` counts such stops per job: the first is free (a thread can die for
   * reasons of its own), each later one counts an attempt. `suspects` are the jobs that were on the
   * engine when it stopped: each runs alone from then on (its batch mates go back, and no other
   * batch starts beside it), so that its next stop names it. Both are this process's memory, bounded.
   */
  const engineStops = new Map<number, number>();
  const suspects = new Set<number>();
  /** Batches inside describe() now. */
  const describing = new Set<InFlight>();
  /** A suspect's turn on the engine: no other batch starts until it ends. */
  let exclusive: { entry: InFlight; done: Promise<void>; release: () => void } | null = null;

  /** Adds a job to a bounded memory, as its newest entry: the oldest is forgotten (its next stop is free again). */
  function remember(memory: Set<number> | Map<number, number>, jobId: number, stops = 0): void {
    memory.delete(jobId);
    if (memory instanceof Map) memory.set(jobId, stops);
    else memory.add(jobId);
    if (memory.size > MAX_ENGINE_STOP_JOBS) memory.delete(memory.keys().next().value!);
  }

  /**
   * Waits for this batch's turn on the engine: after a suspect's turn; with `alone`, until no other
   * batch is on it, and then none starts beside it. Marks batches that share the engine.
   */
  async function enterEngine(entry: InFlight, alone: boolean): Promise<void> {
    for (;;) {
      entry.abort.signal.throwIfAborted();
      if (exclusive) await exclusive.done;
      else if (alone && describing.size > 0) await sleep(Math.min(pollMs, 50));
      else break;
    }
    if (alone) {
      let release = () => {};
      const done = new Promise<void>((resolve) => (release = resolve));
      exclusive = { entry, done, release };
    }
    for (const other of describing) other.shared = entry.shared = true;
    describing.add(entry);
  }

  function leaveEngine(entry: InFlight): void {
    describing.delete(entry);
    if (exclusive?.entry === entry) {
      exclusive.release();
      exclusive = null;
    }
  }

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      sleepers.add(done);
    });
  const wakeAll = () => [...sleepers].forEach((wake) => wake());

  async function writeHeartbeat(): Promise<void> {
    const data = {
      role,
      pid: process.pid,
      hostname: hostname(),
      beatAt: await dbTime(db),
      modelStatus: model.status,
      modelError: model.error,
      modelId: model.info?.modelId ?? null,
      modelRevision: model.info?.revision ?? null,
      dtypes: model.info ? JSON.stringify(model.info.dtypes) : null,
      device: model.info?.device ?? null,
    };
    await db.heartbeat.upsert({ where: { id: holder }, create: { id: holder, ...data }, update: data });
  }

  /** One beat: our row, our jobs' liveness and leases, and the queue's dead claims. */
  let beating: Promise<void> = Promise.resolve();
  const beat = () => {
    beating = beating.then(async () => {
      try {
        await writeHeartbeat();
        for (const f of inFlight) await beatClaims(db, f.jobs.map((j) => j.id), f.holder, staleMs);
        // Rows of processes that were killed and never came back (a clean stop deletes its own).
        await db.heartbeat.deleteMany({ where: { beatAt: { lt: new Date((await dbTime(db)).getTime() - HEARTBEAT_KEEP_MS) } } });
        const requeued = await requeueStale(db, staleMs);
        if (requeued) wlog.warn({ requeued }, "requeued jobs of a worker that stopped beating");
      } catch (err) {
        wlog.error({ err }, "heartbeat failed");
      }
    });
    return beating;
  };

  async function loadModel(): Promise<void> {
    if (stopping) return;
    model = { status: "loading", error: null, info: null };
    await beat();
    try {
      const d = await o.openDescriber();
      if (stopping) {
        await d.close();
        return;
      }
      describer = d;
      lastLoadError = null;
      model = { status: "loaded", error: null, info: d.model };
      wlog.info({ model: d.model }, "model loaded");
    } catch (err) {
      const missing = err instanceof ModelMissingError;
      const error = err instanceof Error ? err.message : String(err);
      // Said once; the retries every modelRetryMs stay quiet while nothing changes.
      const level = lastLoadError === error ? "debug" : missing ? "warn" : "error";
      lastLoadError = error;
      // The log has the whole message; the heartbeat, which anonymous readers see, names no local path.
      model = { status: missing ? "missing" : "error", error: modelErrorForReaders(err), info: null };
      const detail = err instanceof DeviceUnavailableError ? { detail: err.detail } : {};
      wlog[level]({ err: error, ...detail }, missing ? "model missing: jobs wait until it is fetched" : "model failed to load");
      retryTimer = setTimeout(() => void loadModel(), modelRetryMs);
      retryTimer.unref();
    }
    wakeAll();
    await beat();
  }

  /** failJob, never throwing: a job that cannot be given back or failed now is left to requeueStale. */
  const settle = (job: Job, h: string, reason: string, o: { permanent?: boolean } = {}) =>
    failJob(db, job, h, reason, o).catch((e: unknown) => (wlog.error({ err: e, job: job.id }, "could not give a job back; requeueStale will"), "lost" as const));
  /** settle for an unexpected error: the attempt counts. */
  const giveBack = (job: Job, h: string, err: unknown) => settle(job, h, failureReason(err));

  /** `claimMs`: how long the claim took (logged: the queue's contention shows there first). */
  async function runBatch(claimed: Job[], claimMs: number, h: string): Promise<void> {
    const d = describer;
    if (!d) {
      // The engine stopped while these were being claimed: back to the queue until it is loaded again.
      for (const job of claimed) await requeueJob(db, job.id, h, "the description engine stopped; retried after reloading the model");
      return;
    }
    const abort = new AbortController();
    // A suspect of an engine stop runs alone: its batch mates go back to the queue untouched.
    const suspect = claimed.length > 1 ? claimed.find((j) => suspects.has(j.id)) : undefined;
    const jobs = suspect ? [suspect] : claimed;
    // In flight from the claim on: the heartbeat keeps the claims alive while images are fetched,
    // and a shutdown aborts a fetch as it aborts a description.
    const entry: InFlight = { jobs, abort, holder: h };
    inFlight.add(entry);
    try {
      if (suspect) for (const mate of claimed) if (mate !== suspect) await requeueJob(db, mate.id, h, "given back: a batch mate is described alone after the engine stopped");
      const ready = await prepareAll(jobs, abort.signal, h);
      entry.jobs = ready.map((r) => r.job);
      if (ready.length) await describeBatch(d, ready, entry, claimMs);
    } catch (err) {
      // Unexpected (a failure while giving jobs back, say): the jobs still ours go back now, the
      // attempt counted, rather than staying RUNNING until HEARTBEAT_STALE_S (failJob is conditional:
      // a job already finished, failed or handed back is left as it is).
      for (const job of entry.jobs) await giveBack(job, h, err);
      throw err;
    } finally {
      inFlight.delete(entry);
    }
  }

  /** Each job's image and prompt; a job whose image cannot be had fails (or goes back, on shutdown) here. */
  async function prepareAll(jobs: Job[], signal: AbortSignal, h: string): Promise<Ready[]> {
    const ready: Ready[] = [];
    for (const job of jobs) {
      try {
        signal.throwIfAborted();
        const prepared = await prepare(job, signal);
        if (!("cannot" in prepared)) {
          ready.push({ job, ...prepared });
          continue;
        }
        const outcome = await failJob(db, job, h, prepared.cannot, { permanent: prepared.permanent });
        wlog.warn({ job: job.id, error: prepared.cannot, outcome }, "job cannot run");
      } catch (err) {
        if (signal.aborted) {
          await requeueJob(db, job.id, h);
        } else if (err instanceof ImageSourceError) {
          // The reason names the image, never a local path or the source's address (the log has them).
          const outcome = await failJob(db, job, h, err.message, { permanent: err.permanent });
          wlog.warn({ job: job.id, err, outcome }, "image unavailable");
        } else {
          // Unexpected (a database or file system fault): this job's attempt fails; the next ones are tried.
          const outcome = await failJob(db, job, h, failureReason(err));
          wlog.error({ job: job.id, err, outcome }, "could not prepare the job");
        }
      }
    }
    return ready;
  }

  async function describeBatch(d: Describer, ready: Ready[], entry: InFlight, claimMs: number): Promise<void> {
    const { abort, holder: h } = entry;
    const params = resolveParams(parseJobParams(ready[0]!.job.params), config);
    // Asked for under the API's defaults, the job runs under this worker's: a minNewTokens the
    // API's maxNewTokens allowed may pass this worker's. Another attempt would fail the same way.
    const unfit = unfitParams(params);
    if (unfit) {
      for (const { job } of ready) {
        const outcome = await settle(job, h, unfit, { permanent: true });
        wlog.warn({ job: job.id, error: unfit, outcome }, "job cannot run");
      }
      return;
    }
    // The defaults that apply are this worker's: progress is counted against its max_new_tokens.
    await db.job.updateMany({ where: { id: { in: ready.map((r) => r.job.id) }, holder: h }, data: { progressTotal: params.maxNewTokens } });
    // One per job: a job cancelled (or taken over) while the batch runs leaves the batch alone.
    const dropJob = ready.map(() => new AbortController());
    const progress = new Map<number, number>();
    const written = new Map<number, number>();
    const lost = new Set<number>();
    const flush = async () => {
      const quiet: number[] = [];
      for (const [index, { job }] of ready.entries()) {
        if (lost.has(job.id)) continue;
        const tokens = progress.get(index);
        if (tokens === undefined || written.get(index) === tokens) {
          quiet.push(job.id);
          continue;
        }
        written.set(index, tokens);
        if (!(await reportProgress(db, job.id, h, tokens))) lost.add(job.id);
      }
      // Jobs without new progress (still in the prefill, or finished): one query says whether they are still ours.
      if (quiet.length) {
        const held = await heldJobs(db, quiet, h);
        for (const id of quiet) if (!held.has(id)) lost.add(id);
      }
      ready.forEach(({ job }, i) => {
        if (lost.has(job.id) && !dropJob[i]!.signal.aborted) {
          dropJob[i]!.abort(new LostClaimError(job.id));
          wlog.info({ job: job.id }, "job cancelled or taken over: dropped from its batch");
        }
      });
      if (lost.size === ready.length) abort.abort(new LostClaimError(ready[0]!.job.id));
    };
    let flushing: Promise<void> = Promise.resolve();
    const flushTimer = setInterval(() => {
      flushing = flushing.then(flush).catch((err: unknown) => wlog.error({ err }, "progress write failed"));
    }, progressEveryMs);
    wlog.info({ jobs: entry.jobs.map((j) => j.id), params, claimMs: Math.round(claimMs * 10) / 10 }, "describing");
    try {
      await enterEngine(entry, ready.some((r) => suspects.has(r.job.id)));
      const outputs = await d.describe(
        ready.map((r) => r.input),
        params,
        { onProgress: (index, tokens) => progress.set(index, tokens), signal: abort.signal, itemSignals: dropJob.map((c) => c.signal) },
      );
      leaveEngine(entry);
      clearInterval(flushTimer);
      await flushing;
      for (const [i, out] of outputs.entries()) {
        const { job, imageId, fileTitle, qid } = ready[i]!;
        if (out === null) {
          // Dropped from the batch: the job is no longer ours (cancelled or taken over); only our lease is left.
          await releaseLease(db, leaseName(job.id), h);
          continue;
        }
        /** After the write (or a cancel): our lease on the job goes; one left behind expires by itself. */
        const release = (written: boolean) =>
          releaseLease(db, leaseName(job.id), h).catch((err: unknown) =>
            wlog.warn({ job: job.id, err, written }, `could not release the job's lease; it expires by itself after ${config.HEARTBEAT_STALE_S} s`),
          );
        const wordless = wordlessOutput(out);
        if (wordless) {
          // Beam search is deterministic: another attempt writes the same nothing. The job fails
          // for good (a fallback ladder's next step may run), and no empty text becomes current.
          const outcome = await settle(job, h, wordless, { permanent: true });
          wlog.warn({ job: job.id, artworkQid: qid, finishReason: out.finishReason, generatedTokens: out.generatedTokens, outcome }, "the model wrote no words: nothing stored");
          continue;
        }
        try {
          const { description, becameCurrent, outdatedFile } = await recordModelDescription(db, job, h, { id: imageId, fileTitle }, out, await dbTime(db), quality);
          await release(true);
          suspects.delete(job.id);
          engineStops.delete(job.id);
          logDescription(wlog, {
            artworkQid: qid,
            descriptionId: description.id,
            jobId: job.id,
            durationMs: out.timings.totalMs,
            promptTokens: out.promptTokens,
            generatedTokens: out.generatedTokens,
            finishReason: out.finishReason,
            modelId: out.model.modelId,
            device: out.model.device,
          });
          if (outdatedFile) wlog.info({ job: job.id, description: description.id }, "kept as history: the image's file changed while it ran, and the current text describes the new one");
          else if (!becameCurrent && job.experimentId == null) wlog.info({ job: job.id, description: description.id }, "kept as history: the current text is a person's");
        } catch (err) {
          if (err instanceof LostClaimError) {
            wlog.warn({ job: job.id }, "job was cancelled or taken over: result dropped");
            await release(false);
          } else {
            // This job's write failed; its batch mates' finished texts are still written.
            const outcome = await giveBack(job, h, err);
            wlog.error({ job: job.id, err, outcome }, "could not write the description");
          }
        }
      }
    } catch (err) {
      const reason: unknown = abort.signal.aborted ? abort.signal.reason : err;
      // The first batch to see its engine stop takes it out of use at once, before any await: a batch
      // that calls it later (a suspect that waited for its turn) then fails without having run.
      const firstToSeeStop = reason instanceof EngineStoppedError && describer === d;
      if (firstToSeeStop) describer = null;
      leaveEngine(entry);
      clearInterval(flushTimer);
      await flushing;
      try {
        for (const { job, input, imageId, stored } of ready) {
          if (reason instanceof ShutdownAbort) {
            await requeueJob(db, job.id, h);
          } else if (reason instanceof ImageInputError) {
            // The image is unusable: that job fails for good; its batch mates go back untouched.
            if (reason.path === input.imagePath) {
              // The sync stored it decodable: a copy whose bytes are no longer the ones stored was
              // damaged since, and the next sync fetches it again.
              if (!config.IMAGE_SOURCE_URL) await forgetDamagedCopy(imageId, stored);
              await failJob(db, job, h, imageProblem(reason, config.IMAGE_DIR), { permanent: true });
            }
            else await requeueJob(db, job.id, h, "batch mate had an unusable image");
            wlog.warn({ job: job.id, err: reason }, "unusable image");
          } else if (reason instanceof EngineStoppedError) {
            // Its culprit only if it was alone on the engine, and the first to see it stop (a batch
            // that called a describer already closed by another's stop never ran).
            const alone = ready.length === 1 && !entry.shared && firstToSeeStop;
            remember(suspects, job.id);
            const stops = alone ? (engineStops.get(job.id) ?? 0) + 1 : (engineStops.get(job.id) ?? 0);
            if (alone) remember(engineStops, job.id, stops);
            if (stops < 2 || !alone) {
              // Perhaps not the job's fault: it goes back untouched while the model is loaded again.
              await requeueJob(db, job.id, h, "the description engine stopped; retried after reloading the model");
            } else {
              const error = `the description engine stopped while describing it ${stops} times; the model was loaded again each time`;
              const outcome = await failJob(db, job, h, error);
              wlog.error({ job: job.id, stops, outcome }, "the description engine stopped again on this job alone: the attempt counts");
            }
          } else if (reason instanceof LostClaimError) {
            await releaseLease(db, leaseName(job.id), h);
          } else {
            // Anyone can read a job's error: our engine's typed errors keep their message (it names
            // no path); anything else is named by its class; the log has it whole.
            const outcome = await failJob(db, job, h, reason instanceof EngineOutOfMemoryError ? reason.message : failureReason(reason));
            wlog.error({ job: job.id, err: reason, outcome }, "describe failed");
          }
        }
      } finally {
        // Even when giving a job back failed (a full disk, a locked database): a worker left without
        // an engine would otherwise wait for one forever.
        if (firstToSeeStop) {
          // Taken out of use above, so closed here even while stopping (stop() closes only the current one).
          if (!stopping) wlog.error({ err: reason }, "the description engine stopped: reloading the model");
          await d.close().catch(() => undefined);
          if (!stopping) void loadModel();
        }
      }
    }
  }

  /**
   * An image the engine could not use: when the stored copy's bytes are no longer those the sync
   * wrote (its size or sha256 differ from the row's), the copy was damaged since; its row stops
   * pointing at it, so the next sync downloads the file again and queues the work if it has no text
   * from that file. An image the engine refuses as it is, or a passing read error, changes nothing.
   */
  async function forgetDamagedCopy(imageId: number, stored: Ready["stored"]): Promise<void> {
    try {
      const bytes = await readFile(join(config.IMAGE_DIR, stored.localPath)).catch(() => null);
      if (!bytes) return;
      const same = (stored.localBytes == null || bytes.length === stored.localBytes) && (stored.localHash == null || createHash("sha256").update(bytes).digest("hex") === stored.localHash);
      if (same) return;
      const r = await db.image.updateMany({ where: { id: imageId, localPath: stored.localPath }, data: { localPath: null, localSourceSha1: null } });
      if (r.count) wlog.warn({ imageId }, "a stored image copy is damaged; the next sync downloads it again");
    } catch (err) {
      wlog.error({ err, imageId }, "could not check a stored image copy");
    }
  }

  /** The image and prompt facts of a job, or why it cannot run (and whether a later attempt could). */
  async function prepare(job: Job, signal: AbortSignal): Promise<Omit<Ready, "job"> | { cannot: string; permanent: boolean }> {
    if (job.artworkId == null) return { cannot: "the job names no artwork", permanent: true };
    const art = await db.artwork.findUnique({
      where: { id: job.artworkId },
      select: {
        qid: true,
        title: true,
        inception: true,
        inceptionPrecision: true,
        images: { where: describableImage, take: 1, select: { id: true, fileTitle: true, localPath: true, localHash: true, localBytes: true } },
        creators: { orderBy: { position: "asc" }, take: 1, select: { attribution: true, creator: { select: { label: true } } } },
        links: { where: { property: "P186" }, orderBy: { position: "asc" }, select: { item: { select: { label: true } } } },
      },
    });
    if (!art) return { cannot: "the artwork no longer exists", permanent: true };
    const image = art.images[0];
    if (!image?.localPath) {
      // A sync writes a new main image's row before it downloads the file (after its batch of
      // works): until then the job is tried again later, not failed for good.
      const pending = await db.image.count({ where: { artworkId: job.artworkId, isMain: true, missing: false, localPath: null } });
      return pending
        ? { cannot: `artwork ${art.qid}'s main image is not downloaded yet`, permanent: false }
        : { cannot: `artwork ${art.qid} has no downloaded main image`, permanent: true };
    }
    // Throws ImageSourceError when the image cannot be had (missing, or a failed fetch).
    // A missing copy is the sync's to find (it stats every stored copy) and fetch again.
    const imagePath = await images.localFile({ localPath: image.localPath, localHash: image.localHash, localBytes: image.localBytes }, signal);
    const medium = art.links.map((l) => l.item.label).filter(Boolean).join(", ");
    // The facts go into the prompt only when DESCRIBE_PROMPT_CONTEXT asks for them.
    // As Wikidata says them: "18th century", not 1800; "workshop of Francisco Goya", not Goya.
    const credit = art.creators[0];
    // Wikidata's words go into the prompt: none may be read as the chat template's ("<image>" in a title).
    const fact = (text: string | null | undefined) => (text ? withoutTemplateTokens(text) || undefined : undefined);
    const context = config.DESCRIBE_PROMPT_CONTEXT
      ? {
          title: fact(art.title),
          date: fact(formatInception(art.inception, art.inceptionPrecision)),
          creator: fact(credit?.creator.label ? (credit.attribution === "CREATOR" ? credit.creator.label : `${attributionWords(credit.attribution)} ${credit.creator.label}`) : null),
          medium: fact(medium),
        }
      : undefined;
    return {
      imageId: image.id,
      stored: { localPath: image.localPath, localBytes: image.localBytes, localHash: image.localHash },
      fileTitle: image.fileTitle,
      qid: art.qid,
      input: { imagePath, context },
    };
  }

  /**
   * One slot: claims a batch, describes it, claims the next. With several slots each claims as its
   * own holder (the process's, numbered): a job given back after a stall (heartbeat writes blocked
   * past HEARTBEAT_STALE_S) and claimed again by another slot of this process is then no longer the
   * first slot's, whose conditional writes fail and drop it, instead of both decoding it.
   */
  async function slot(index: number): Promise<void> {
    const h = config.WORKER_CONCURRENCY > 1 ? `${holder}/${index + 1}` : holder;
    // Errors in a row (a full disk, a lost database): each waits twice as long as the last, up to
    // SLOT_ERROR_WAIT_MAX_MS, and the log says so once a minute per kind, not on every turn.
    let errorsInARow = 0;
    while (!stopping) {
      if (!describer) {
        await sleep(pollMs);
        continue;
      }
      try {
        const claimStarted = performance.now();
        const jobs = await claimJobs(db, h, { limit: config.WORKER_BATCH, ttlMs: staleMs, experimentId: o.experimentId, log: wlog });
        errorsInARow = 0;
        if (jobs.length === 0) {
          await sleep(pollMs);
          continue;
        }
        await runBatch(jobs, performance.now() - claimStarted, h);
      } catch (err) {
        const waitMs = Math.min(pollMs * 2 ** errorsInARow, SLOT_ERROR_WAIT_MAX_MS);
        errorsInARow++;
        rateLimited(wlog).error(`worker slot error: ${errorKind(err)}`, { err, slot: index + 1, errorsInARow, retryInMs: waitMs }, "worker slot error");
        await sleep(waitMs);
      }
    }
  }

  await images.ready();
  await writeHeartbeat();
  const beatTimer = setInterval(() => void beat(), config.HEARTBEAT_INTERVAL_S * 1000);
  beatTimer.unref();
  await requeueStale(db, staleMs);
  const loading = loadModel();
  const slots = Array.from({ length: config.WORKER_CONCURRENCY }, (_, i) => slot(i));
  wlog.info({ concurrency: config.WORKER_CONCURRENCY, batch: config.WORKER_BATCH }, "worker started");

  return {
    name: "worker",
    holder,
    modelStatus: () => model.status,
    hurry: () => hurried(),
    async stop() {
      stopping = true;
      if (retryTimer) clearTimeout(retryTimer);
      wakeAll();
      const idle = Promise.all(slots).then(() => "idle" as const);
      const graceMs = config.SHUTDOWN_GRACE_S * 1000;
      const first = await Promise.race([idle, delay(graceMs).then(() => "grace" as const), hurry]);
      if (first !== "idle") {
        if (first === "grace") wlog.warn({ graceS: config.SHUTDOWN_GRACE_S }, "grace period over: aborting the current description and requeueing it");
        else wlog.warn("stopping after an error: aborting the current description and requeueing it");
        for (const f of inFlight) f.abort.abort(new ShutdownAbort());
        // An engine that does not stop promptly: hand the jobs back ourselves; its late result
        // fails the conditional write and is dropped.
        if ((await Promise.race([idle, delay(5_000).then(() => "stuck" as const)])) === "stuck") {
          for (const f of inFlight) for (const j of f.jobs) await requeueJob(db, j.id, f.holder);
        }
      }
      clearInterval(beatTimer);
      await loading.catch(() => undefined);
      await beating;
      await db.heartbeat.deleteMany({ where: { id: holder } });
      if (describer) await describer.close();
      describer = null;
    },
  };
}

/** The worker with the real engine (in a worker thread), as `artdesc worker`, `start` and `daemon` run it. */
export function startDescribeWorker(rt: Runtime, role: "worker" | "start" | "daemon"): Promise<DescribeWorker> {
  return startWorker({ db: rt.db, config: rt.config, log: rt.log, role, openDescriber: () => openDescriber(rt.config) });
}

/** Why a job's parameters (asked for, over this worker's defaults) cannot run, or null. */
function unfitParams(params: GenerationParams): string | null {
  try {
    checkParams(params);
    // A job queued before prompts with template tokens were refused.
    const prompt = promptProblem(params.prompt);
    return prompt ? `its prompt ${prompt}` : null;
  } catch (err) {
    if (err instanceof ParamOutOfRangeError) return `its parameters do not fit this worker's defaults (DESCRIBE_*): ${err.message}`;
    throw err;
  }
}

class ShutdownAbort extends Error {
  override name = "ShutdownAbort";
  constructor() {
    super("worker shutting down");
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/**
 * What a job says about an unusable image: its path relative to IMAGE_DIR (the basename when it
 * lies elsewhere) and the problem; never the absolute path, which only the log gets.
 */
export function imageProblem(err: ImageInputError, imageDir: string): string {
  const rel = relative(imageDir, err.path);
  const shown = rel && !rel.startsWith("..") && !isAbsolute(rel) ? rel : basename(err.path);
  return `Cannot use image ${shown}: ${err.reason}`;
}

/**
 * A model load failure as the heartbeat shows it to every reader of `status`: what is wrong and
 * the command that fixes it, with no local path (the model folder is "the model folder", its
 * parent <MODEL_DIR>). Any other failure names only its error class; the worker's log has the rest.
 */
export function modelErrorForReaders(err: unknown): string {
  if (err instanceof ModelMissingError) {
    const command = err.command.replaceAll(err.folder, "<model folder>").replaceAll(dirname(dirname(err.folder)), "<MODEL_DIR>");
    return `Model files missing in the model folder: ${err.missing.join(", ")}. Fetch them with: ${command}`;
  }
  // Names what to install or set, never a local path (onnxruntime's own words are in `detail`, logged).
  if (err instanceof DeviceUnavailableError) return err.message;
  if (err instanceof ModelContractError) {
    const problems = err.problems.map((p) => p.replaceAll(err.folder, "<model folder>"));
    return `The model does not match the SmolVLM ONNX contract: ${problems.join("; ")}`;
  }
  return `The model failed to load (${err instanceof Error ? err.name : "unknown error"}); the worker's log says why.`;
}
