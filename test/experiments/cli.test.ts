import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExperimentReport } from "../../src/experiments/report.js";
import { runCli } from "../support/cli.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { addDescription, makeArtwork, makeGoya } from "../support/factories.js";
import { tinyModelEnv } from "../support/processes.js";

/**
 * `artdesc experiment` as a user runs it, in child processes, with the real engine and the tiny
 * synthetic model: two arms on a sample of four works, killed (SIGKILL) in the middle, stopped
 * (Ctrl-C) in the middle of `experiment wait`, and waited for again until the report comes; the
 * current descriptions never move. Bad arms are refused with exit 2 and create nothing.
 */

let t: TestDb;
let model: ReturnType<typeof tinyModelEnv>;
let env: Record<string, string>;
const currentBefore = new Map<number, number | null>();

async function picture(file: string, seed: number) {
  const w = 64 + seed * 16;
  const data = Buffer.alloc(w * 64 * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * (5 + seed) + seed * 37) % 251;
  mkdirSync(dirname(file), { recursive: true });
  await sharp(data, { raw: { width: w, height: 64, channels: 3 } }).jpeg().toFile(file);
}

beforeAll(async () => {
  t = await createTestDb();
  model = tinyModelEnv();
  env = {
    ...model.env,
    DATABASE_URL: t.url,
    IMAGE_DIR: join(t.dir, "images"),
    LOG_LEVEL: "warn",
    WORKER_BATCH: "1",
    DESCRIBE_TARGET_WORDS: "0",
    DESCRIBE_MAX_NEW_TOKENS: "48",
    HEARTBEAT_INTERVAL_S: "0.2",
    HEARTBEAT_STALE_S: "3",
    SHUTDOWN_GRACE_S: "1",
  };
  const goya = await makeGoya(t.db);
  for (let i = 0; i < 5; i++) {
    const a = await makeArtwork(t.db, { creators: [{ id: goya.id }], links: [{ property: "P180", qid: "Q19707", label: "donkey" }] });
    const image = await t.db.image.findFirstOrThrow({ where: { artworkId: a.id } });
    await picture(join(env.IMAGE_DIR!, image.localPath!), i);
    if (i < 2) await addDescription(t.db, a.id, `A donkey stands in a field, number ${i}.`);
    if (i === 2) await addDescription(t.db, a.id, "Written by a curator.", "HUMAN");
  }
  for (const a of await t.db.artwork.findMany()) currentBefore.set(a.id, a.currentDescriptionId);
}, 60_000);
afterAll(async () => {
  await t?.close();
  model?.remove();
});

const jobCount = (experimentId: number, status: "SUCCEEDED" | "RUNNING" | "QUEUED" | "FAILED") => t.db.job.count({ where: { experimentId, status } });

