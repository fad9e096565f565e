import { spawn, spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { holderVerdict, judgeHolder, type Observation, parseProcStat, type ProcessIdentity, thisProcess } from "../../src/jobs/process-identity.js";

const holder: ProcessIdentity = { hostname: "box", pid: 4242, bootId: "boot-1", pidNamespace: "pid:[1]", startTicks: 1000n };
const here: Observation = { hostname: "box", bootId: "boot-1", pidNamespace: "pid:[1]", atPid: { startTicks: 1000n } };

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
  it("dead: the host rebooted since, whatever now runs at that pid", () => {
    expect(judgeHolder(holder, { ...here, bootId: "boot-2" })).toBe("dead");
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
