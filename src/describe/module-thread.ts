import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";

/**
 * What a module thread receives: its own data, and shared slots (thread-data.ts): [0] the thread's
 * calls into onnxruntime in progress, which this process reads without asking the thread; [1] set
 * when the process is exiting: the thread then starts no new call.
 */
export interface ModuleThreadData<T> {
  data: T;
  nativeCalls: Int32Array;
}

/** The slots of ModuleThreadData.nativeCalls. */
export const IN_PROGRESS = 0;
export const REFUSE = 1;

/** The counters of the module threads alive in this process. */
const live = new Set<Int32Array>();

/**
 * Runs a module in a worker thread. Node 20 ignores `execArgv: ["--import", "tsx"]` for a .ts
 * worker entry ("Unknown file extension"), so for a .ts entry a two-line bootstrap registers tsx in
 * the thread and then imports it. The describe and embedding threads both start here; this module
 * imports nothing heavy, so the API process can load it. The module reads its data with
 * moduleThreadData (thread-data.ts).
 */
export function startModuleThread(entry: URL, workerData: unknown): Worker {
  const nativeCalls = new Int32Array(new SharedArrayBuffer(8));
  const data: ModuleThreadData<unknown> = { data: workerData, nativeCalls };
  let worker: Worker;
  if (entry.href.endsWith(".ts")) {
    // require.resolve finds the CJS build of tsx/esm/api; its ESM twin sits next to it.
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx/esm/api").replace(/\.cjs$/, ".mjs")).href;
    const bootstrap = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(entry.href)}); });`;
    worker = new Worker(bootstrap, { eval: true, workerData: data });
  } else {
    worker = new Worker(entry, { workerData: data });
  }
  live.add(nativeCalls);
  worker.once("exit", () => live.delete(nativeCalls));
  return worker;
}

/**
 * How many of this process's module threads are inside onnxruntime now (loading a model or running
 * it). Node cannot stop such a thread: exiting the process waits for the call to return, however
 * long, and then aborts it (SIGABRT, "terminate called after throwing an instance of
 * 'Napi::Error'"). See exitProcess (src/ops/exit.ts).
 */
export function threadsInNativeCalls(): number {
  let n = 0;
  for (const calls of live) if (Atomics.load(calls, IN_PROGRESS) > 0) n++;
  return n;
}

/** The process is exiting: every module thread's next call into onnxruntime fails at once (the call in progress ends as it will). */
export function refuseNativeCalls(): void {
  for (const calls of live) Atomics.store(calls, REFUSE, 1);
}
