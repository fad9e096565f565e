import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type Config, loadConfig } from "../../src/config.js";
import { EngineOutOfMemoryError, EngineStoppedError, ModelMissingError } from "../../src/describe/types.js";
import { setHumanDescription } from "../../src/jobs/descriptions.js";
import { cancelJob, enqueueDescribe, PRIORITY } from "../../src/jobs/queue.js";
import { type DescribeWorker, modelErrorForReaders, startWorker } from "../../src/jobs/worker.js";
import { ModelContractError } from "../../src/describe/models/contract.js";
import { createLogger, type Logger } from "../../src/log.js";
import { capturingLogger } from "../support/log.js";
import { createTestDb, onPostgres, type TestDb } from "../support/db.js";
import { makeArtwork } from "../support/factories.js";
import { type ScriptedDescriber, scriptedDescriber } from "../support/scripted-describer.js";

let t: TestDb;
const log = createLogger("silent");
const running: DescribeWorker[] = [];

beforeAll(async () => {
  t = await createTestDb();
});
// A test that failed before its own stop() leaves its worker running: it would take the next
// tests' jobs and fail them too, hiding which test really failed.
afterEach(async () => {
  for (const w of running.splice(0)) await w.stop();
});
afterAll(async () => {
  await t.close();
});
beforeEach(async () => {
  await t.db.job.deleteMany();
  await t.db.lease.deleteMany();
  await t.db.heartbeat.deleteMany();
});

function configFor(env: Record<string, string> = {}): Config {
  return loadConfig({ IMAGE_DIR: join(t.dir, "images"), HEARTBEAT_INTERVAL_S: "0.2", HEARTBEAT_STALE_S: "5", ...env });
}

/** An artwork whose main image file exists under IMAGE_DIR. */
async function artworkWithFile(config: Config) {
  const a = await makeArtwork(t.db);
  const image = await t.db.image.findFirstOrThrow({ where: { artworkId: a.id } });
  const file = join(config.IMAGE_DIR, image.localPath!);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, "not really a jpeg: the scripted describer never opens it");
  return { artworkId: a.id, imageId: image.id };
}

async function worker(config: Config, describer: ScriptedDescriber | (() => Promise<never>), extra: { modelRetryMs?: number; log?: Logger } = {}) {
  const w = await startWorker({
    db: t.db,
    config,
    log,
    openDescriber: typeof describer === "function" ? describer : async () => describer,
    pollMs: 20,
    progressEveryMs: 20,
    ...extra,
  });
  running.push(w);
  return w;
}

