import type { Worker } from "node:worker_threads";
import type { Config } from "../config.js";
import { startModuleThread } from "../describe/module-thread.js";
import { BoundedLru } from "../graphql/bounded-lru.js";
import { configuredVectorModel, embedModelDir, embedModelPresence, embedModelRevision, type EmbedConfig } from "./model-files.js";
import type { EmbedKind, EmbedModelInfo, EmbedModelOptions } from "./model.js";
import type { EmbedReply, EmbedRequest } from "./thread.js";

/** The embedding model is not installed: semantic search is off until `command` is run. */
export class EmbedModelMissingError extends Error {
  override name = "EmbedModelMissingError";
  constructor(
    readonly folder: string,
    readonly missing: string[],
    readonly command: string,
  ) {
    super(`The embedding model is not installed (${folder} lacks ${missing.join(", ")}): run ${command}`);
  }
}

/** The embedding thread failed to load the model or stopped. */
export class EmbedderFailedError extends Error {
  override name = "EmbedderFailedError";
}

/**
 * The embedding thread stopped (it exited or failed, or the embedder was closed): this embedder
 * serves nothing more, and a new one must be opened.
 */
export class EmbedderStoppedError extends EmbedderFailedError {
  override name = "EmbedderStoppedError";
}

/** The embedding thread did not answer in time and was left behind (openEmbedder's request deadline). */
export class EmbedderHungError extends EmbedderStoppedError {
  override name = "EmbedderHungError";
}

/** The model failed on one request's texts (the thread goes on serving others). */
export class EmbedRequestError extends EmbedderFailedError {
  override name = "EmbedRequestError";
  /**
   * The model gave a text a vector that is not finite (NonFiniteEmbeddingError): that text will
   * fail again, whenever it is sent. Any other failure (memory, onnxruntime) may pass.
   */
  readonly refusal: boolean;
  constructor(message: string, cause = "Error") {
    super(message);
    this.refusal = cause === "NonFiniteEmbeddingError";
  }
}

/** Too many query embeddings are waiting for the thread: this one is refused rather than queued without end. */
export class EmbedderBusyError extends EmbedderFailedError {
  override name = "EmbedderBusyError";
}

/** Query embeddings waiting for or running in an API process's embedding thread, at most. */
export const MAX_PENDING_QUERIES = 32;

/**
 * Queries embedded in one run, at most, and the most characters one run may pad to (its longest
 * text times its count). One run of 4 short queries costs about half the CPU of 4 runs (bench:embed);
 * the character budget keeps a long query from making a batch of short ones pad to its length.
 */
export const QUERY_BATCH_MAX = 16;
export const QUERY_BATCH_CHARS = 1_024;

/**
 * Which of the waiting texts (lengths in arrival order) go into the next run: the first always,
 * then each later one that keeps the batch within `maxCount` texts and `maxChars` padded characters.
 */
export function nextQueryBatch(lengths: readonly number[], maxCount = QUERY_BATCH_MAX, maxChars = QUERY_BATCH_CHARS): number[] {
  if (!lengths.length) return [];
  const taken = [0];
  let longest = lengths[0]!;
  for (let i = 1; i < lengths.length && taken.length < maxCount; i++) {
    const l = Math.max(longest, lengths[i]!);
    if (l * (taken.length + 1) > maxChars) continue;
    taken.push(i);
    longest = l;
  }
  return taken;
}

export interface Embedder {
  readonly info: EmbedModelInfo;
  /** Unit-length vectors, one per text; inference runs in the embedding thread. */
  embed(texts: readonly string[], kind: EmbedKind): Promise<Float32Array[]>;
  close(): Promise<void>;
  /** True once its thread stopped, hung or is closing: it serves nothing more (absent: never known to have stopped). */
  readonly stopped?: boolean;
}

/**
 * How long a request of `texts` texts may take before the thread counts as hung: a minute, and 5 s a
 * text (a full 512-token passage takes well under a second on one busy core).
 */
export const embedRequestTimeoutMs = (texts: number) => 60_000 + 5_000 * texts;

