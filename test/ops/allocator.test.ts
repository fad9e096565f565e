import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { GLIBC_MALLOC_TUNING, tunedAllocatorEnv } from "../../src/ops/allocator.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const MMAP = GLIBC_MALLOC_TUNING.MALLOC_MMAP_THRESHOLD_!;
const TRIM = GLIBC_MALLOC_TUNING.MALLOC_TRIM_THRESHOLD_!;
/** The environment without any malloc variable, as a user's shell would usually have it. */
const plainEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("MALLOC_")));
/** The child's output lines without their pid (the second word). */
const withoutPid = (stdout: string) => stdout.trim().split("\n").map((l) => l.split(" ").filter((_, i) => i !== 1).join(" "));

describe("tunedAllocatorEnv", () => {
  it("adds both glibc variables on Linux and keeps the rest of the environment", () => {
    expect(tunedAllocatorEnv({ A: "1" }, "linux")).toEqual({ A: "1", MALLOC_MMAP_THRESHOLD_: "33554432", MALLOC_TRIM_THRESHOLD_: "134217728" });
  });

  it("keeps a value the user set, adds only what is missing, and asks for nothing once both are set", () => {
    expect(tunedAllocatorEnv({ MALLOC_MMAP_THRESHOLD_: "1048576" }, "linux")).toEqual({ MALLOC_MMAP_THRESHOLD_: "1048576", MALLOC_TRIM_THRESHOLD_: TRIM });
    expect(tunedAllocatorEnv({ MALLOC_MMAP_THRESHOLD_: "1", MALLOC_TRIM_THRESHOLD_: "2" }, "linux")).toBeNull();
  });

  it("leaves other platforms alone (no glibc there)", () => {
    expect(tunedAllocatorEnv({}, "darwin")).toBeNull();
    expect(tunedAllocatorEnv({}, "win32")).toBeNull();
  });
});

describe.runIf(process.platform === "linux")("restarting under the tuned allocator", () => {
  it("replaces the process: same pid and arguments, now with the variables, and no second restart", () => {
    const run = spawnSync(process.execPath, ["--import", "tsx", "test/support/allocator-child.ts", "a", "b c"], { cwd: ROOT, env: plainEnv(), encoding: "utf8" });
    expect(run.status, run.stderr).toBe(0);
    const lines = run.stdout.trim().split("\n");
    const pid = lines[0]!.split(" ")[1];
    // The first process prints "before" and is replaced; the new one prints "before" (already tuned) and "after".
    expect(lines).toEqual([`before ${pid} - - a b c`, `before ${pid} ${MMAP} ${TRIM} a b c`, `after ${pid} ${MMAP} ${TRIM} a b c`]);
  });

  it("keeps the user's own settings and does not restart when both are set", () => {
    const env = { ...plainEnv(), MALLOC_MMAP_THRESHOLD_: "65536", MALLOC_TRIM_THRESHOLD_: "65536" };
    const run = spawnSync(process.execPath, ["--import", "tsx", "test/support/allocator-child.ts"], { cwd: ROOT, env, encoding: "utf8" });
    expect(run.status, run.stderr).toBe(0);
    expect(withoutPid(run.stdout)).toEqual(["before 65536 65536", "after 65536 65536"]);
  });

  it("goes on under glibc's defaults, with one line on stderr, where the restart fails", () => {
    const env = { ...plainEnv(), ALLOCATOR_TEST_EXEC_PATH: "/nonexistent/node" };
    const run = spawnSync(process.execPath, ["--import", "tsx", "test/support/allocator-child.ts"], { cwd: ROOT, env, encoding: "utf8" });
    expect(run.status, run.stderr).toBe(0);
    expect(withoutPid(run.stdout)).toEqual(["before - -", "after - -"]);
    expect(run.stderr).toMatch(/could not restart under the malloc settings \(.*\); going on with glibc's defaults/);
  });

  it("is what the launcher does before the CLI runs (bin/artdesc.js, built by npm run setup)", () => {
    expect(existsSync(`${ROOT}/dist/ops/allocator.js`), "dist/ is missing or old: run `npm run build` (npm run setup does)").toBe(true);
    const probe = "data:text/javascript,console.log('launched '+process.pid+' '+(process.env.MALLOC_MMAP_THRESHOLD_??'-'))";
    const run = spawnSync(process.execPath, ["--import", probe, "bin/artdesc.js", "--help"], { cwd: ROOT, env: plainEnv(), encoding: "utf8" });
    expect(run.status, run.stderr).toBe(0);
    const launched = run.stdout.split("\n").filter((l) => l.startsWith("launched "));
    const pid = launched[0]!.split(" ")[1];
    expect(launched).toEqual([`launched ${pid} -`, `launched ${pid} ${MMAP}`]);
    expect(run.stdout).toContain("Usage: artdesc");
  });
});
