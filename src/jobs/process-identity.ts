import { readFileSync, readlinkSync } from "node:fs";
import { hostname } from "node:os";

/**
 * Who holds a lease, precisely enough to tell from the same host whether that process still runs:
 * a pid alone is not enough (pids are reused, and mean something only within one pid namespace
 * and one boot).
 */
export interface ProcessIdentity {
  hostname: string;
  pid: number;
  /** /proc/sys/kernel/random/boot_id: changes at every boot. Null where there is none (not Linux). */
  bootId: string | null;
  /** /proc/self/ns/pid, e.g. "pid:[4026531836]": a container has its own. Null where there is none. */
  pidNamespace: string | null;
  /** Field 22 of /proc/<pid>/stat: clock ticks after boot when the process started. Null where unknown. */
  startTicks: bigint | null;
}

/** What this host says now about a recorded holder. */
export interface Observation {
  hostname: string;
  bootId: string | null;
  pidNamespace: string | null;
  /**
   * The process that now has the recorded pid: null when there is none (or only a zombie, which
   * has exited), with its start time when that can be read.
   */
  atPid: { startTicks: bigint | null } | null;
}

/**
 * "dead": the holder ran here and has exited (its lease can be taken at once); "alive": it still
 * runs here; "elsewhere": it ran on another host or in another pid namespace (a container), where
 * we cannot look, so only its lease's expiry says it is gone.
 */
export type HolderVerdict = "dead" | "alive" | "elsewhere";

/** Decides whether a recorded holder still runs, from what this host observes now. Pure. */
export function judgeHolder(recorded: ProcessIdentity, seen: Observation): HolderVerdict {
  if (recorded.hostname !== seen.hostname || recorded.pidNamespace !== seen.pidNamespace) return "elsewhere";
  if (recorded.bootId !== null && seen.bootId !== null && recorded.bootId !== seen.bootId) return "dead";
  if (seen.atPid === null) return "dead";
  // The pid is in use: by the holder, unless the process there started at another time (a reused pid).
  if (recorded.startTicks !== null && seen.atPid.startTicks !== null && recorded.startTicks !== seen.atPid.startTicks) return "dead";
  return "alive";
}

/**
 * Reads the state (field 3) and start time (field 22) from the text of /proc/<pid>/stat. The
 * command name (field 2) is in parentheses and may itself hold spaces and parentheses, so the
 * fields are counted from the last ")". Null when the text is not in that shape.
 */
export function parseProcStat(text: string): { state: string; startTicks: bigint } | null {
  const end = text.lastIndexOf(")");
  if (end < 0) return null;
  const fields = text.slice(end + 1).trim().split(/\s+/);
  // fields[0] is field 3 (state), so field 22 is fields[19].
  const state = fields[0];
  const start = fields[19];
  if (!state || !start || !/^\d+$/.test(start)) return null;
  return { state, startTicks: BigInt(start) };
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

interface HostFacts {
  bootId: string | null;
  pidNamespace: string | null;
}

let host: HostFacts | null = null;
function hostFacts(): HostFacts {
  if (!host) {
    let pidNamespace: string | null = null;
    try {
      pidNamespace = readlinkSync("/proc/self/ns/pid");
    } catch {
      pidNamespace = null;
    }
    host = { bootId: readText("/proc/sys/kernel/random/boot_id")?.trim() || null, pidNamespace };
  }
  return host;
}

let self: ProcessIdentity | null = null;
/** This process, as a lease records it. */
export function thisProcess(): ProcessIdentity {
  if (!self) {
    const stat = readText("/proc/self/stat");
    self = { hostname: hostname(), pid: process.pid, ...hostFacts(), startTicks: stat ? (parseProcStat(stat)?.startTicks ?? null) : null };
  }
  return self;
}

/** The process now at `pid` on this host, as /proc shows it (or, without /proc, as signal 0 finds it). */
function processAt(pid: number): Observation["atPid"] {
  if (!Number.isSafeInteger(pid) || pid <= 0) return null;
  if (hostFacts().pidNamespace !== null) {
    const stat = readText(`/proc/${pid}/stat`);
    // Unreadable: no such process, or /proc hides other users' processes (hidepid): ask the kernel.
    if (stat === null) return signalZero(pid);
    const parsed = parseProcStat(stat);
    // Z (zombie) and X (dead): exited, waiting for its parent to collect its status.
    if (parsed && (parsed.state === "Z" || parsed.state === "X")) return null;
    return { startTicks: parsed?.startTicks ?? null };
  }
  return signalZero(pid);
}

/** Signal 0 checks that a pid exists without touching it: ESRCH means none, EPERM someone else's. */
function signalZero(pid: number): Observation["atPid"] {
  try {
    process.kill(pid, 0);
    return { startTicks: null };
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ESRCH" ? null : { startTicks: null };
  }
}

/** Looks at this host for the recorded holder: the I/O half of `judgeHolder`. */
export function observe(recorded: ProcessIdentity): Observation {
  const facts = hostFacts();
  const seen = { hostname: hostname(), ...facts, atPid: null };
  // Only a pid of this host and namespace can be looked up here.
  if (recorded.hostname !== seen.hostname || recorded.pidNamespace !== seen.pidNamespace) return { ...seen, atPid: { startTicks: null } };
  return { ...seen, atPid: processAt(recorded.pid) };
}

/**
 * `judgeHolder` for a recorded holder, looking at this host now. This very process is alive
 * whatever /proc says: in a pid namespace without its own /proc mount, /proc/<our pid> is another
 * process of the host, and a worker would judge its own claims dead and hand them back.
 */
export function holderVerdict(recorded: ProcessIdentity): HolderVerdict {
  if (sameProcess(recorded, thisProcess())) return "alive";
  return judgeHolder(recorded, observe(recorded));
}

function sameProcess(a: ProcessIdentity, b: ProcessIdentity): boolean {
  return a.hostname === b.hostname && a.pid === b.pid && a.bootId === b.bootId && a.pidNamespace === b.pidNamespace && a.startTicks === b.startTicks;
}
