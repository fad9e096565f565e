import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { enqueueDescribe } from "../../src/jobs/queue.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { makeArtwork } from "../support/factories.js";

let t: TestDb;
beforeAll(async () => {
  t = await createTestDb();
});
afterAll(() => t.close());

/** test/support/claim-child.ts in a process: `ready` once it can claim, `go` starts it, `done` its claimed ids. */
function claimInChild(url: string, batch: number): { ready: Promise<void>; go: () => void; done: Promise<number[]> } {
  const child = spawn(process.execPath, ["--import", "tsx", "test/support/claim-child.ts", url, String(batch)], { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  let isReady = () => {};
  const ready = new Promise<void>((resolve) => (isReady = resolve));
  child.stdout.on("data", (d) => {
    out += d;
    if (out.startsWith("ready\n")) isReady();
  });
  child.stderr.on("data", (d) => (err += d));
  const done = new Promise<number[]>((resolve, reject) =>
    child.on("exit", (code) => (code === 0 ? resolve(out.split("\n").filter((l) => l && l !== "ready").map(Number)) : reject(new Error(`child exited ${code}: ${err}`)))),
  );
  return { ready: Promise.race([ready, done.then(() => undefined)]), go: () => child.stdin.end("go\n"), done };
}

function runChildLines(script: string, args: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", script, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("exit", (code) => (code === 0 ? resolve(out.split("\n").filter(Boolean)) : reject(new Error(`child exited ${code}: ${err}`))));
  });
}

describe("claims from several processes", () => {
  it("never give the same job to two workers", async () => {
    const config = loadConfig({});
    const ids: number[] = [];
    for (let i = 0; i < 60; i++) {
      const a = await makeArtwork(t.db, { image: false });
      ids.push((await enqueueDescribe(t.db, config, { artworkId: a.id, imageId: null, priority: i % 3 })).job.id);
    }
    // All three start claiming at once, when all are ready (not at a time fixed beforehand, which a
    // busy machine could make one of them miss).
    const children = [1, 2, 3].map((batch) => claimInChild(t.url, batch));
    await Promise.all(children.map((c) => c.ready));
    for (const c of children) c.go();
    const [a, b, c] = await Promise.all(children.map((c) => c.done));
    // Every process took part, so the claims really raced.
    expect([a!.length, b!.length, c!.length].every((n) => n > 0)).toBe(true);
    const all = [...a!, ...b!, ...c!];
    expect(new Set(all).size).toBe(all.length);
    expect([...all].sort((x, y) => x - y)).toEqual(ids);
    expect(await t.db.job.count({ where: { status: "SUCCEEDED" } })).toBe(60);
  });

  it("an identical request from several processes at once leaves one queued job", async () => {
    await t.db.job.deleteMany();
    const works = [];
    for (let i = 0; i < 12; i++) {
      const a = await makeArtwork(t.db);
      works.push({ artworkId: a.id, imageId: (await t.db.image.findFirstOrThrow({ where: { artworkId: a.id } })).id });
    }
    const startAt = Date.now() + 4_000;
    const args = [t.url, works.map((w) => w.artworkId).join(","), works.map((w) => w.imageId).join(","), String(startAt)];
    const outputs = await Promise.all([1, 2, 3].map(() => runChildLines("test/support/enqueue-child.ts", args)));
    for (const w of works) {
      // Twelve races: every process asked at about the same moment, and all got the one job.
      const queued = await t.db.job.findMany({ where: { artworkId: w.artworkId } });
      expect(queued, `work ${w.artworkId}`).toHaveLength(1);
      const got = outputs.flat().filter((l) => l.startsWith(`${w.artworkId} `)).map((l) => Number(l.split(" ")[1]));
      expect(got).toHaveLength(9);
      expect(new Set(got)).toEqual(new Set([queued[0]!.id]));
    }
  });
});