async function waitFor<T>(fn: () => Promise<T | null | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function stop(w: DescribeWorker) {
  await w.stop();
  running.splice(running.indexOf(w), 1);
}

describe("worker", () => {
  it("writes the description with every parameter, moves the current pointer, marks the job done and beats", async () => {
    const config = configFor({ DESCRIBE_NUM_BEAMS: "3", DESCRIBE_PROMPT_CONTEXT: "true" });
    const work = await artworkWithFile(config);
    const { job } = await enqueueDescribe(t.db, config, { ...work, params: { maxNewTokens: 32, earlyStopping: "never" }, reason: "test", requestedBy: "tester" });
    await t.db.heartbeat.create({ data: { id: "long-dead", role: "worker", pid: 1, hostname: "h", beatAt: new Date(Date.now() - 8 * 86_400_000) } });
    const d = scriptedDescriber({ steps: 4 });
    const w = await worker(config, d);
    const done = await waitFor(() => t.db.job.findFirst({ where: { id: job.id, status: "SUCCEEDED" } }));
    expect(done).toMatchObject({ progress: 4, holder: w.holder, attempts: 1 });
    const desc = await t.db.description.findUniqueOrThrow({ where: { jobId: job.id } });
    expect(desc).toMatchObject({
      artworkId: work.artworkId,
      imageId: work.imageId,
      source: "MODEL",
      author: "tester",
      reason: "test",
      modelId: "test/scripted",
      modelRevision: "r1",
      device: "cpu",
      prompt: config.DESCRIBE_PROMPT,
      numBeams: 3,
      maxNewTokens: 32,
      minNewTokens: 0,
      targetWords: 150,
      earlyStopping: "never",
      generatedTokens: 4,
      finishReason: "eos",
      sequenceScore: -0.25,
    });
    expect(JSON.parse(desc.dtypes!)).toEqual({ vision_encoder: "fp32", embed_tokens: "fp32", decoder_model_merged: "q4" });
    expect(JSON.parse(desc.generatedTokenIds!)).toEqual([1, 2, 3, 4]);
    // Quality is assessed as the description is written; the image file is unreadable, so its
    // colour is not judged, and the write still succeeds.
    expect(desc.qualityAt).not.toBeNull();
    expect(desc.qualityFlags!.split(",")).toContain("TOO_SHORT");
    expect(desc.qualityFlags).not.toMatch(/COLOUR_ON_MONOCHROME/);
    expect((await t.db.image.findUniqueOrThrow({ where: { id: work.imageId } })).chroma).toBeNull();
    expect((await t.db.artwork.findUniqueOrThrow({ where: { id: work.artworkId } })).currentDescriptionId).toBe(desc.id);
    expect(d.calls[0]!.inputs[0]!.context?.title).toMatch(/^Work /);
    expect(await t.db.heartbeat.findUnique({ where: { id: "long-dead" } })).toBeNull();
    const hb = await t.db.heartbeat.findUniqueOrThrow({ where: { id: w.holder } });
    expect(hb).toMatchObject({ role: "worker", pid: process.pid, modelStatus: "loaded", modelId: "test/scripted", modelRevision: "r1", device: "cpu" });
    await stop(w);
    expect(d.closed).toBe(true);
    expect(await t.db.heartbeat.count()).toBe(0);
  });

  it("stores no wordless answer: its job fails for good and the current text stays; a looping answer is stored once and flagged", async () => {
    const config = configFor();
    const work = await artworkWithFile(config);
    const first = (await enqueueDescribe(t.db, config, work)).job;
    const d = scriptedDescriber({ answers: ["A man sleeps at a desk. Owls fly above him.", "  \n### \n```\n```", "Assistant: It is dark. It is dark. It is dark. A man sleeps."] });
    const w = await worker(config, d);
    await waitFor(() => t.db.job.findFirst({ where: { id: first.id, status: "SUCCEEDED" } }));
    const good = await t.db.description.findUniqueOrThrow({ where: { jobId: first.id } });

    const empty = (await enqueueDescribe(t.db, config, { ...work, force: true })).job;
    const failed = await waitFor(() => t.db.job.findFirst({ where: { id: empty.id, status: "FAILED" } }));
    expect(failed.attempts).toBe(1);
    expect(failed.error).toBe(String.raw`the model wrote no words (3 tokens: "### \n${"```"}\n${"```"}")`);
    expect(await t.db.description.findUnique({ where: { jobId: empty.id } })).toBeNull();
    expect((await t.db.artwork.findUniqueOrThrow({ where: { id: work.artworkId } })).currentDescriptionId).toBe(good.id);

    const loop = (await enqueueDescribe(t.db, config, { ...work, force: true })).job;
    await waitFor(() => t.db.job.findFirst({ where: { id: loop.id, status: "SUCCEEDED" } }));
    const looped = await t.db.description.findUniqueOrThrow({ where: { jobId: loop.id } });
    expect(looped.text).toBe("It is dark. A man sleeps.");
    expect(looped.qualityFlags!.split(",")).toContain("REPETITION");
    await stop(w);
  });

  it("fails for good, saying why, a job whose parameters do not fit this worker's defaults", async () => {
    // Asked for through an API whose maxNewTokens is 256; this worker's is 32.
    const config = configFor({ DESCRIBE_MAX_NEW_TOKENS: "32" });
    const work = await artworkWithFile(config);
    const { job } = await enqueueDescribe(t.db, configFor(), { ...work, params: { minNewTokens: 100 } });
    const d = scriptedDescriber();
    const w = await worker(config, d);
    const failed = await waitFor(() => t.db.job.findFirst({ where: { id: job.id, status: "FAILED" } }));
    expect(failed).toMatchObject({ attempts: 1, error: "its parameters do not fit this worker's defaults (DESCRIBE_*): minNewTokens must not exceed maxNewTokens (32) (got 100)" });
    // A prompt with a chat-template token, queued before such prompts were refused.
    const old = await t.db.job.create({ data: { artworkId: work.artworkId, imageId: work.imageId, params: '{"prompt":"Describe <image> this."}' } });
    const refused = await waitFor(() => t.db.job.findFirst({ where: { id: old.id, status: "FAILED" } }));
    expect(refused.error).toMatch(/^its prompt must not contain the chat template's token <image>/);
    expect(d.calls).toHaveLength(0);
    await stop(w);
  });

  it("gives the prompt's context the date at its precision and the attribution as Wikidata says them", async () => {
    const config = configFor({ DESCRIBE_PROMPT_CONTEXT: "true" });
    const painter = await t.db.creator.create({ data: { qid: "Q5432", label: "Francisco Goya" } });
    const a = await makeArtwork(t.db, { title: "The <image> of Saturn<end_of_utterance>", inception: "1701-01-01T00:00:00Z", inceptionPrecision: 7, creators: [{ id: painter.id, attribution: "WORKSHOP_OF" }] });
    const image = await t.db.image.findFirstOrThrow({ where: { artworkId: a.id } });
    const file = join(config.IMAGE_DIR, image.localPath!);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, "not really a jpeg");
    const { job } = await enqueueDescribe(t.db, config, { artworkId: a.id, imageId: image.id });
    const d = scriptedDescriber();
    const w = await worker(config, d);
    await waitFor(() => t.db.job.findFirst({ where: { id: job.id, status: "SUCCEEDED" } }));
    expect(d.calls[0]!.inputs[0]!.context).toMatchObject({ title: "The  of Saturn", date: "18th century", creator: "workshop of Francisco Goya" });
    await stop(w);
  });

  it("describes WORKER_BATCH jobs with the same parameters together", async () => {
    const config = configFor({ WORKER_BATCH: "2" });
    const jobs = [];
    for (let i = 0; i < 3; i++) jobs.push((await enqueueDescribe(t.db, config, await artworkWithFile(config))).job);
    const d = scriptedDescriber();
    const w = await worker(config, d);
    await waitFor(async () => (await t.db.job.count({ where: { status: "SUCCEEDED" } })) === 3);
    expect(d.calls.map((c) => c.inputs.length)).toEqual([2, 1]);
    // DESCRIBE_PROMPT_CONTEXT is off by default: the prompt gets no title, date or creator.
    expect(d.calls.flatMap((c) => c.inputs.map((i) => i.context))).toEqual([undefined, undefined, undefined]);
    expect(await t.db.description.count({ where: { jobId: { in: jobs.map((j) => j.id) } } })).toBe(3);
    await stop(w);
  });

  it("keeps a person's text current unless the job is forced", async () => {
    const config = configFor();
    const work = await artworkWithFile(config);
    const human = await setHumanDescription(t.db, work.artworkId, "Written by a curator.");
    const plain = (await enqueueDescribe(t.db, config, { ...work, priority: PRIORITY.request + 1 })).job;
    const forced = (await enqueueDescribe(t.db, config, { ...work, force: true })).job;
    const w = await worker(config, scriptedDescriber());
    await waitFor(() => t.db.job.findFirst({ where: { id: plain.id, status: "SUCCEEDED" } }));
    // The plain job ran first (higher priority): its text joined the history only.
    const afterPlain = await t.db.description.findUniqueOrThrow({ where: { jobId: plain.id } });
    await waitFor(() => t.db.job.findFirst({ where: { id: forced.id, status: "SUCCEEDED" } }));
    const afterForced = await t.db.description.findUniqueOrThrow({ where: { jobId: forced.id } });
    expect(afterPlain.id).not.toBe(human.id);
    expect((await t.db.artwork.findUniqueOrThrow({ where: { id: work.artworkId } })).currentDescriptionId).toBe(afterForced.id);
    expect(await t.db.description.count({ where: { artworkId: work.artworkId } })).toBe(3);
    await stop(w);
  });

  it("a forced job replaces the text current when it was asked for, not a person's text or approval that came after", async () => {
    const config = configFor();
    const run = async (between: (artworkId: number) => Promise<unknown>, again = false) => {
      const work = await artworkWithFile(config);
      const first = await setHumanDescription(t.db, work.artworkId, "Written first.");
      const forced = (await enqueueDescribe(t.db, config, { ...work, force: true })).job;
      expect(forced.forceOverId).toBe(first.id);
      await between(work.artworkId);
      // The same forced request, asked again over the text now current: the queued job reaches it.
      if (again) expect((await enqueueDescribe(t.db, config, { ...work, force: true })).job.id).toBe(forced.id);
      const w = await worker(config, scriptedDescriber());
      await waitFor(() => t.db.job.findFirst({ where: { id: forced.id, status: "SUCCEEDED" } }));
      await stop(w);
      const made = await t.db.description.findUniqueOrThrow({ where: { jobId: forced.id } });
      return { current: (await t.db.artwork.findUniqueOrThrow({ where: { id: work.artworkId } })).currentDescriptionId, made: made.id };
    };
    // Nothing came between: the forced text replaces the person's.
    const plain = await run(async () => undefined);
    expect(plain.current).toBe(plain.made);
    // A person wrote again while it waited: their newer text is kept.
    let later = 0;
    const kept = await run(async (id) => (later = (await setHumanDescription(t.db, id, "Written later.")).id));
    expect(kept.current).toBe(later);
    // ... unless the forced request was made again after it.
    const asked = await run(async (id) => setHumanDescription(t.db, id, "Written later."), true);
    expect(asked.current).toBe(asked.made);
  });

  it("retries a failed description later; the job names the error's class (anyone reads it), the log has its text", async () => {
    const config = configFor();
    const { job } = await enqueueDescribe(t.db, config, await artworkWithFile(config));
    const d = scriptedDescriber();
    d.failNext("decoder exploded");
    const w = await worker(config, d);
    const failed = await waitFor(() => t.db.job.findFirst({ where: { id: job.id, status: "QUEUED", attempts: 1 } }));
    expect(failed.error).toBe("unexpected Error; the service log has the details");
    expect(failed.runAfter.getTime()).toBeGreaterThan(Date.now() + 20_000);
    expect(await t.db.description.count({ where: { jobId: job.id } })).toBe(0);
    await stop(w);
  });

  it("fails at once a job whose artwork has no image file", async () => {
    const config = configFor();
    const a = await makeArtwork(t.db, { image: false });
    const { job } = await enqueueDescribe(t.db, config, { artworkId: a.id, imageId: null });
    const w = await worker(config, scriptedDescriber());
    const failed = await waitFor(() => t.db.job.findFirst({ where: { id: job.id, status: "FAILED" } }));
    expect(failed.error).toMatch(/no downloaded main image/);
    await stop(w);
  });

  it("without a model keeps running: jobs wait and the heartbeat says how to fetch it", async () => {
    const config = configFor();
    const { job } = await enqueueDescribe(t.db, config, await artworkWithFile(config));
    let tries = 0;
    const missing = async (): Promise<never> => {
      tries++;
      throw new ModelMissingError("/srv/private/models/x", ["onnx/decoder_model_merged.onnx"], "artdesc models synth --out /srv/private/models/x");
    };
    const w = await worker(config, missing, { modelRetryMs: 50 });
    const hb = await waitFor(() => t.db.heartbeat.findFirst({ where: { id: w.holder, modelStatus: "missing" } }));
    // Anonymous readers see the heartbeat: the command, never the folder's path.
    expect(hb.modelError).toBe("Model files missing in the model folder: onnx/decoder_model_merged.onnx. Fetch them with: artdesc models synth --out <model folder>");
    await waitFor(async () => tries >= 3);
    expect(w.modelStatus()).toBe("missing");
    expect((await t.db.job.findUniqueOrThrow({ where: { id: job.id } })).status).toBe("QUEUED");
    await stop(w);
  });

  it("a job whose main image a sync has not downloaded yet is tried again later; one whose image is missing on Commons fails for good", async () => {
    const config = configFor();
    const pending = await artworkWithFile(config);
    const gone = await artworkWithFile(config);
    const a = (await enqueueDescribe(t.db, config, pending)).job;
    const b = (await enqueueDescribe(t.db, config, gone)).job;
    // What a sync leaves between writing a new main image's row and downloading its file.
    await t.db.image.update({ where: { id: pending.imageId }, data: { localPath: null } });
    await t.db.image.update({ where: { id: gone.imageId }, data: { localPath: null, missing: true } });
    const w = await worker(config, scriptedDescriber());
    await waitFor(() => t.db.job.findFirst({ where: { id: b.id, status: "FAILED" } }));
    const retried = await waitFor(() => t.db.job.findFirst({ where: { id: a.id, status: "QUEUED", attempts: 1 } }));
    expect(retried.error).toMatch(/main image is not downloaded yet/);
    expect(retried.runAfter.getTime()).toBeGreaterThan(Date.now());
    expect((await t.db.job.findUniqueOrThrow({ where: { id: b.id } })).error).toMatch(/has no downloaded main image/);
    await stop(w);
  });

  it("on stop lets the current description finish within the grace period", async () => {
    const config = configFor({ SHUTDOWN_GRACE_S: "30" });
    const { job } = await enqueueDescribe(t.db, config, await artworkWithFile(config));
    const w = await worker(config, scriptedDescriber({ steps: 30, stepMs: 20 }));
    await waitFor(() => t.db.job.findFirst({ where: { id: job.id, progress: { gt: 0 } } }));
    await stop(w);
    expect((await t.db.job.findUniqueOrThrow({ where: { id: job.id } })).status).toBe("SUCCEEDED");
    expect(await t.db.description.count({ where: { jobId: job.id } })).toBe(1);
  });

  it("after the grace period aborts the description and requeues the job, the attempt not counted", async () => {
    const config = configFor({ SHUTDOWN_GRACE_S: "0.2" });
    const { job } = await enqueueDescribe(t.db, config, await artworkWithFile(config));
    const w = await worker(config, scriptedDescriber({ steps: 1000, stepMs: 10 }));
    await waitFor(() => t.db.job.findFirst({ where: { id: job.id, progress: { gt: 0 } } }));
    await stop(w);
    const after = await t.db.job.findUniqueOrThrow({ where: { id: job.id } });
    expect(after).toMatchObject({ status: "QUEUED", attempts: 0, holder: null, progress: 0 });
    expect(await t.db.description.count({ where: { jobId: job.id } })).toBe(0);
    expect(await t.db.lease.count({ where: { name: `job:${job.id}` } })).toBe(0);
  });

  it("hurried (the process ends after an uncaught error) it hands the job back at once, not after the grace period", async () => {
    const config = configFor({ SHUTDOWN_GRACE_S: "60" });
    const { job } = await enqueueDescribe(t.db, config, await artworkWithFile(config));
    const w = await worker(config, scriptedDescriber({ steps: 1000, stepMs: 10 }));
    await waitFor(() => t.db.job.findFirst({ where: { id: job.id, progress: { gt: 0 } } }));
    const started = Date.now();
    const stopped = stop(w);
    await new Promise((r) => setTimeout(r, 100));
    w.hurry?.();
    await stopped;
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await t.db.job.findUniqueOrThrow({ where: { id: job.id } })).toMatchObject({ status: "QUEUED", attempts: 0, holder: null });
    expect(await t.db.description.count({ where: { jobId: job.id } })).toBe(0);
  });

  it("stops a description whose job was cancelled and writes nothing", async () => {
    const config = configFor();
    const { job } = await enqueueDescribe(t.db, config, await artworkWithFile(config));
    const d = scriptedDescriber({ steps: 1000, stepMs: 10 });
    const w = await worker(config, d);
    await waitFor(() => t.db.job.findFirst({ where: { id: job.id, progress: { gt: 0 } } }));
    await t.db.job.update({ where: { id: job.id }, data: { status: "CANCELLED", holder: null } });
    // The worker notices at its next progress write and takes the next job (none): idle again.
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    await stop(w);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await t.db.description.count({ where: { jobId: job.id } })).toBe(0);
    expect((await t.db.job.findUniqueOrThrow({ where: { id: job.id } })).status).toBe("CANCELLED");
    expect(await t.db.lease.count({ where: { name: `job:${job.id}` } })).toBe(0);
  });

  it("reloads the model when the engine's thread dies, and the job is retried without losing an attempt", async () => {
    const config = configFor();
    const { job } = await enqueueDescribe(t.db, config, await artworkWithFile(config));
    const broken = scriptedDescriber();
    broken.failNext(new EngineStoppedError("description worker exited (code 1)"));
    const healthy = scriptedDescriber();
    let opened = 0;
    const w = await startWorker({ db: t.db, config, log, pollMs: 20, progressEveryMs: 20, openDescriber: async () => (++opened === 1 ? broken : healthy) });
    running.push(w);
    const done = await waitFor(() => t.db.job.findFirst({ where: { id: job.id, status: "SUCCEEDED" } }));
    expect(opened).toBe(2);
    expect(broken.closed).toBe(true);
    expect(done.attempts).toBe(1);
    expect(await t.db.description.count({ where: { jobId: job.id } })).toBe(1);
    await stop(w);
  });

  it("reloads the model even when giving the job back fails (a failing disk): the job is taken back later and described", async () => {
    const config = configFor({ HEARTBEAT_STALE_S: "1" });
    const { job } = await enqueueDescribe(t.db, config, await artworkWithFile(config));
    const broken = scriptedDescriber();
    broken.failNext(new EngineStoppedError("description worker exited (code 1)"));
    const healthy = scriptedDescriber();
    let opened = 0;
    // Moving a running job back to the queue fails while the trigger is there.
    const when = `OLD.status = 'RUNNING' AND NEW.status = 'QUEUED'`;
    if (onPostgres) {
      await t.db.$executeRawUnsafe(`CREATE FUNCTION refuse_requeue() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk I/O error'; END $$`);
      await t.db.$executeRawUnsafe(`CREATE TRIGGER refuse_requeue BEFORE UPDATE ON "Job" FOR EACH ROW WHEN (${when}) EXECUTE FUNCTION refuse_requeue()`);
    } else {
      await t.db.$executeRawUnsafe(`CREATE TRIGGER refuse_requeue BEFORE UPDATE ON "Job" WHEN ${when} BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END`);
    }
    const mend = async () => {
      await t.db.$executeRawUnsafe(onPostgres ? `DROP TRIGGER IF EXISTS refuse_requeue ON "Job"` : `DROP TRIGGER IF EXISTS refuse_requeue`);
      if (onPostgres) await t.db.$executeRawUnsafe(`DROP FUNCTION IF EXISTS refuse_requeue()`);
    };
    try {
      const w = await startWorker({ db: t.db, config, log, pollMs: 20, progressEveryMs: 20, openDescriber: async () => (++opened === 1 ? broken : healthy) });
      running.push(w);
      await waitFor(async () => opened === 2);
      expect(broken.closed).toBe(true);
      await mend();
      // The job was left RUNNING; once its heartbeat is stale it goes back to the queue and is described.
      await waitFor(() => t.db.job.findFirst({ where: { id: job.id, status: "SUCCEEDED" } }), 20_000);
      expect(healthy.calls.length).toBeGreaterThan(0);
      await stop(w);
    } finally {
      await mend();
    }
  }, 30_000);

  /**
   * Engines whose thread dies a little into any run that holds the poison image: every run on that
   * engine then fails with EngineStoppedError, and later calls find it closed, as the real describer does.
   */
  function enginesThatDieOn(poisonImage: string) {
    const describers: ScriptedDescriber[] = [];
    const open = async () => {
      const d = scriptedDescriber({ steps: 5, stepMs: 10 });
      const describe = d.describe.bind(d);
      let dead = false;
      const running = new Set<(e: Error) => void>();
      d.describe = (inputs, params, options) => {
        if (dead) return Promise.reject(new EngineStoppedError("the describer is closed"));
        return new Promise((resolve, reject) => {
          running.add(reject);
          if (inputs.some((i) => basename(i.imagePath) === poisonImage)) {
            setTimeout(() => {
              dead = true;
              for (const fail of running) fail(new EngineStoppedError("description worker exited (code 134)"));
              running.clear();
            }, 15);
            return;
          }
          describe(inputs, params, options).then(resolve, reject).finally(() => running.delete(reject));
        });
      };
      describers.push(d);
      return d;
    };
    return { open, describers };
  }

  it.each([
    ["one job at a time", {}],
    ["batches of two (WORKER_BATCH=2)", { WORKER_BATCH: "2" }],
    ["two slots (WORKER_CONCURRENCY=2)", { WORKER_CONCURRENCY: "2" }],
  ])("%s: a job whose image stops the engine every time ends FAILED instead of looping; the jobs beside it are described", async (_name, env) => {
    const config = configFor({ JOB_MAX_ATTEMPTS: "1", ...env });
    const artwork = await artworkWithFile(config);
    const poison = (await enqueueDescribe(t.db, config, artwork)).job;
    const others = [];
    for (let i = 0; i < 3; i++) others.push((await enqueueDescribe(t.db, config, await artworkWithFile(config))).job);
    const poisonImage = basename((await t.db.image.findUniqueOrThrow({ where: { id: artwork.imageId } })).localPath!);
    const engines = enginesThatDieOn(poisonImage);
    const w = await startWorker({ db: t.db, config, log, pollMs: 20, progressEveryMs: 20, modelRetryMs: 20, openDescriber: engines.open });
    running.push(w);
    const failed = await waitFor(() => t.db.job.findFirst({ where: { id: poison.id, status: "FAILED" } }), 20_000);
    // Only stops while it was alone on the engine count: the first is free, the second counts its one attempt.
    expect(failed.attempts).toBe(1);
    expect(failed.error).toBe("the description engine stopped while describing it 2 times; the model was loaded again each time");
    for (const job of others) {
      const done = await waitFor(() => t.db.job.findFirst({ where: { id: job.id, status: "SUCCEEDED" } }), 20_000);
      // Stops beside the poison job, and batches given back for it to run alone, cost nothing.
      expect(done.attempts).toBe(1);
    }
    // Two stops, two loads at least (the reload after the last may still be under way).
    expect(engines.describers.length).toBeGreaterThanOrEqual(2);
    await stop(w);
  });

  it("classifies engine errors by class, not by message: an ordinary error that says the same is the job's failure", async () => {
    const config = configFor();
    const { job } = await enqueueDescribe(t.db, config, await artworkWithFile(config));
    const d = scriptedDescriber();
    d.failNext("description worker exited (code 1)");
    let opened = 0;
    const w = await startWorker({ db: t.db, config, log, pollMs: 20, progressEveryMs: 20, openDescriber: async () => (opened++, d) });
    running.push(w);
    const failed = await waitFor(() => t.db.job.findFirst({ where: { id: job.id, status: "QUEUED", attempts: 1 } }));
    expect(failed.error).toBe("unexpected Error; the service log has the details");
    // Not taken for a dead engine: the model was not reloaded, and the attempt counted.
    expect(opened).toBe(1);
    expect(d.closed).toBe(false);
    await stop(w);
  });

  it("cancelling one job of a running batch drops it from the batch; its batch mate goes on and is written", async () => {
    const config = configFor({ WORKER_BATCH: "2" });
    const a = (await enqueueDescribe(t.db, config, await artworkWithFile(config))).job;
    const b = (await enqueueDescribe(t.db, config, await artworkWithFile(config))).job;
    // 25 ms steps: the drop must come within 50 steps of the first progress, over a second even on
    // a loaded machine (the cancel, the worker's check and this test's polls all wait for turns).
    const d = scriptedDescriber({ steps: 60, stepMs: 25 });
    const w = await worker(config, d);
    await waitFor(() => t.db.job.findFirst({ where: { id: b.id, status: "RUNNING", progress: { gt: 0 } } }));
    expect(d.calls[0]!.inputs).toHaveLength(2);
    await cancelJob(t.db, b.id);
    const done = await waitFor(() => t.db.job.findFirst({ where: { id: a.id, status: "SUCCEEDED" } }));
    expect(done.progress).toBe(60);
    // b left the batch soon after the cancel (the worker checks every 20 ms here), long before the end.
    const droppedAt = d.calls[0]!.droppedAt.get(1);
    expect(droppedAt).toBeDefined();
    expect(droppedAt!).toBeLessThan(50);
    expect(d.calls[0]!.droppedAt.has(0)).toBe(false);
    const cancelled = await t.db.job.findUniqueOrThrow({ where: { id: b.id } });
    expect(cancelled).toMatchObject({ status: "CANCELLED", holder: null });
    expect(cancelled.progress).toBeLessThan(50);
    expect(await t.db.description.count({ where: { jobId: b.id } })).toBe(0);
    expect(await t.db.description.count({ where: { jobId: a.id } })).toBe(1);
    // Both leases are given back while the worker runs: a's once its description is recorded (after
    // a shows SUCCEEDED), b's right after that, so this waits for them instead of racing the worker.
    await waitFor(async () => (await t.db.lease.count({ where: { name: { in: [`job:${a.id}`, `job:${b.id}`] } } })) === 0);
    expect(d.calls).toHaveLength(1);
    await stop(w);
  });

  it("cancelling a job of a batch still in its prefill (no progress yet) drops it too", async () => {
    const config = configFor({ WORKER_BATCH: "2" });
    const a = (await enqueueDescribe(t.db, config, await artworkWithFile(config))).job;
    const b = (await enqueueDescribe(t.db, config, await artworkWithFile(config))).job;
    // The first step takes long (a prefill): no progress is reported while b is cancelled.
    const d = scriptedDescriber({ steps: 5, stepMs: 300 });
    const w = await worker(config, d);
    await waitFor(() => t.db.job.findFirst({ where: { id: b.id, status: "RUNNING" } }));
    await cancelJob(t.db, b.id);
    await waitFor(() => t.db.job.findFirst({ where: { id: a.id, status: "SUCCEEDED" } }));
    expect(d.calls[0]!.droppedAt.get(1)).toBeLessThanOrEqual(2);
    expect(await t.db.description.count({ where: { jobId: b.id } })).toBe(0);
    expect((await t.db.job.findUniqueOrThrow({ where: { id: b.id } })).status).toBe("CANCELLED");
    await stop(w);
  });

  it("with two slots, a job given back after a stall and taken by the other slot is dropped by the first, not decoded twice", async () => {
    const config = configFor({ WORKER_CONCURRENCY: "2", WORKER_BATCH: "1" });
    const work = await artworkWithFile(config);
    const { job } = await enqueueDescribe(t.db, config, { ...work, reason: "test" });
    const d = scriptedDescriber({ steps: 150, stepMs: 20 });
    // How each decode ended: finished (its text offered for writing), or stopped.
    const ended: ("finished" | "stopped")[] = [];
    const describe = d.describe.bind(d);
    d.describe = (...args) =>
      describe(...args).then(
        (out) => (ended.push(out.every((o) => o !== null) ? "finished" : "stopped"), out),
        (err: unknown) => (ended.push("stopped"), Promise.reject(err)),
      );
    // Progress is written every 1.5 s here, so the job is claimed again well before the first slot next looks.
    const w = await startWorker({ db: t.db, config, log, openDescriber: async () => d, pollMs: 20, progressEveryMs: 1_500 });
    running.push(w);
    const first = await waitFor(() => t.db.job.findFirst({ where: { id: job.id, status: "RUNNING" } }));
    await waitFor(async () => d.calls.length === 1);
    // What requeueStale does to a claim whose heartbeat stopped (the process stalled past HEARTBEAT_STALE_S).
    await t.db.job.update({ where: { id: job.id }, data: { status: "QUEUED", holder: null, progress: 0 } });
    await t.db.lease.deleteMany({ where: { name: `job:${job.id}` } });
    const again = await waitFor(() => t.db.job.findFirst({ where: { id: job.id, status: "RUNNING", attempts: 2 } }));
    expect(again.holder).not.toBe(first.holder);
    expect([first.holder, again.holder].sort()).toEqual([`${w.holder}/1`, `${w.holder}/2`]);
    await waitFor(() => t.db.job.findFirst({ where: { id: job.id, status: "SUCCEEDED" } }), 15_000);
    // Both slots started it; the first stopped at its next progress write instead of finishing it too.
    expect(d.calls).toHaveLength(2);
    expect(ended).toEqual(["stopped", "finished"]);
    expect(await t.db.description.count({ where: { jobId: job.id } })).toBe(1);
    await stop(w);
  }, 20_000);

  it("an unexpected failure while preparing gives the job back at once, the attempt counted, instead of leaving it RUNNING", async () => {
    const config = configFor({ JOB_MAX_ATTEMPTS: "3" });
    const work = await artworkWithFile(config);
    const { job } = await enqueueDescribe(t.db, config, { ...work, reason: "test" });
    const d = scriptedDescriber();
    // Not an ImageSourceError: something nobody planned for (a database or file system fault).
    const images = { kind: "folder" as const, ready: async () => undefined, localFile: async (): Promise<string> => Promise.reject(new TypeError("the disk said no")) };
    const w = await startWorker({ db: t.db, config, log, openDescriber: async () => d, pollMs: 20, progressEveryMs: 20, images });
    running.push(w);
    const back = await waitFor(() => t.db.job.findFirst({ where: { id: job.id, status: "QUEUED", attempts: 1 } }), 3_000);
    expect(back).toMatchObject({ holder: null, error: expect.stringContaining("TypeError") });
    expect(back.runAfter.getTime()).toBeGreaterThan(Date.now());
    expect(await t.db.lease.count({ where: { name: `job:${job.id}` } })).toBe(0);
    expect(d.calls).toHaveLength(0);
    await stop(w);
  });

  // The failing write is a SQLite trigger; the code path is the same on PostgreSQL.
  it.skipIf(onPostgres)("a description whose write fails fails its own job only: its batch mate's text is written", async () => {
    const config = configFor({ WORKER_BATCH: "2", JOB_MAX_ATTEMPTS: "3" });
    const bad = await artworkWithFile(config);
    const good = await artworkWithFile(config);
    // The failing one first in the batch, so its mate's text is written after the failure.
    const b = await enqueueDescribe(t.db, config, { ...bad, reason: "test" });
    const a = await enqueueDescribe(t.db, config, { ...good, reason: "test" });
    await t.db.$executeRawUnsafe(
      `CREATE TRIGGER refuse_one BEFORE INSERT ON "Description" WHEN NEW."artworkId" = ${bad.artworkId} BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END`,
    );
    try {
      const d = scriptedDescriber({ steps: 3 });
      const w = await worker(config, d);
      await waitFor(() => t.db.job.findFirst({ where: { id: a.job.id, status: "SUCCEEDED" } }));
      const failed = await waitFor(() => t.db.job.findFirst({ where: { id: b.job.id, status: "QUEUED", attempts: 1 } }));
      expect(failed.error).toMatch(/disk I\/O error|Error/);
      expect(d.calls[0]!.inputs).toHaveLength(2);
      expect(await t.db.description.count({ where: { jobId: a.job.id } })).toBe(1);
      await stop(w);
    } finally {
      await t.db.$executeRawUnsafe(`DROP TRIGGER refuse_one`);
    }
  });

  it.skipIf(onPostgres)("a lease that cannot be released after the write is logged as such; the description stands", async () => {
    const config = configFor();
    const work = await artworkWithFile(config);
    const { job } = await enqueueDescribe(t.db, config, { ...work, reason: "test" });
    await t.db.$executeRawUnsafe(
      `CREATE TRIGGER keep_lease BEFORE DELETE ON "Lease" WHEN OLD."name" = 'job:${job.id}' BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END`,
    );
    try {
      const captured = capturingLogger();
      const w = await worker(config, scriptedDescriber({ steps: 3 }), { log: captured.log });
      await waitFor(() => t.db.job.findFirst({ where: { id: job.id, status: "SUCCEEDED" } }));
      expect(await t.db.description.count({ where: { jobId: job.id } })).toBe(1);
      const warned = await waitFor(async () => captured.lines.find((l) => String(l.msg).startsWith("could not release the job's lease")));
      expect(warned).toMatchObject({ job: job.id, written: true, level: 40 });
      expect(captured.lines.some((l) => l.msg === "could not write the description")).toBe(false);
      expect(captured.lines.some((l) => l.msg === "description written")).toBe(true);
      await stop(w);
    } finally {
      await t.db.$executeRawUnsafe(`DROP TRIGGER keep_lease`);
    }
  });

  it("records the batch size and the decoding with each description of a batch", async () => {
    const config = configFor({ WORKER_BATCH: "2", DESCRIBE_NUM_BEAMS: "1" });
    const jobs: { id: number }[] = [];
    for (let i = 0; i < 2; i++) jobs.push((await enqueueDescribe(t.db, config, await artworkWithFile(config))).job);
    const w = await worker(config, scriptedDescriber());
    await waitFor(async () => (await t.db.job.count({ where: { id: { in: jobs.map((j) => j.id) }, status: "SUCCEEDED" } })) === 2);
    const rows = await t.db.description.findMany({ where: { jobId: { in: jobs.map((j) => j.id) } } });
    for (const r of rows) {
      const read = readFileSync(join(config.IMAGE_DIR, (await t.db.image.findUniqueOrThrow({ where: { id: r.imageId! } })).localPath!));
      expect(r).toMatchObject({ batchSize: 2, decoding: "greedy", cleanMarkdown: true, imageHash: createHash("sha256").update(read).digest("hex") });
      expect(r.instruction).toBe(`<image>${config.DESCRIBE_PROMPT}`);
      expect(JSON.parse(r.modelFiles!)).toEqual({ "onnx/decoder_model_merged_q4.onnx": "0".repeat(64) });
    }
    await stop(w);
  });

  it("an out-of-memory run fails the attempt with a message that says what to lower", async () => {
    const config = configFor();
    const { job } = await enqueueDescribe(t.db, config, await artworkWithFile(config));
    const d = scriptedDescriber();
    d.failNext(new EngineOutOfMemoryError("decoder_model_merged", 8, new Error("Failed to allocate memory for requested buffer of size 123")));
    const w = await worker(config, d);
    const failed = await waitFor(() => t.db.job.findFirst({ where: { id: job.id, status: "QUEUED", attempts: 1 } }));
    expect(failed.error).toBe("the model ran out of memory in decoder_model_merged with 8 row(s) (images x beams); lower WORKER_BATCH or the number of beams");
    await stop(w);
  });
});

describe("modelErrorForReaders", () => {
  it("names no local path for a missing hub model, a broken folder or an unknown failure", () => {
    const hub = new ModelMissingError("/srv/m/HuggingFaceTB/SmolVLM", ["onnx/a.onnx"], "MODEL_DIR=/srv/m artdesc models pull --model HuggingFaceTB/SmolVLM");
    expect(modelErrorForReaders(hub)).toBe("Model files missing in the model folder: onnx/a.onnx. Fetch them with: MODEL_DIR=<MODEL_DIR> artdesc models pull --model HuggingFaceTB/SmolVLM");
    const contract = new ModelContractError("/srv/m/x", ["onnx/a.onnx: missing", "/srv/m/x/config.json: not valid JSON"]);
    expect(modelErrorForReaders(contract)).toBe("The model does not match the SmolVLM ONNX contract: onnx/a.onnx: missing; <model folder>/config.json: not valid JSON");
    const other = new Error("ENOENT: no such file or directory, open '/srv/m/x/onnx/a.onnx'");
    expect(modelErrorForReaders(other)).toBe("The model failed to load (Error); the worker's log says why.");
    expect(modelErrorForReaders("x")).not.toContain("/srv");
  });
});
