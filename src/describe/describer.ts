import { join } from "node:path";
import type { Worker } from "node:worker_threads";
import type { Config } from "../config.js";
import { DeviceUnavailableError, checkDeviceInstalled } from "./device.js";
import { startModuleThread } from "./module-thread.js";
import { checkModelFilesPresent, type EngineOptions, type EngineParams } from "./engine.js";
import { checkParams } from "../generation/params.js";
import { ModelContractError, moduleDtypes } from "./models/contract.js";
import type { WorkerInit, WorkerReply, WorkerRequest, SerializedError } from "./worker.js";
import {
  type DescribeInput,
  type DescribeOptions,
  type DescribeOutput,
  type Describer,
  EngineOutOfMemoryError,
  EngineStoppedError,
  type GenerationParams,
  ImageInputError,
  type ModelInfo,
  ModelMissingError,
} from "./types.js";

export interface DescriberOptions {
  /** The model folder; default MODEL_DIR/MODEL_ID. */
  modelDir?: string;
  /** Vision encoder tiles per run (default 1). */
  visionGroup?: number;
}

/** The error class again, by the name serializeError recorded (a class cannot cross threads). */
function deserializeError(e: SerializedError): Error {
  if (e.name === "ModelMissingError") return new ModelMissingError(e.folder ?? "", e.missing ?? [], e.command ?? "");
  if (e.name === "ImageInputError") return new ImageInputError(e.path ?? "", e.reason ?? e.message);
  if (e.name === "EngineStoppedError") return new EngineStoppedError(e.message);
  if (e.name === "EngineOutOfMemoryError") return new EngineOutOfMemoryError(e.module ?? "?", e.rows ?? 0);
  if (e.name === "DeviceUnavailableError") return new DeviceUnavailableError(e.device ?? "cpu", e.message, e.detail ?? "");
  if (e.name === "ModelContractError") return new ModelContractError(e.folder ?? "", e.problems ?? [e.message]);
  return Object.assign(new Error(e.message), { name: e.name });
}

/**
 * Starts the worker: from dist/ as plain JS; from .ts sources (vitest, tsx) through tsx's loader.
 */
function startWorker(init: WorkerInit): Worker {
  return startModuleThread(new URL(import.meta.url.endsWith(".ts") ? "./worker.ts" : "./worker.js", import.meta.url), init);
}

/** How long close() waits for the description thread to finish what it runs and release its sessions. */
export const CLOSE_WAIT_MS = 10_000;

/**
 * Opens the description engine in a worker thread and waits until the model is loaded. A missing
 * model fails fast (before the thread starts) with ModelMissingError, and MODEL_DEVICE=cuda without
 * onnxruntime's CUDA provider with DeviceUnavailableError.
 */
