import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { ARTDESC_CLI } from "../support/cli.js";

/** Exit codes of bad usage, which the README gives as 2 for every command. */
describe("bad usage exits 2", () => {
  const run = (...args: string[]) => spawnSync(process.execPath, [ARTDESC_CLI, ...args], { encoding: "utf8", timeout: 60_000 });

  it("an unknown command, with a suggestion; a missing argument; an unknown option; help is 0", () => {
    const typo = run("strat");
    expect(typo.status).toBe(2);
    expect(typo.stderr).toContain("unknown command 'strat'");
    expect(typo.stderr).toContain("Did you mean start?");
    expect(run("search").status).toBe(2);
    expect(run("status", "--bogus").status).toBe(2);
    expect(run("--help").status).toBe(0);
    expect(run("status", "--help").status).toBe(0);
  }, 120_000);
});
