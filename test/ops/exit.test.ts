import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Worker } from "node:worker_threads";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { refuseNativeCalls, startModuleThread, threadsInNativeCalls } from "../../src/describe/module-thread.js";
import { writeSlowMatmulModel } from "../support/slow-matmul.js";

/**
 * Node cannot stop a thread inside onnxruntime: process.exit() waits for the call to return, then
 * aborts the process. The model threads count their calls in progress (src/describe/thread-data.ts),
 * and exitProcess (src/ops/exit.ts) waits for them, within limits, then exits with its code, or
 * ends the process with SIGKILL instead of waiting for ever.
 */

let dir: string;
let model: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "artdesc-exit-"));
  model = join(dir, "slow.onnx");
  writeSlowMatmulModel(model);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const next = (thread: Worker, want: (m: string) => boolean) =>
  new Promise<string>((resolve, reject) => {
    const on = (m: string) => want(m) && (thread.off("message", on), resolve(m));
    thread.on("message", on).once("error", reject);
  });

/** Rows for a run of about `ms` on this machine: a probe run's time, scaled. */
async function rowsFor(thread: Worker, ms: number): Promise<number> {
  const started = performance.now();
  thread.postMessage(64);
  await next(thread, (m) => m === "done");
  return Math.max(64, Math.round((64 * ms) / Math.max(1, performance.now() - started)));
}

describe("model threads' calls into onnxruntime", () => {
  it("are counted while they run, and refused once the process is exiting", async () => {
    const thread = startModuleThread(new URL("../support/native-call-thread.ts", import.meta.url), { model });
    try {
      await next(thread, (m) => m === "ready");
      expect(threadsInNativeCalls()).toBe(0);
      const rows = await rowsFor(thread, 1_500);
      thread.postMessage(rows);
      await next(thread, (m) => m === "started");
      expect(threadsInNativeCalls()).toBe(1);
      await next(thread, (m) => m === "done");
      expect(threadsInNativeCalls()).toBe(0);
      refuseNativeCalls();
      thread.postMessage(64);
      expect(await next(thread, (m) => m.startsWith("refused"))).toBe("refused: ProcessExitingError");
      expect(threadsInNativeCalls()).toBe(0);
    } finally {
      await thread.terminate();
    }
    expect(threadsInNativeCalls()).toBe(0);
  }, 60_000);
});

describe("exiting while a model thread runs", () => {
  const child = (rows: number, how: string) => {
    const started = Date.now();
    // No core file from the abort (ulimit -c 0): it would land in the working tree where cores are on.
    const run = spawnSync("bash", ["-c", 'ulimit -c 0 && exec "$0" --import tsx test/support/exit-child.ts "$@"', process.execPath, model, String(rows), how], {
      encoding: "utf8",
      timeout: 120_000,
    });
    return { ...run, ms: Date.now() - started };
  };
  let rows = 0;
  beforeAll(async () => {
    const thread = startModuleThread(new URL("../support/native-call-thread.ts", import.meta.url), { model });
    await next(thread, (m) => m === "ready");
    rows = await rowsFor(thread, 4_000);
    await thread.terminate();
  }, 60_000);

  it("process.exit() alone aborts the process once the run returns (what exitProcess avoids)", () => {
    const run = child(rows, "plain");
    expect(run.stdout).toContain("exiting");
    expect(run.signal).toBe("SIGABRT");
    expect(run.stderr).toContain("Napi::Error");
  }, 130_000);

  it("exitProcess waits for the run to return and exits with its code", () => {
    const run = child(rows, "60000");
    expect(run.stdout).toContain("exiting");
    expect(run.signal).toBeNull();
    expect(run.status).toBe(3);
    expect(run.stderr).not.toContain("Napi::Error");
  }, 130_000);

  it("exitProcess gives up waiting after its limit: SIGKILL, logged, without waiting for the run", () => {
    const run = child(rows * 10, "200");
    expect(run.signal).toBe("SIGKILL");
    expect(run.stdout).toContain("a model thread is still inside onnxruntime");
    expect(run.stdout).toContain('"exitCode":3');
    // A run of about 40 s here: the process did not wait for it.
    expect(run.ms).toBeLessThan(30_000);
  }, 130_000);
});
