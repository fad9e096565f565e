import { parentPort } from "node:worker_threads";
import { moduleThreadData } from "./thread-data.js";
import { Engine, type EngineOptions, type EngineParams } from "./engine.js";
import { DeviceUnavailableError } from "./device.js";
import { type DescribeInput, EngineOutOfMemoryError, EngineStoppedError, ImageInputError, ModelMissingError } from "./types.js";
import { ModelContractError } from "./models/contract.js";

/**
 * The inference thread: onnxruntime-node's run() blocks the thread that calls it, so the model
 * lives here and the caller's event loop stays free. Messages in: describe, close. Messages out:
 * ready | failed (once), progress, result | error (per request), closed.
 */

export interface WorkerInit {
  engine: EngineOptions;
}

/**
 * `abort` holds 1 + inputs Int32 flags: flag 0 set aborts the whole request, flag 1 + i drops
 * input i from the batch. The caller sets them with Atomics; this thread's event loop is blocked
 * by inference, so the engine polls them between images and steps.
 */
export type WorkerRequest =
  | { type: "describe"; id: number; inputs: DescribeInput[]; params: EngineParams; abort: SharedArrayBuffer }
  | { type: "close" };

/** An error as it crosses the thread boundary: `name` says which class to rebuild (describer.ts). */
export interface SerializedError {
  name: string;
  message: string;
  folder?: string;
  missing?: string[];
  command?: string;
  path?: string;
  reason?: string;
  module?: string;
  rows?: number;
  device?: "cpu" | "cuda" | "webgpu";
  detail?: string;
  /** ModelContractError's problems (with `folder`). */
  problems?: string[];
}

export type WorkerReply =
  | { type: "ready"; model: Engine["model"] }
  | { type: "failed"; error: SerializedError }
  | { type: "progress"; id: number; index: number; tokens: number }
  | { type: "result"; id: number; outputs: Awaited<ReturnType<Engine["describe"]>> }
  | { type: "error"; id: number; error: SerializedError }
  | { type: "closed" };

export function serializeError(err: unknown): SerializedError {
  if (err instanceof ModelMissingError) {
    return { name: err.name, message: err.message, folder: err.folder, missing: err.missing, command: err.command };
  }
  if (err instanceof ImageInputError) return { name: err.name, message: err.message, path: err.path, reason: err.reason };
  if (err instanceof EngineOutOfMemoryError) return { name: err.name, message: err.message, module: err.module, rows: err.rows };
  if (err instanceof DeviceUnavailableError) return { name: err.name, message: err.message, device: err.device, detail: err.detail };
  if (err instanceof ModelContractError) return { name: err.name, message: err.message, folder: err.folder, problems: err.problems };
  if (err instanceof Error) return { name: err.name, message: err.message };
  return { name: "Error", message: String(err) };
}

const port = parentPort;
if (port) {
  const post = (m: WorkerReply) => port.postMessage(m);
  const init = moduleThreadData<WorkerInit>();
  let engine: Engine | null = null;
  let queue: Promise<void> = Promise.resolve();

  try {
    engine = await Engine.load(init.engine);
    post({ type: "ready", model: engine.model });
  } catch (err) {
    post({ type: "failed", error: serializeError(err) });
  }

  port.on("message", (msg: WorkerRequest) => {
    // One request at a time: the engine holds per-run state (the cache, the processor's size).
    queue = queue.then(async () => {
      if (msg.type === "close") {
        await engine?.dispose();
        engine = null;
        post({ type: "closed" });
        port.close();
        return;
      }
      const { id } = msg;
      if (!engine) {
        post({ type: "error", id, error: serializeError(new EngineStoppedError("the describer is closed")) });
        return;
      }
      const flag = new Int32Array(msg.abort);
      const controller = new AbortController();
      try {
        const outputs = await engine.describe(msg.inputs, msg.params, {
          signal: controller.signal,
          poll: () => {
            if (Atomics.load(flag, 0) !== 0 && !controller.signal.aborted) {
              controller.abort(Object.assign(new Error("description aborted"), { name: "AbortError" }));
            }
          },
          dropped: (index) => Atomics.load(flag, 1 + index) !== 0,
          onProgress: (index, tokens) => post({ type: "progress", id, index, tokens }),
        });
        post({ type: "result", id, outputs });
      } catch (err) {
        post({ type: "error", id, error: serializeError(err) });
      }
    });
  });
}
