// Run by test/ops/crash.test.ts: a service (runUntilSignal) with one component whose callback fails
// in the way CRASH names: "rejection" (a promise nobody awaits), "throw" (an exception from a timer),
// "hang" (a rejection, and a stop that never ends), "twice" (a rejection, and another while stopping),
// "slow" (a rejection, and a stop that waits for hurry(), as the worker's grace period does). Logs as the service does (JSON lines on stdout).
import { openRuntime, runUntilSignal } from "../../src/runtime.js";

const rt = await openRuntime();
await runUntilSignal(rt, async () => {
  let hurried = () => {};
  const hurry = new Promise<void>((resolve) => (hurried = resolve));
  const probe = {
    name: "probe",
    hurry: () => {
      rt.log.info("probe hurried");
      hurried();
    },
    stop: async () => {
      if (process.env.CRASH === "hang") await new Promise(() => {});
      if (process.env.CRASH === "slow") await hurry;
      // A second error while stopping (a bug's aftermath): logged, and the stop goes on.
      if (process.env.CRASH === "twice") void Promise.reject(new Error("second boom while stopping"));
      await new Promise((r) => setTimeout(r, 50));
      rt.log.info("probe stopped");
    },
  };
  setTimeout(() => {
    rt.log.info("probe running");
    if (process.env.CRASH === "slow") {
      // A stop by signal first: its grace period is under way when the bug strikes.
      process.kill(process.pid, "SIGTERM");
      setTimeout(() => void Promise.reject(new Error("boom while stopping")), 100);
      return;
    }
    if (process.env.CRASH === "throw") throw new Error("boom from a timer");
    void Promise.reject(new Error("boom from a promise"));
  }, 20);
  return [probe];
}, { crashStopMs: Number(process.env.CRASH_STOP_MS ?? 15_000) });
