import { refuseNativeCalls, threadsInNativeCalls } from "../describe/module-thread.js";

/** How long a process that is done waits for its model threads to leave onnxruntime before it exits anyway. */
export const EXIT_WAIT_MS = 10_000;

/**
 * Exits the process with `code` (default process.exitCode) once no model thread is inside
 * onnxruntime (they start no new call from now on: a description stops at its next step), waiting
 * at most `waitMs`. Node cannot stop a thread inside a native call: a plain
 * process.exit() waits for the call to return, however long (a hung run: for ever), and then
 * aborts the process (SIGABRT, a core dump where those are kept). A thread still inside after
 * `waitMs` (one left behind by a close that timed out) is therefore not waited for: the process
 * logs it and ends with SIGKILL, so a supervisor restarts it all the same.
 */
export function exitProcess(log: { error(obj: object, msg: string): void }, code?: number, waitMs = EXIT_WAIT_MS): void {
  refuseNativeCalls();
  const deadline = Date.now() + waitMs;
  const attempt = () => {
    const busy = threadsInNativeCalls();
    // process.exit(undefined) would reset process.exitCode (it assigns whatever it is given).
    if (!busy) code === undefined ? process.exit() : process.exit(code);
    if (Date.now() < deadline) {
      setTimeout(attempt, 50);
      return;
    }
    log.error(
      { threads: busy, exitCode: code ?? process.exitCode ?? 0 },
      "a model thread is still inside onnxruntime: ending the process with SIGKILL (node would wait for the call to return, then abort)",
    );
    process.kill(process.pid, "SIGKILL");
  };
  attempt();
}