/** How long loading the model may take before its thread counts as hung (a few seconds normally, on a slow disk a minute). */
export const EMBED_LOAD_TIMEOUT_MS = 180_000;

/** Embedding threads that hung and were left behind (each with a model loaded), in this process. */
let leftBehind = 0;
/** Past this many, no embedding thread is started any more: the process needs a restart. */
export const MAX_LEFT_BEHIND = 3;

/**
 * Loads the configured embedding model in a worker thread and waits until it is ready. A missing
 * model fails fast (before the thread starts) with EmbedModelMissingError. Once the thread stops,
 * every request fails with EmbedderStoppedError. `startThread` starts it (tests keep hold of it).
 * A request not answered within `requestTimeoutMs` leaves the thread behind (EmbedderHungError).
 */
export async function openEmbedder(
  config: EmbedConfig & Pick<Config, "ORT_THREADS">,
  threads = config.ORT_THREADS,
  startThread: typeof startModuleThread = startModuleThread,
  requestTimeoutMs: (texts: number) => number = embedRequestTimeoutMs,
  loadTimeoutMs = EMBED_LOAD_TIMEOUT_MS,
): Promise<Embedder> {
  const presence = embedModelPresence(config);
  if (presence.missing.length) throw new EmbedModelMissingError(presence.dir, presence.missing, presence.command);
  if (leftBehind >= MAX_LEFT_BEHIND) {
    throw new EmbedderFailedError(`${leftBehind} embedding threads hung in this process and hold their memory: restart it (searches go by words until then)`);
  }
  const init: EmbedModelOptions = { dir: embedModelDir(config), modelId: config.EMBED_MODEL_ID, dtype: config.EMBED_MODEL_DTYPE, revision: embedModelRevision(config), threads };
  const worker: Worker = startThread(new URL(import.meta.url.endsWith(".ts") ? "./thread.ts" : "./thread.js", import.meta.url), init);
  const pending = new Map<number, { resolve: (v: Float32Array[]) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  let nextId = 1;
  let closed = false;
  const failAll = (err: Error) => {
    for (const p of pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    pending.clear();
  };
  const info = await new Promise<EmbedModelInfo>((resolve, reject) => {
    // A load that never ends (a model file on a hung mount, a stuck session) would hold every search
    // that waits for it: past the deadline the thread is left behind, as a hung request's is.
    const deadline = setTimeout(() => {
      worker.off("message", onMessage);
      leftBehind++;
      worker.unref();
      reject(new EmbedderHungError(`the embedding model did not load within ${Math.round(loadTimeoutMs / 1000)} s: its thread is left behind`));
    }, loadTimeoutMs);
    deadline.unref();
    const onMessage = (m: EmbedReply) => {
      if (m.type === "ready") {
        clearTimeout(deadline);
        worker.off("message", onMessage);
        resolve(m.info);
      } else if (m.type === "failed") {
        clearTimeout(deadline);
        worker.off("message", onMessage);
        void worker.terminate();
        reject(new EmbedderFailedError(`the embedding model did not load: ${m.message}`));
      }
    };
    worker.on("message", onMessage);
    worker.once("error", (err) => (clearTimeout(deadline), reject(err)));
    worker.once("exit", (code) => (clearTimeout(deadline), reject(new EmbedderFailedError(`the embedding thread exited during load (code ${code})`))));
  });
  let onClosed: (() => void) | null = null;
  worker.on("message", (m: EmbedReply) => {
    if (m.type === "result" || m.type === "error") {
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      clearTimeout(p.timer);
      if (pending.size === 0) worker.unref();
      if (m.type === "result") p.resolve(m.vectors);
      else p.reject(new EmbedRequestError(m.message, m.name));
    } else if (m.type === "closed") onClosed?.();
  });
  // An uncaught error ends the thread ("exit" follows): its requests fail as the thread's stop.
  worker.on("error", (err) => {
    closed = true;
    failAll(new EmbedderStoppedError(`the embedding thread failed: ${err.message}`));
  });
  worker.on("exit", (code) => {
    closed = true;
    failAll(new EmbedderStoppedError(`the embedding thread exited (code ${code})`));
    onClosed?.();
  });
  // An idle embedding thread must not keep a process alive; one with work in hand must.
  worker.unref();
  let closing: Promise<void> | null = null;
  let hung = false;
  return {
    info,
    get stopped() {
      return closed || hung || closing !== null;
    },
    embed(texts, kind) {
      if (closed || closing) return Promise.reject(new EmbedderStoppedError("the embedder is closed"));
      const id = nextId++;
      return new Promise((resolve, reject) => {
        // A thread that never answers (a hung session) would hold its job, which keeps beating,
        // and every search waiting behind it, for ever: past the deadline it is stopped, and its
        // requests fail as a stopped thread's (the job fails; the model is loaded again).
        const waitMs = requestTimeoutMs(texts.length);
        const timer = setTimeout(() => {
          // Terminating a thread inside onnxruntime's run() aborts the whole process: the thread
          // is left behind, unref'd, and this embedder serves nothing more (a new one is opened).
          hung = true;
          leftBehind++;
          closed = true;
          failAll(new EmbedderHungError(`the embedding thread did not answer within ${Math.round(waitMs / 1000)} s: left behind`));
          worker.unref();
        }, waitMs);
        timer.unref();
        pending.set(id, { resolve, reject, timer });
        worker.ref();
        worker.postMessage({ type: "embed", id, texts: [...texts], kind } satisfies EmbedRequest);
      });
    },
    close() {
      // A hung thread would never answer: it stays behind (see embed's deadline).
      if (closed || hung) return Promise.resolve();
      closing ??= new Promise<void>((resolve) => {
        onClosed = resolve;
        // An idle thread is unref'd: without this, a process with nothing else to do exits (code 13) before the answer.
        worker.ref();
        worker.postMessage({ type: "close" } satisfies EmbedRequest);
      }).then(() => worker.terminate().then(() => undefined));
      return closing;
    },
  };
}

/** How long the API's query embedder waits before it looks for a missing model again, or loads one that failed or hung again. */
export const QUERY_EMBEDDER_RETRY_MS = 30_000;

interface WaitingQuery {
  text: string;
  resolve: (v: Float32Array) => void;
  reject: (e: unknown) => void;
}

/**
 * The API process's query embedder: the thread starts on the first semantic search, query vectors
 * are kept in a small LRU (a repeated query costs no inference), and a missing model is checked
 * again at most every `retryMs` (so `models pull --embed` turns semantic search on without a restart).
 * One run at a time goes to the thread; queries that arrive meanwhile wait here and go together in
 * the next run (nextQueryBatch), so under load each costs less. A run is sent at the end of the
 * event loop's turn (setImmediate), not at the first query, so that the searches parsed in the same
 * turn share it: under load that made runs of 2–4 queries the rule instead of the exception, and
 * HYBRID served up to 17 % more (0–17 % in six pairs; BENCHMARKS.md, "Query runs sent at the end of the turn"); an idle
 * server waits no more than that turn.
 */
export class QueryEmbedder {
  private embedder: Promise<Embedder> | null = null;
  /** The embedder once loaded, and the weights' revision it was opened on (read from the model folder). */
  private loaded: { embedder: Embedder; revision: string } | null = null;
  /** When available() next compares the installed revision with the loaded one. */
  private revisionCheckAt = 0;
  private missingUntil = 0;
  /** The model failed to load, or its thread hung: searches get this error, not a new thread each, until `until`. */
  private failed: { error: unknown; until: number; loading: boolean } | null = null;
  private readonly cache: BoundedLru<Float32Array>;
  /** Queries being embedded: a second ask for the same text waits for the first. */
  private readonly inFlight = new Map<string, Promise<Float32Array>>();
  /** Queries not yet sent to the thread, in arrival order. */
  private waiting: WaitingQuery[] = [];
  private running = false;
  /** A send is queued for the end of the event loop's turn. */
  private sendQueued = false;

  constructor(
    private readonly config: EmbedConfig & Pick<Config, "ORT_THREADS" | "EMBED_QUERY_THREADS" | "EMBED_QUERY_CACHE_ENTRIES">,
    private readonly open: typeof openEmbedder = openEmbedder,
    private readonly retryMs = QUERY_EMBEDDER_RETRY_MS,
  ) {
    const entries = config.EMBED_QUERY_CACHE_ENTRIES;
    this.cache = new BoundedLru({ maxEntries: entries, maxBytes: entries * 8 * 1024 });
  }

  /** True when the model's files are there (cheap: a few stat calls, at most every retryMs when absent). */
  available(): boolean {
    this.dropIfOutdated();
    if (this.embedder) return true;
    if (Date.now() < this.missingUntil) return false;
    const present = embedModelPresence(this.config).missing.length === 0;
    if (!present) this.missingUntil = Date.now() + this.retryMs;
    return present;
  }

  /**
   * Lets go of an embedder that can serve nothing more, or whose weights were replaced, so the next
   * query opens a new one: a thread that died while idle, or a `models pull --embed` of a new revision
   * (looked at every retryMs; its vectors must not be compared with those the workers now make).
   * Never while a run is in progress: its queries finish on the old thread first.
   */
  private dropIfOutdated(): void {
    const loaded = this.loaded;
    if (!loaded || this.running) return;
    let outdated = loaded.embedder.stopped === true;
    if (!outdated && Date.now() >= this.revisionCheckAt) {
      this.revisionCheckAt = Date.now() + this.retryMs;
      outdated = embedModelRevision(this.config) !== loaded.revision;
    }
    if (!outdated) return;
    this.loaded = null;
    this.embedder = null;
    this.cache.clear();
    void loaded.embedder.close().catch(() => undefined);
  }

  get modelId(): string {
    return this.config.EMBED_MODEL_ID;
  }

  /**
   * Why the installed model's files failed to load here, or null: loaded, loading, never tried, not
   * installed (that failure is EmbedModelMissingError), hung while running rather than loading, or
   * due to be tried again (retryMs has passed: a `models pull --embed` since may have mended it).
   * Paths are left out: anyone may read it in `status`.
   */
  loadError(): string | null {
    const f = this.failed;
    if (!f || this.loaded || !f.loading || Date.now() >= f.until || f.error instanceof EmbedModelMissingError) return null;
    const text = f.error instanceof Error ? f.error.message : String(f.error);
    return text.replace(/^the embedding model did not load: /, "").replace(/(^|[\s'"(=])(?:[A-Za-z]:)?[\\/][^\s'"()]+/g, "$1<model folder>");
  }

  /** Starts the thread and loads the model now when it is installed (resolves at once when not). */
  async warm(): Promise<void> {
    if (this.available()) await this.ready();
  }

  /** The query's vector; throws EmbedModelMissingError or EmbedderFailedError. */
  async embedQuery(text: string): Promise<Float32Array> {
    const kept = this.cache.get(text);
    if (kept) return kept;
    const running = this.inFlight.get(text);
    if (running) return running;
    if (this.inFlight.size >= MAX_PENDING_QUERIES) {
      throw new EmbedderBusyError(`${MAX_PENDING_QUERIES} queries are already waiting for the embedding model; try again shortly (TEXT search is not affected)`);
    }
    const embedding = new Promise<Float32Array>((resolve, reject) => {
      this.waiting.push({ text, resolve, reject });
      this.pump();
    });
    this.inFlight.set(text, embedding);
    try {
      return await embedding;
    } finally {
      this.inFlight.delete(text);
    }
  }

  /** Sends the next batch of waiting queries to the thread at the end of this turn, unless a run is in progress. */
  private pump(): void {
    if (this.running || this.sendQueued || !this.waiting.length) return;
    this.sendQueued = true;
    setImmediate(() => {
      this.sendQueued = false;
      this.send();
    });
  }

  private send(): void {
    if (this.running || !this.waiting.length) return;
    this.dropIfOutdated();
    const picked = new Set(nextQueryBatch(this.waiting.map((w) => w.text.length)));
    const batch = this.waiting.filter((_, i) => picked.has(i));
    this.waiting = this.waiting.filter((_, i) => !picked.has(i));
    this.running = true;
    void this.run(batch).finally(() => {
      this.running = false;
      this.pump();
    });
  }

  /** Embeds a batch and settles each of its queries; never throws. */
  private async run(batch: WaitingQuery[]): Promise<void> {
    const opening = this.ready();
    try {
      const embedder = await opening;
      const vectors = await embedder.embed(batch.map((w) => w.text), "query").catch(async (err: unknown) => {
        // A text the model refused must not fail the queries that shared its run: each goes alone.
        if (batch.length === 1 || !(err instanceof EmbedRequestError)) throw err;
        for (const w of batch) await this.run([w]);
        return null;
      });
      vectors?.forEach((vector, i) => {
        const w = batch[i]!;
        this.cache.set(w.text, vector, vector.byteLength + w.text.length * 2);
        w.resolve(vector);
      });
    } catch (err) {
      // A thread that stopped serves no later search either: the next one loads the model again.
      if (err instanceof EmbedderStoppedError && this.embedder === opening) {
        this.embedder = null;
        this.loaded = null;
        // After a hang, not at once on the next search: each thread left behind keeps its model
        // loaded, and a query that hangs it would otherwise cost one more per search.
        if (err instanceof EmbedderHungError) this.failed = { error: err, until: Date.now() + this.retryMs, loading: false };
        void opening.then((e) => e.close()).catch(() => undefined);
      }
      for (const w of batch) w.reject(err);
    }
  }

  private ready(): Promise<Embedder> {
    if (!this.embedder) {
      if (this.failed && Date.now() < this.failed.until) return Promise.reject(this.failed.error);
      const revision = embedModelRevision(this.config);
      const opening = this.open(this.config, this.config.EMBED_QUERY_THREADS);
      this.embedder = opening;
      this.revisionCheckAt = Date.now() + this.retryMs;
      // A model that failed to load is tried again after retryMs, not on every search (each try
      // starts a thread and reads the model's files), and not kept as a failure for good.
      opening.then(
        (embedder) => {
          this.failed = null;
          if (this.embedder === opening) this.loaded = { embedder, revision };
        },
        (error: unknown) => {
          if (this.embedder !== opening) return;
          this.embedder = null;
          this.failed = { error, until: Date.now() + this.retryMs, loading: true };
        },
      );
    }
    return this.embedder;
  }

  async close(): Promise<void> {
    const e = this.embedder;
    this.embedder = null;
    this.loaded = null;
    this.cache.clear();
    const waiting = this.waiting;
    this.waiting = [];
    for (const w of waiting) w.reject(new EmbedderFailedError("the embedder is closed"));
    if (e) await (await e.catch(() => null))?.close();
  }
}

const shared = new WeakMap<object, QueryEmbedder>();

/**
 * The process's query embedder for this configuration, as search's MeaningSource (one embedding
 * thread per API process, started by the first semantic search). Its thread is unref'd: it never
 * keeps a process alive.
 */
export function meaningSource(config: EmbedConfig & Pick<Config, "ORT_THREADS" | "EMBED_QUERY_THREADS" | "EMBED_QUERY_CACHE_ENTRIES" | "SEARCH_SEMANTIC_TOP_K" | "SEARCH_SEMANTIC_MIN_SIMILARITY" | "SEARCH_RRF_K">) {
  let q = shared.get(config);
  if (!q) shared.set(config, (q = new QueryEmbedder(config)));
  const embedder = q;
  return {
    modelId: configuredVectorModel(config),
    topK: config.SEARCH_SEMANTIC_TOP_K,
    minSimilarity: config.SEARCH_SEMANTIC_MIN_SIMILARITY,
    rrfK: config.SEARCH_RRF_K,
    available: () => embedder.available(),
    embedQuery: (text: string) => embedder.embedQuery(text),
    warm: () => embedder.warm(),
    /** Why the installed model did not load in this process, or null. */
    loadError: () => embedder.loadError(),
    /** Stops the embedding thread (a one-shot command; an API process keeps it). */
    close: async () => {
      shared.delete(config);
      await embedder.close();
    },
  };
}
