import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  holderVerdict,
  hostColumn,
  judgeHolder,
  machineId,
  type Observation,
  parseHostColumn,
  parseProcStat,
  type ProcessIdentity,
  thisProcess,
} from "../../src/jobs/process-identity.js";

const MACHINE_A = "0123456789abcdef0123456789abcdef";
const MACHINE_B = "fedcba9876543210fedcba9876543210";
const holder: ProcessIdentity = { hostname: "box", machineId: MACHINE_A, pid: 4242, bootId: "boot-1", pidNamespace: "pid:[1]", startTicks: 1000n };
const here: Observation = { hostname: "box", machineId: MACHINE_A, bootId: "boot-1", pidNamespace: "pid:[1]", atPid: { startTicks: 1000n } };

describe("judgeHolder", () => {
  it("alive: same host, boot and namespace, and the pid still runs the process that started then", () => {
    expect(judgeHolder(holder, here)).toBe("alive");
  });
  it("dead: the pid is gone", () => {
    expect(judgeHolder(holder, { ...here, atPid: null })).toBe("dead");
  });
  it("dead: the pid now belongs to a process that started at another time (a reused pid)", () => {
    expect(judgeHolder(holder, { ...here, atPid: { startTicks: 999_999n } })).toBe("dead");
  });
  it("dead: the host rebooted since (same machine id, another boot id), whatever now runs at that pid", () => {
    expect(judgeHolder(holder, { ...here, bootId: "boot-2" })).toBe("dead");
    expect(judgeHolder(holder, { ...here, bootId: "boot-2", atPid: { startTicks: 1000n } })).toBe("dead");
  });
  it("elsewhere: another machine with the same host name and the root pid namespace's inode (its boot id differs)", () => {
    // Containers on two hosts given one host name, sharing their host's pid namespace: 4026531836 on every Linux host.
    const root = "pid:[4026531836]";
    const live = { ...holder, pidNamespace: root };
    const seen = { ...here, pidNamespace: root, machineId: MACHINE_B, bootId: "boot-of-b", atPid: null };
    expect(judgeHolder(live, seen)).toBe("elsewhere");
    // Without a boot id (no /proc), another machine id alone says so too.
    expect(judgeHolder({ ...live, bootId: null }, { ...seen, bootId: null })).toBe("elsewhere");
  });
  it("a holder recorded before machine ids (the old format): a boot id that differs proves nothing, an equal one still lets the pid be judged", () => {
    const old = { ...holder, machineId: null };
    expect(judgeHolder(old, { ...here, bootId: "boot-2", atPid: null })).toBe("elsewhere");
    expect(judgeHolder(old, { ...here, atPid: null })).toBe("dead");
    expect(judgeHolder(old, here)).toBe("alive");
  });
  it("one kernel's boot (equal boot ids) is one machine whatever the machine ids say: the pid is judged", () => {
    expect(judgeHolder({ ...holder, machineId: MACHINE_B }, { ...here, atPid: null })).toBe("dead");
    expect(judgeHolder({ ...holder, machineId: MACHINE_B }, here)).toBe("alive");
  });
  it("elsewhere: another host, or another pid namespace (a container), whatever the pid shows", () => {
    expect(judgeHolder(holder, { ...here, hostname: "other", atPid: null })).toBe("elsewhere");
    expect(judgeHolder(holder, { ...here, pidNamespace: "pid:[2]", atPid: null })).toBe("elsewhere");
    expect(judgeHolder({ ...holder, pidNamespace: null }, here)).toBe("elsewhere");
  });
  it("alive when a start time or boot id is unknown on either side and the pid exists (no proof of death)", () => {
    expect(judgeHolder({ ...holder, startTicks: null }, { ...here, atPid: { startTicks: 5n } })).toBe("alive");
    expect(judgeHolder(holder, { ...here, atPid: { startTicks: null } })).toBe("alive");
    expect(judgeHolder({ ...holder, bootId: null }, { ...here, bootId: "boot-2" })).toBe("alive");
  });
});

