import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { expect, it } from "vitest";
import { SYNC_PROCESS_NICE } from "../../src/sync/sync.js";

/** Every thread's nice value (field 19 of /proc/<pid>/task/<tid>/stat), after the process lowered its priority. */
const script = `
  import { readdirSync, readFileSync } from "node:fs";
  import { getPriority } from "node:os";
  import sharp from "sharp";
  import { runAtBackgroundPriority } from "./src/sync/sync.ts";
  // libuv's pool threads exist before the call (sharp runs on them), as they do in the CLI.
  await sharp({ create: { width: 64, height: 64, channels: 3, background: "#000" } }).png().toBuffer();
  runAtBackgroundPriority();
  // Work started afterwards runs at the lowered priority too.
  await Promise.all(Array.from({ length: 8 }, () => sharp({ create: { width: 512, height: 512, channels: 3, background: "#fff" } }).jpeg().toBuffer()));
  const nice = readdirSync("/proc/self/task").map((tid) => Number(readFileSync("/proc/self/task/" + tid + "/stat", "utf8").split(") ")[1].split(" ")[16]));
  console.log(JSON.stringify({ process: getPriority(), threads: nice }));`;

it.runIf(existsSync("/proc/self/task"))("runAtBackgroundPriority (the first thing artdesc sync does) lowers the process and every thread, sharp's included", () => {
  const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8" });
  const { process: niceness, threads } = JSON.parse(out.trim().split("\n").pop()!) as { process: number; threads: number[] };
  expect(niceness).toBe(SYNC_PROCESS_NICE);
  expect(threads.length).toBeGreaterThan(4);
  expect(new Set(threads)).toEqual(new Set([SYNC_PROCESS_NICE]));
});
