import { startModuleThread } from "../../src/describe/module-thread.js";
import { exitProcess } from "../../src/ops/exit.js";

/**
 * A process whose model thread is inside onnxruntime when it exits: argv[2] the model
 * (writeSlowMatmulModel), argv[3] the rows of the run, argv[4] "plain" (process.exit) or the
 * milliseconds exitProcess may wait. Prints "exiting" once the run has started.
 */
const [model, rows, how] = process.argv.slice(2) as [string, string, string];
const thread = startModuleThread(new URL("./native-call-thread.ts", import.meta.url), { model });
thread.on("message", (m: string) => {
  if (m === "ready") thread.postMessage(Number(rows));
  if (m !== "started") return;
  setTimeout(() => {
    console.log("exiting");
    if (how === "plain") process.exit(3);
    exitProcess({ error: (fields, msg) => console.log(JSON.stringify({ ...fields, msg })) }, 3, Number(how));
  }, 300);
});
