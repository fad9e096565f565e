import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "artdesc-crash-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs test/support/crash-child.ts (a service with one component) failing as `crash` says; its exit and JSON log lines. */
function runChild(crash: string, extraEnv: Record<string, string> = {}) {
  const run = spawnSync(process.execPath, ["--import", "tsx", "test/support/crash-child.ts"], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: `file:${join(dir, `${crash}.db`)}`, LOG_LEVEL: "info", CRASH: crash, ...extraEnv },
    encoding: "utf8",
    timeout: 60_000,
  });
  const lines = run.stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as { level: number; msg: string; err?: { message: string; stack: string } });
  return { status: run.status, stderr: run.stderr, lines, msgs: lines.map((l) => l.msg) };
}

describe("an error nothing caught, in a running service", () => {
  it("a rejected promise nobody handles: logged at fatal with its stack, the components stop, exit code 1", () => {
    const r = runChild("rejection");
    expect(r.status, r.stderr).toBe(1);
    const fatal = r.lines.find((l) => l.level === 60);
    expect(fatal?.msg).toMatch(/^unhandled promise rejection: a bug/);
    expect(fatal?.err?.message).toBe("boom from a promise");
    expect(fatal?.err?.stack).toContain("crash-child.ts");
    expect(r.msgs.indexOf("probe stopped")).toBeGreaterThan(r.msgs.indexOf(fatal!.msg));
    // Node's own report (stderr, outside the log) is not printed: the log has it.
    expect(r.stderr).not.toContain("boom from a promise");
  });

  it("an exception thrown from a callback: the same", () => {
    const r = runChild("throw");
    expect(r.status, r.stderr).toBe(1);
    const fatal = r.lines.find((l) => l.level === 60);
    expect(fatal?.msg).toMatch(/^uncaught exception: a bug/);
    expect(fatal?.err?.message).toBe("boom from a timer");
    expect(r.msgs).toContain("probe stopped");
  });

  it("a second error while stopping is logged too, and the stop still finishes", () => {
    const r = runChild("twice");
    expect(r.status, r.stderr).toBe(1);
    const fatal = r.lines.filter((l) => l.level === 60).map((l) => l.err?.message);
    expect(fatal).toEqual(["boom from a promise", "second boom while stopping"]);
    expect(r.msgs).toContain("probe stopped");
    expect(r.msgs.some((m) => m.includes("exiting now"))).toBe(false);
  });

  it("a stop waiting out a grace period is hurried: the components hand their work back now, within the deadline", () => {
    const r = runChild("slow", { CRASH_STOP_MS: "20000" });
    expect(r.status, r.stderr).toBe(1);
    expect(r.lines.find((l) => l.level === 60)?.err?.message).toBe("boom while stopping");
    expect(r.msgs.indexOf("probe hurried")).toBeGreaterThan(-1);
    expect(r.msgs.indexOf("probe stopped")).toBeGreaterThan(r.msgs.indexOf("probe hurried"));
  });

  it("a stop that hangs after the error does not keep the broken process alive", () => {
    const started = Date.now();
    const r = runChild("hang", { CRASH_STOP_MS: "300" });
    expect(r.status, r.stderr).toBe(1);
    expect(r.lines.find((l) => l.level === 60)?.err?.message).toBe("boom from a promise");
    expect(r.msgs).not.toContain("probe stopped");
    expect(Date.now() - started).toBeLessThan(30_000);
  });
});
