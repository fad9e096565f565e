import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** One line of --trace-gc-nvp: the isolate (thread) it is of, its kind ("s" scavenge, "mc" mark-compact, …), pause and promoted bytes. */
export interface GcEvent {
  isolate: string;
  kind: string;
  pauseMs: number;
  promoted: number;
}

/** The collections in --trace-gc-nvp output (other lines are skipped). */
export function parseGcTrace(text: string): GcEvent[] {
  const events: GcEvent[] = [];
  for (const line of text.split("\n")) {
    const kind = /\bgc=(\w+)/.exec(line)?.[1];
    if (!kind) continue;
    events.push({ isolate: /^\[\d+:(0x[0-9a-f]+)\]/.exec(line)?.[1] ?? "", kind, pauseMs: Number(/\bpause=([\d.]+)/.exec(line)?.[1] ?? 0), promoted: Number(/\bpromoted=(\d+)/.exec(line)?.[1] ?? 0) });
  }
  return events;
}

const START = "MEASURE-START";
const END = "MEASURE-END";

/**
 * The child's side of promotedPerCall: `warmUp` calls, then the `calls` it was asked for (its
 * second argument) between the two markers.
 */
export async function measureCalls(call: (i: number) => Promise<unknown>, warmUp: number): Promise<void> {
  for (let i = 0; i < warmUp; i++) await call(i);
  console.error(START);
  for (let i = 0; i < Number(process.argv[3]); i++) await call(i);
  console.error(END);
}

/**
 * Runs a child script (under tsx, --trace-gc-nvp, a 1 MB young generation so that it scavenges
 * often) that makes `calls` calls through measureCalls, and returns the main thread's scavenges
 * during them and the bytes they promoted per call. The child gets a temporary folder and `calls`
 * as its arguments.
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
    // The main thread is the isolate that collected first, while the child was loading.
    const mainIsolate = parseGcTrace(trace)[0]?.isolate;
    const scavenges = parseGcTrace(trace.slice(trace.indexOf(START), trace.indexOf(END))).filter((e) => e.isolate === mainIsolate && e.kind === "s");
    const promoted = scavenges.reduce((sum, e) => sum + e.promoted, 0);
    return { scavenges: scavenges.length, bytesPerCall: promoted / calls };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