export async function openDescriber(config: Config, options: DescriberOptions = {}): Promise<Describer> {
  const modelDir = options.modelDir ?? join(config.MODEL_DIR, config.MODEL_ID);
  const dtypes = moduleDtypes(config.MODEL_DTYPE, config.MODEL_DEVICE);
  const engine: EngineOptions = {
    modelDir,
    dtype: dtypes,
    device: config.MODEL_DEVICE,
    threads: config.ORT_THREADS,
    revision: config.MODEL_REVISION,
    ...(options.modelDir ? {} : { modelId: config.MODEL_ID }),
    ...(options.visionGroup ? { visionGroup: options.visionGroup } : {}),
  };
  checkModelFilesPresent(modelDir, dtypes, options.modelDir ? undefined : { modelId: config.MODEL_ID, revision: config.MODEL_REVISION });
  checkDeviceInstalled(config.MODEL_DEVICE);

  const worker = startWorker({ engine });
  const pending = new Map<
    number,
    { resolve: (o: (DescribeOutput | null)[]) => void; reject: (e: Error) => void; onProgress?: (i: number, n: number) => void; signal?: AbortSignal }
  >();
  let nextId = 1;
  let closed = false;
  let closing: Promise<void> | null = null;
  let onClosed: (() => void) | null = null;

  const failAll = (err: Error) => {
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };

  const model = await new Promise<ModelInfo>((resolve, reject) => {
    const onMessage = (m: WorkerReply) => {
      if (m.type === "ready") {
        worker.off("message", onMessage);
        resolve(m.model);
      } else if (m.type === "failed") {
        worker.off("message", onMessage);
        void worker.terminate();
        reject(deserializeError(m.error));
      }
    };
    worker.on("message", onMessage);
    worker.once("error", reject);
    worker.once("exit", (code) => reject(new EngineStoppedError(`description worker exited during load (code ${code})`)));
  });

  worker.on("message", (m: WorkerReply) => {
    if (m.type === "progress") pending.get(m.id)?.onProgress?.(m.index, m.tokens);
    else if (m.type === "result" || m.type === "error") {
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      if (m.type === "result") p.resolve(m.outputs);
      else if (m.error.name === "AbortError" && p.signal?.aborted) p.reject(p.signal.reason instanceof Error ? p.signal.reason : deserializeError(m.error));
      else p.reject(deserializeError(m.error));
    } else if (m.type === "closed") onClosed?.();
  });
  worker.on("error", (err) => failAll(err));
  worker.on("exit", (code) => {
    closed = true;
    failAll(new EngineStoppedError(`description worker exited (code ${code})`));
    onClosed?.();
  });

  return {
    model,
    describe(inputs: DescribeInput[], params: GenerationParams, opts: DescribeOptions = {}) {
      if (closed || closing) return Promise.reject(new EngineStoppedError("the describer is closed"));
      if (opts.signal?.aborted) return Promise.reject(opts.signal.reason instanceof Error ? opts.signal.reason : new Error("aborted"));
      const id = nextId++;
      // Flag 0 aborts the request, flag 1 + i drops input i (see WorkerRequest).
      const abort = new SharedArrayBuffer(4 * (1 + inputs.length));
      const flag = new Int32Array(abort);
      let full: EngineParams;
      try {
        // The engine runs only parameters of the one vocabulary, whoever built them.
        full = checkParams(params);
      } catch (err) {
        return Promise.reject(err as Error);
      }
      return new Promise<(DescribeOutput | null)[]>((resolve, reject) => {
        const entry: { resolve: typeof resolve; reject: typeof reject; onProgress?: (i: number, n: number) => void; signal?: AbortSignal } = {
          resolve,
          reject,
        };
        if (opts.onProgress) entry.onProgress = opts.onProgress;
        if (opts.signal) {
          entry.signal = opts.signal;
          opts.signal.addEventListener("abort", () => Atomics.store(flag, 0, 1), { once: true });
        }
        opts.itemSignals?.forEach((s, i) => {
          if (i >= inputs.length || !s) return;
          if (s.aborted) Atomics.store(flag, 1 + i, 1);
          else s.addEventListener("abort", () => Atomics.store(flag, 1 + i, 1), { once: true });
        });
        pending.set(id, entry);
        worker.postMessage({ type: "describe", id, inputs, params: full, abort } satisfies WorkerRequest);
      });
    },
    close() {
      if (closed) return Promise.resolve();
      closing ??= new Promise<"closed" | "hung">((resolve) => {
        // The thread answers once the description it runs has ended. One that does not answer
        // within CLOSE_WAIT_MS (a hung session) is left behind, unref'd, for the process's exit to
        // end: terminating a thread inside onnxruntime's run() aborts the whole process.
        const timer = setTimeout(() => resolve("hung"), CLOSE_WAIT_MS);
        timer.unref();
        onClosed = () => {
          closed = true;
          clearTimeout(timer);
          resolve("closed");
        };
        worker.postMessage({ type: "close" } satisfies WorkerRequest);
      }).then((how) => {
        closed = true;
        if (how === "hung") {
          failAll(new EngineStoppedError("the description thread did not close in time: left behind"));
          return void worker.unref();
        }
        return worker.terminate().then(() => undefined);
      });
      return closing;
    },
  };
}
