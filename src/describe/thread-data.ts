import { workerData } from "node:worker_threads";
import * as ort from "onnxruntime-node";
import { IN_PROGRESS, type ModuleThreadData, REFUSE } from "./module-thread.js";

/**
 * Inside a module thread (module-thread.ts): its data, after counting from then on every call into
 * onnxruntime in progress (InferenceSession.create and run, which transformers.js's sessions use
 * too) in the counter the starting process reads, and refusing new calls once it is exiting.
 */
export function moduleThreadData<T>(): T {
  const { data, nativeCalls } = workerData as ModuleThreadData<T>;
  countNativeCalls(nativeCalls);
  return data;
}

let counted = false;

function countNativeCalls(calls: Int32Array): void {
  if (counted) return;
  counted = true;
  const Session = ort.InferenceSession;
  const counting = async <R>(call: () => Promise<R>): Promise<R> => {
    if (Atomics.load(calls, REFUSE)) throw new ProcessExitingError("the process is exiting: no new onnxruntime call");
    Atomics.add(calls, IN_PROGRESS, 1);
    try {
      return await call();
    } finally {
      Atomics.sub(calls, IN_PROGRESS, 1);
    }
  };
  // Declared as an interface and a factory; at run time a class, whose prototype holds run.
  const proto = (Session as unknown as { prototype: ort.InferenceSession }).prototype;
  const run = proto.run;
  proto.run = function (this: ort.InferenceSession, ...args: Parameters<typeof run>) {
    return counting(() => run.apply(this, args));
  } as typeof run;
  const create = Session.create;
  Session.create = function (this: typeof Session, ...args: unknown[]) {
    return counting(() => (create as (...a: unknown[]) => Promise<ort.InferenceSession>).apply(this, args));
  } as typeof create;
}

export class ProcessExitingError extends Error {
  override name = "ProcessExitingError";
}