async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 90_000) {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("artdesc experiment, end to end with the tiny model", { timeout: 240_000 }, () => {
  it("runs two arms, survives a kill and a Ctrl-C, and prints the report; current texts never move", async () => {
    // 1. Create and wait: no worker runs, so the command describes in its own process. Killed after the first text.
    const first = runCli(["experiment", "--sample", "4", "--seed", "3", "--name", "greedy vs beam", "--a", "numBeams=1", "--b", "numBeams=2,minNewTokens=8"], env);
    const queued = await first.waitFor(/^experiment \d+: 4 works × 2 arms/, 60_000);
    const id = Number(/^experiment (\d+)/.exec(queued)![1]);
    await first.waitFor(/describing in this process \(this experiment's jobs only\): no worker is running/);
    await until("a first experiment text", async () => (await jobCount(id, "SUCCEEDED")) >= 1);
    first.child.kill("SIGKILL");
    await first.exit;
    const afterKill = await jobCount(id, "SUCCEEDED");
    expect(afterKill).toBeLessThan(8);

    // 2. The report says how far it got (exit 1: not finished).
    const partial = runCli(["experiment", "report", String(id)], env);
    expect((await partial.exit).code).toBe(1);
    expect(partial.output()).toMatch(/^Running: a \d\/4, b \d\/4 \(\d running, \d queued\)\. /m);

    // 3. Wait again, and stop it with Ctrl-C after one more text: its running job goes back to the queue.
    const second = runCli(["experiment", "wait", String(id)], env);
    await second.waitFor(/describing in this process/, 60_000);
    await until("one more text", async () => (await jobCount(id, "SUCCEEDED")) > afterKill);
    second.child.kill("SIGINT");
    expect((await second.exit).code).toBe(130);
    expect(second.output()).toContain(`stopped waiting; the jobs stay queued. Carry on with: artdesc experiment wait ${id}`);
    expect(await jobCount(id, "FAILED")).toBe(0);
    const done = await jobCount(id, "SUCCEEDED");
    // The killed process's claim, if it held one when killed, and the interrupted one are both back in the queue.
    expect(await jobCount(id, "RUNNING")).toBe(0);
    expect(done).toBeLessThan(8);

    // 4. Wait once more until the end: the report comes on stdout.
    const third = runCli(["experiment", "wait", String(id)], env);
    const exit = await third.exit;
    const out = third.output();
    expect({ code: exit.code, out: out.slice(-3000) }).toMatchObject({ code: 0 });
    expect(out).toContain(`# Experiment ${id}: greedy vs beam`);
    expect(out).toContain("Finished: a 4/4, b 4/4. Sample: 4 works, seed 3");
    expect(out).toContain("| parameters | `numBeams=1` | `minNewTokens=8,numBeams=2` |");
    expect(out).toContain("| as run | 1 beam, 48 tokens | 2 beams, 48 tokens |");
    expect(out).toMatch(/\*\*b against a\*\* on the 4 works both described:/);
    expect(out).toMatch(/^experiment \d+: a 4\/4, b 4\/4; finished$/m);

    // 5. The same report as JSON, and the texts behind it.
    const json = runCli(["experiment", "report", String(id), "--json"], env);
    expect((await json.exit).code).toBe(0);
    const report = JSON.parse(json.output()) as ExperimentReport;
    expect(report.state).toBe("FINISHED");
    expect(report.arms.map((a) => [a.name, a.described, a.jobs.failed])).toEqual([["a", 4, 0], ["b", 4, 0]]);
    for (const a of report.arms) {
      expect(a.secondsPerImage!.mean).toBeGreaterThan(0);
      expect(a.generatedTokens!.mean).toBeGreaterThan(0);
      expect(a.assessed).toBe(4);
      // Every sampled work depicts a donkey (P180): each text is judged on it.
      expect(a.depictsRecall.judged).toBe(4);
    }
    expect(report.arms[1]!.generatedTokens!.mean).toBeGreaterThanOrEqual(8);
    const texts = await t.db.description.findMany({ where: { experimentId: id } });
    expect(texts).toHaveLength(8);
    expect(new Set(texts.map((d) => `${d.artworkId}:${d.experimentArm}`)).size).toBe(8);
    expect(texts.filter((d) => d.experimentArm === "a").every((d) => d.numBeams === 1 && d.decoding === "greedy")).toBe(true);
    expect(texts.filter((d) => d.experimentArm === "b").every((d) => d.numBeams === 2 && d.minNewTokens === 8)).toBe(true);
    for (const a of await t.db.artwork.findMany()) expect(a.currentDescriptionId).toBe(currentBefore.get(a.id));
    // The killed process's heartbeat is the only one left behind; the clean stops removed theirs.
    expect(await t.db.heartbeat.count({ where: { role: "experiment" } })).toBeLessThanOrEqual(1);

    // 6. list and cancel.
    const list = runCli(["experiment", "list"], env);
    expect((await list.exit).code).toBe(0);
    expect(list.output()).toMatch(new RegExp(`^${id}  finished  8/8 jobs .*"greedy vs beam"  a: numBeams=1; b: minNewTokens=8,numBeams=2$`, "m"));
  });

  it("queues and exits with --no-wait; cancel stops what is left", async () => {
    const queue = runCli(["experiment", "--sample", "2", "--arm", "greedy:numBeams=1", "--arm", 'short:{"prompt":"Name one thing, briefly.","maxNewTokens":16}', "--no-wait"], env);
    expect((await queue.exit).code).toBe(0);
    const id = Number(queue.output().split("\n").find((l) => /^\d+$/.test(l)));
    expect(await t.db.job.count({ where: { experimentId: id, status: "QUEUED" } })).toBe(4);
    const cancel = runCli(["experiment", "cancel", String(id)], env);
    expect((await cancel.exit).code).toBe(0);
    expect(cancel.output()).toContain(`experiment ${id} cancelled: 4 jobs cancelled`);
    const report = runCli(["experiment", "report", String(id)], env);
    expect((await report.exit).code).toBe(1);
    expect(report.output()).toContain("Cancelled: greedy 0/2 (2 cancelled), short 0/2 (2 cancelled). Sample: 2 works, seed 1");
    expect(report.output()).toContain('`maxNewTokens=16,prompt="Name one thing, briefly."`');
  });

  it.each([
    ["an arm out of range", ["--sample", "2", "--a", "numBeams=1", "--b", "numBeams=100"], /error: arm "b": numBeams must be an integer between 1 and 8/],
    ["an unknown parameter", ["--sample", "2", "--a", "beams=4", "--b", "numBeams=1"], /error: arm "a": "beams" is not a generation parameter/],
    ["a malformed pair", ["--sample", "2", "--a", "numBeams", "--b", "numBeams=1"], /"numBeams" is not name=value/],
    ["min above max", ["--sample", "2", "--a", "minNewTokens=64,maxNewTokens=32", "--b", "numBeams=1"], /minNewTokens must not exceed maxNewTokens \(32\)/],
    ["bad JSON", ["--sample", "2", "--a", "{numBeams: 1}", "--b", "numBeams=1"], /arm "a": not a JSON object/],
    ["one arm", ["--sample", "2", "--a", "numBeams=1"], /at least 2 arms \(got 1\)/],
    ["a nameless --arm", ["--sample", "2", "--a", "numBeams=1", "--arm", "numBeams=2"], /--arm "numBeams=2": write name:parameters/],
    ["an arm named twice", ["--sample", "2", "--a", "numBeams=1", "--arm", "a:numBeams=2"], /arm "a" is given twice/],
    ["no sample size", ["--a", "numBeams=1", "--b", "numBeams=2"], /--sample <n> is required/],
    ["a sample of 0", ["--sample", "0", "--a", "numBeams=1", "--b", "numBeams=2"], /--sample.*must be a positive integer/],
    ["a sample too large", ["--sample", "5001", "--a", "numBeams=1", "--b", "numBeams=2"], /sample size must be a whole number from 1 to 5000/],
    ["a bad seed", ["--sample", "2", "--seed", "-4", "--a", "numBeams=1", "--b", "numBeams=2"], /--seed.*must be a whole number from 0/],
    ["an unknown creator", ["--sample", "2", "--creator", "Q999999999", "--a", "numBeams=1", "--b", "numBeams=2"], /no active work with a downloaded image by "Q999999999"/],
    ["a bad experiment id", ["report", "12abc"], /"12abc" is not an experiment id/],
  ])("refuses %s with exit 2 and creates nothing", async (_label, args, message) => {
    const before = await t.db.experiment.count();
    const jobsBefore = await t.db.job.count();
    const p = runCli(["experiment", ...args], env);
    const { code } = await p.exit;
    expect({ code, output: p.output() }).toMatchObject({ code: 2 });
    expect(p.output()).toMatch(message);
    expect(await t.db.experiment.count()).toBe(before);
    expect(await t.db.job.count()).toBe(jobsBefore);
  });

  it("says so for an experiment that does not exist (exit 1)", async () => {
    const p = runCli(["experiment", "wait", "424242"], env);
    expect((await p.exit).code).toBe(1);
    expect(p.output()).toContain("No experiment with id 424242");
  });
});
