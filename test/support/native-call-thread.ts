import { parentPort } from "node:worker_threads";
import * as ort from "onnxruntime-node";
import { moduleThreadData } from "../../src/describe/thread-data.js";

/**
 * A module thread (src/describe/module-thread.ts) whose onnxruntime run takes as long as asked:
 * `rows` rows through the slow-matmul model (slowMatmulModel). Messages in: a row count. Out:
 * ready, started (run called), done, or refused: <error name>.
 */
const { model } = moduleThreadData<{ model: string }>();
const port = parentPort!;
const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
port.on("message", async (rows: number) => {
  const x = new ort.Tensor("float32", new Float32Array(rows * 512), [rows, 512]);
  // "started" once the call has begun (the counter is raised as run is called).
  const running = session.run({ x });
  port.postMessage("started");
  try {
    await running;
    port.postMessage("done");
  } catch (err) {
    port.postMessage(`refused: ${(err as Error).name}`);
  }
});
port.postMessage("ready");
