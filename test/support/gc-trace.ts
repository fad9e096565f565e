import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/**
 * Runs a child script (under tsx, --trace-gc-nvp, a 1 MB young generation so that it scavenges
 * often) that prints MEASURE-START and MEASURE-END around `calls` calls, and returns the main
 * thread's scavenges between the markers and the bytes they promoted per call. The child gets a
 * temporary folder and `calls` as its arguments.
 */
export function promotedPerCall(script: string, calls: number): { scavenges: number; bytesPerCall: number } {
  const dir = mkdtempSync(join(tmpdir(), "artdesc-gc-"));
  try {
    // V8's trace and the child's markers into one file, in the order they were written.
    const log = join(dir, "trace.log");
    const fd = openSync(log, "w");
    const run = spawnSync(process.execPath, ["--trace-gc-nvp", "--max-semi-space-size=1", "--import", "tsx", script, dir, String(calls)], { cwd: ROOT, stdio: ["ignore", fd, fd] });
    closeSync(fd);
    const trace = readFileSync(log, "utf8");
    if (run.status !== 0) throw new Error(`${script} exited with ${run.status}: ${trace.slice(-2000)}`);
    const measured = trace.slice(trace.indexOf("MEASURE-START"), trace.indexOf("MEASURE-END"));
    const scavenges = measured.split("\n").filter((line) => /\bgc=s\b/.test(line));
    const promoted = scavenges.reduce((sum, line) => sum + Number(/\bpromoted=(\d+)/.exec(line)?.[1] ?? 0), 0);
    return { scavenges: scavenges.length, bytesPerCall: promoted / calls };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
