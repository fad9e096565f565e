import { parentPort, workerData } from "node:worker_threads";
import { Engine, type EngineOptions, type EngineParams, ImageInputError } from "./engine.js";
import type { DescribeInput } from "./types.js";
import { ModelMissingError } from "./types.js";

/**
 * The inference thread: onnxruntime-node's run() blocks the thread that calls it, so the model
 * lives here and the caller's event loop stays free. Messages in: describe, close. Messages out:
 * ready | failed (once), progress, result | error (per request), closed.
 */

export interface WorkerInit {
  engine: EngineOptions;
}

export type WorkerRequest =
  | { type: "describe"; id: number; inputs: DescribeInput[]; params: EngineParams; abort: SharedArrayBuffer }
  | { type: "close" };

export interface SerializedError {
  name: string;
  message: string;
  folder?: string;
  missing?: string[];
  command?: string;
  path?: string;
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
  if (err instanceof ImageInputError) return { name: err.name, message: err.message, path: err.path };
  if (err instanceof Error) return { name: err.name, message: err.message };
  return { name: "Error", message: String(err) };
}

const port = parentPort;
if (port) {
  const post = (m: WorkerReply) => port.postMessage(m);
  const init = workerData as WorkerInit;
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
        post({ type: "error", id, error: { name: "Error", message: "the describer is closed" } });
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
          onProgress: (index, tokens) => post({ type: "progress", id, index, tokens }),
        });
        post({ type: "result", id, outputs });
      } catch (err) {
        post({ type: "error", id, error: serializeError(err) });
      }
    });
  });
}
