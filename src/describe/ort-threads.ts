/**
 * onnxruntime session options (`extra`) that keep idle intra- and inter-op threads from
 * spin-waiting, which they do by default. Sessions here share a few cores with the API and with
 * each other, so spinning threads steal the cores the running session needs: on the 2-core
 * benchmark machine turning it off made decode steps about twice as fast. The describe engine,
 * the embedding model and bench:step use it. A new object each call: a session's options are its own.
 */
export function noSpinningThreads(): Record<string, unknown> {
  return { session: { intra_op: { allow_spinning: "0" }, inter_op: { allow_spinning: "0" } } };
}
