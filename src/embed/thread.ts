import { parentPort } from "node:worker_threads";
import { moduleThreadData } from "../describe/thread-data.js";
import { type EmbedKind, EmbeddingModel, type EmbedModelInfo, type EmbedModelOptions } from "./model.js";

/**
 * The embedding thread: onnxruntime's run() blocks the thread that calls it, so the model lives
 * here. Messages in: embed, close. Out: ready | failed (once), result | error (per request), closed.
 */

export type EmbedRequest = { type: "embed"; id: number; texts: string[]; kind: EmbedKind } | { type: "close" };

export type EmbedReply =
  | { type: "ready"; info: EmbedModelInfo }
  | { type: "failed"; message: string }
  | { type: "result"; id: number; vectors: Float32Array[] }
  | { type: "error"; id: number; message: string; name: string }
  | { type: "closed" };

const port = parentPort;
if (port) {
  const post = (m: EmbedReply, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);
  let model: EmbeddingModel | null = null;
  let queue: Promise<void> = Promise.resolve();
  try {
    model = await EmbeddingModel.load(moduleThreadData<EmbedModelOptions>());
    post({ type: "ready", info: model.info });
  } catch (err) {
    post({ type: "failed", message: err instanceof Error ? err.message : String(err) });
  }
  port.on("message", (msg: EmbedRequest) => {
    queue = queue.then(async () => {
      if (msg.type === "close") {
        await model?.dispose();
        model = null;
        post({ type: "closed" });
        port.close();
        return;
      }
      if (!model) return post({ type: "error", id: msg.id, message: "the embedding model is closed", name: "Error" });
      try {
        const vectors = await model.embed(msg.texts, msg.kind);
        post({ type: "result", id: msg.id, vectors }, vectors.map((v) => v.buffer as ArrayBuffer));
      } catch (err) {
        post({ type: "error", id: msg.id, message: err instanceof Error ? err.message : String(err), name: err instanceof Error ? err.name : "Error" });
      }
    });
  });
}
