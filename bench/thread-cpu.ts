import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

/**
 * CPU time of a process tree's threads, from /proc (Linux only): each process's main thread, and
 * its other threads together (worker threads such as the embedding thread, V8's garbage-collector
 * helpers, libuv's pool; Node names none of them). bench:search divides it by the requests served.
 */
export interface ThreadCpu {
  /** Milliseconds of CPU, user plus system. */
  main: number;
  other: number;
}

const TICKS_PER_S = (() => {
  const r = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  return Number(r.stdout?.trim()) || 100;
})();

/** The fields of /proc/…/stat after the command's closing parenthesis (the command may hold spaces). */
const statFields = (path: string) => {
  const stat = readFileSync(path, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
};

/** CPU used so far by `root` and every process below it; null where /proc cannot be read. */
export function threadCpu(root: number): ThreadCpu | null {
  if (process.platform !== "linux") return null;
  try {
    const parents = new Map<number, number>();
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        parents.set(Number(entry), Number(statFields(`/proc/${entry}/stat`)[1]));
      } catch {
        // The process ended between the listing and the read.
      }
    }
    const tree = [root];
    for (let i = 0; i < tree.length; i++) for (const [pid, parent] of parents) if (parent === tree[i]) tree.push(pid);
    const total: ThreadCpu = { main: 0, other: 0 };
    for (const pid of tree) {
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        try {
          const f = statFields(`/proc/${pid}/task/${tid}/stat`);
          // utime and stime: fields 14 and 15 of stat, 12 and 13 after the command.
          const ms = ((Number(f[11]) + Number(f[12])) * 1000) / TICKS_PER_S;
          if (tid === String(pid)) total.main += ms;
          else total.other += ms;
        } catch {
          // The thread ended between the listing and the read.
        }
      }
    }
    return total;
  } catch {
    return null;
  }
}

/** "API CPU per request: main threads X ms, other threads Y ms" between two readings, or "" without /proc. */
export function cpuPerRequest(before: ThreadCpu | null, after: ThreadCpu | null, requests: number): string {
  if (!before || !after || requests < 1) return "";
  const per = (ms: number) => (ms / requests).toFixed(2);
  return `; API CPU per request: main threads ${per(after.main - before.main)} ms, other threads ${per(after.other - before.other)} ms`;
}
