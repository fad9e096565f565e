import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ARTDESC_CLI } from "../support/cli.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { makeArtwork } from "../support/factories.js";

let t: TestDb;
beforeAll(async () => {
  t = await createTestDb();
  await makeArtwork(t.db, { qid: "Q501", title: "Hound", description: "A hound sleeps by the fire." });
  await makeArtwork(t.db, { qid: "Q502", title: "Dog", description: "A dog and a hound run in a field." });
});
afterAll(() => t.close());

const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [ARTDESC_CLI, ...args], { encoding: "utf8", timeout: 60_000, env: { ...process.env, ...env } });

/** Exit codes of bad usage, which the README gives as 2 for every command. */
describe("bad usage exits 2", () => {
  it("an unknown command, with a suggestion; a missing argument; an unknown option; help is 0", () => {
    const typo = run(["strat"]);
    expect(typo.status).toBe(2);
    expect(typo.stderr).toContain("unknown command 'strat'");
    expect(typo.stderr).toContain("Did you mean start?");
    expect(run(["search"]).status).toBe(2);
    expect(run(["status", "--bogus"]).status).toBe(2);
    expect(run(["--help"]).status).toBe(0);
    expect(run(["status", "--help"]).status).toBe(0);
  }, 120_000);
});

describe("artdesc search takes its words as typed", () => {
  it("-word is an excluded word, not an unknown option; a mistyped --option is still refused", () => {
    const env = { DATABASE_URL: t.url };
    const excluded = run(["search", "hound", "-dog", "--mode", "text"], env);
    expect(excluded.status, excluded.stderr).toBe(0);
    expect(excluded.stdout).toContain("Q501");
    expect(excluded.stdout).not.toContain("Q502");
    const typo = run(["search", "hound", "--limti", "3"], env);
    expect(typo.status).toBe(2);
    expect(typo.stderr).toContain("unknown option '--limti'");
  }, 120_000);
});
