import { randomBytes } from "node:crypto";
import { readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Who holds a lease, precisely enough to tell from the same host whether that process still runs:
 * a pid alone is not enough (pids are reused, and mean something only within one pid namespace
 * and one boot), and neither is a host name with a pid namespace (two machines may share a name,
 * and every host's root pid namespace has the same inode).
 */
export interface ProcessIdentity {
  hostname: string;
  /**
   * The machine (machineId()): tells a reboot of this machine (its boot id changed) from another
   * machine with the same host name. Null in a holder recorded before leases had it.
   */
  machineId: string | null;
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
  machineId: string | null;
  bootId: string | null;
  pidNamespace: string | null;
  /**
   * The process that now has the recorded pid: null when there is none (or only a zombie, which
   * has exited), with its start time when that can be read.
   */
  atPid: { startTicks: bigint | null } | null;
}

/**
 * "dead": the holder ran here and has exited, or ran on this machine before it rebooted (its lease
 * can be taken at once); "alive": it still runs here; "elsewhere": it ran on another host or in
 * another pid namespace (a container), or on a machine this host cannot tell from itself, where we
 * cannot look, so only its lease's expiry says it is gone.
 */
export type HolderVerdict = "dead" | "alive" | "elsewhere";

/**
 * Where a recorded holder ran, seen from this host: "here" (this kernel and pid namespace, so its
 * pid can be looked up), "rebooted" (this machine, an earlier boot) or "elsewhere". Equal boot ids
 * are one kernel's boot (each boot draws a random one), whatever the machine ids say. Different boot
 * ids are a reboot only when both machine ids are known and equal: two machines may share a host
 * name and the root pid namespace's inode, and a holder recorded without a machine id cannot tell.
 */
function placeOf(recorded: ProcessIdentity, seen: Omit<Observation, "atPid">): "here" | "rebooted" | "elsewhere" {
  if (recorded.hostname !== seen.hostname || recorded.pidNamespace !== seen.pidNamespace) return "elsewhere";
  const sameMachine = recorded.machineId !== null && recorded.machineId === seen.machineId;
  if (recorded.bootId !== null && seen.bootId !== null) {
    if (recorded.bootId === seen.bootId) return "here";
    return sameMachine ? "rebooted" : "elsewhere";
  }
  // No boot id on one side (no /proc): the machine ids, where both are known, are all there is to go on.
  if (recorded.machineId !== null && seen.machineId !== null && !sameMachine) return "elsewhere";
  return "here";
}

/** Decides whether a recorded holder still runs, from what this host observes now. Pure. */
export function judgeHolder(recorded: ProcessIdentity, seen: Observation): HolderVerdict {
  const place = placeOf(recorded, seen);
  if (place !== "here") return place === "rebooted" ? "dead" : "elsewhere";
  if (seen.atPid === null) return "dead";
  // The pid is in use: by the holder, unless the process there started at another time (a reused pid).
  if (recorded.startTicks !== null && seen.atPid.startTicks !== null && recorded.startTicks !== seen.atPid.startTicks) return "dead";
  return "alive";
}

/** 128 bits in lowercase hex: the form of /etc/machine-id (machine-id(5)), and of the id this module draws. */
const MACHINE_ID = /^[0-9a-f]{32}$/;

/**
 * A lease row's `hostname` column holds the host name and the machine id, "name#machine-id", so
 * rows keep their columns (no migration) and a version that predates machine ids, reading such a
 * row, sees another host name: "elsewhere", never a false "dead". A column without a machine id
 * (a row written before) reads as that host name with none.
 */
export function hostColumn(p: Pick<ProcessIdentity, "hostname" | "machineId">): string {
  return p.machineId === null ? p.hostname : `${p.hostname}#${p.machineId}`;
}

export function parseHostColumn(column: string): Pick<ProcessIdentity, "hostname" | "machineId"> {
  const at = column.lastIndexOf("#");
  const machineId = at >= 0 ? column.slice(at + 1) : "";
  return MACHINE_ID.test(machineId) ? { hostname: column.slice(0, at), machineId } : { hostname: column, machineId: null };
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

/** Where systemd and D-Bus keep the machine id (machine-id(5)). */
const MACHINE_ID_FILES = ["/etc/machine-id", "/var/lib/dbus/machine-id"];

/**
 * This machine's id: /etc/machine-id (or D-Bus's copy) when it holds one; else an id drawn once and
 * kept in `keptIn`, a file of this machine's temporary folder. That file is never on another
 * machine (a data folder may be a shared volume, and two machines reading one id would judge each
 * other's boots as reboots); where it is wiped at boot, a reboot reads as another machine, which
 * only means waiting for the lease to expire. An empty or "uninitialized" file (an image built
 * without one) counts as none. If the file cannot be kept either, an id for this process alone.
 */
export function machineId(files: readonly string[] = MACHINE_ID_FILES, keptIn = join(tmpdir(), "artdesc-machine-id")): string {
  for (const file of files) {
    const id = readText(file)?.trim().toLowerCase();
    if (id && MACHINE_ID.test(id)) return id;
  }
  const drawn = randomBytes(16).toString("hex");
  try {
    // "wx": the first process to draw one keeps it; the others read it.
    writeFileSync(keptIn, `${drawn}\n`, { flag: "wx", mode: 0o644 });
    return drawn;
  } catch {
    const kept = readText(keptIn)?.trim();
    return kept && MACHINE_ID.test(kept) ? kept : drawn;
  }
}

interface HostFacts {
  machineId: string;
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
    host = { machineId: machineId(), bootId: readText("/proc/sys/kernel/random/boot_id")?.trim() || null, pidNamespace };
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
  const seen = { hostname: hostname(), ...hostFacts() };
  // Only a pid of this kernel's boot and this namespace can be looked up here.
  if (placeOf(recorded, seen) !== "here") return { ...seen, atPid: { startTicks: null } };
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
  return (
    a.hostname === b.hostname &&
    a.machineId === b.machineId &&
    a.pid === b.pid &&
    a.bootId === b.bootId &&
    a.pidNamespace === b.pidNamespace &&
    a.startTicks === b.startTicks
  );
}