describe("the lease row's host column", () => {
  it("holds the host name and the machine id; a column written before machine ids reads as the name alone", () => {
    expect(hostColumn(holder)).toBe(`box#${MACHINE_A}`);
    expect(parseHostColumn(`box#${MACHINE_A}`)).toEqual({ hostname: "box", machineId: MACHINE_A });
    expect(parseHostColumn("box")).toEqual({ hostname: "box", machineId: null });
    expect(hostColumn({ hostname: "box", machineId: null })).toBe("box");
    // A "#" that is not followed by a machine id is part of the name.
    expect(parseHostColumn("odd#name")).toEqual({ hostname: "odd#name", machineId: null });
  });
});

describe("machineId", () => {
  const dir = mkdtempSync(join(tmpdir(), "artdesc-machine-id-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  it("reads /etc/machine-id's form; without one, draws an id once and keeps it in the temporary folder", () => {
    const etc = join(dir, "machine-id");
    writeFileSync(etc, `${MACHINE_A.toUpperCase()}\n`);
    expect(machineId([etc], join(dir, "kept-1"))).toBe(MACHINE_A);
    // An image built without one ships an empty file, or systemd's "uninitialized".
    writeFileSync(etc, "uninitialized\n");
    const kept = join(dir, "kept-2");
    const drawn = machineId([etc, join(dir, "absent")], kept);
    expect(drawn).toMatch(/^[0-9a-f]{32}$/);
    expect(readFileSync(kept, "utf8").trim()).toBe(drawn);
    expect(machineId([], kept)).toBe(drawn);
    // A kept file that cannot be read back as an id: one for this process alone.
    expect(machineId([], dir)).toMatch(/^[0-9a-f]{32}$/);
  });
});

describe("parseProcStat", () => {
  // Field 22 (start time) after a command name with spaces and parentheses in it.
  const line = (comm: string, state = "S") =>
    `123 (${comm}) ${state} 1 123 123 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 11 0 987654 12345678 900 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n`;
  it("reads the state and start time, counting fields from the last parenthesis", () => {
    expect(parseProcStat(line("node"))).toEqual({ state: "S", startTicks: 987654n });
    expect(parseProcStat(line("a) b (c) d", "Z"))).toEqual({ state: "Z", startTicks: 987654n });
  });
  it("is null for text of another shape", () => {
    expect(parseProcStat("")).toBeNull();
    expect(parseProcStat("123 (x) S 1 2")).toBeNull();
  });
});

describe("on this host", () => {
  it("this process is alive; a pid that exited is dead; a live pid with another start time is dead", async () => {
    const me = thisProcess();
    expect(me.pid).toBe(process.pid);
    expect(holderVerdict(me)).toBe("alive");
    if (me.startTicks === null) return; // no /proc: the rest needs start times

    const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    const pid = child.pid!;
    const live = { ...me, pid };
    expect(holderVerdict({ ...live, startTicks: null })).toBe("alive");
    expect(holderVerdict({ ...me, startTicks: me.startTicks + 1n })).toBe("dead");
    child.kill("SIGKILL");
    await exited;
    expect(holderVerdict(live)).toBe("dead");
    expect(holderVerdict({ ...me, hostname: `not-${me.hostname}` })).toBe("elsewhere");
    // This host after a reboot judges its earlier boot's holders dead; another machine's are not its to judge.
    if (me.bootId === null) return;
    expect(holderVerdict({ ...live, bootId: `${me.bootId}-before` })).toBe("dead");
    expect(holderVerdict({ ...live, bootId: `${me.bootId}-before`, machineId: MACHINE_B === me.machineId ? MACHINE_A : MACHINE_B })).toBe("elsewhere");
  });
});

describe("in a pid namespace without its own /proc", () => {
  // There /proc/<our pid> is some other process of the host: a worker would judge its own claims dead.
  const unshare = spawnSync("unshare", ["--pid", "--fork", "true"]).status === 0;
  it.skipIf(!unshare)("this process still judges itself alive", () => {
    const script = 'import { holderVerdict, thisProcess } from "./src/jobs/process-identity.ts"; const me = thisProcess(); console.log(JSON.stringify({ pid: me.pid, verdict: holderVerdict(me) }));';
    const r = spawnSync("unshare", ["--pid", "--fork", process.execPath, "--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ pid: 1, verdict: "alive" });
  });
});
