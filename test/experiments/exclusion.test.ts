import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { parseArms } from "../../src/experiments/arms.js";
import { cancelExperiment, createExperiment, experimentReport, ExperimentRequestError } from "../../src/experiments/store.js";
import { type ExportRow, writeExport } from "../../src/export/export.js";
import { paramsFromConfig } from "../../src/generation/params.js";
import { createGraphqlApp, type Yoga } from "../../src/graphql/yoga.js";
import { enqueueDescribe, queueAfterSync } from "../../src/jobs/queue.js";
import { startWorker } from "../../src/jobs/worker.js";
import { createLogger } from "../../src/log.js";
import { createMetricsRegistry } from "../../src/ops/metrics.js";
import { QUALITY_FLAGS } from "../../src/quality/types.js";
import { queuePageSql } from "../../src/review/queue.js";
import { dialect } from "../../src/store/sql.js";
import { reviewDescription, ExperimentDescriptionError } from "../../src/review/review.js";
import { qualityCountsByModel } from "../../src/review/stats.js";
import { searchArtworks } from "../../src/search/search.js";
import { TextSink } from "../support/cli.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { addDescription, makeArtwork, makeGoya, writePlaceholderImages } from "../support/factories.js";
import { gql } from "../support/graphql.js";
import { scriptedDescriber } from "../support/scripted-describer.js";

/**
 * An experiment run by the real worker (with a scripted engine): its texts carry the experiment,
 * never become current, and stay out of the history, the review queue, stats, export, alt text,
 * metrics and search unless asked for; its jobs neither dedupe with nor hold back ordinary ones.
 */

const TOKEN = "experiments-token-0123456789";
const AUTH = { authorization: `Bearer ${TOKEN}` };
let t: TestDb;
let yoga: Yoga;
let config: ReturnType<typeof loadConfig>;
const works: Record<string, { id: number; qid: string; currentBefore: number | null }> = {};
let experimentId: number;
let experimentTexts: number[];

async function runWorkerUntil(done: () => Promise<boolean>) {
  const worker = await startWorker({ db: t.db, config, log: createLogger("silent"), openDescriber: async () => scriptedDescriber({ steps: 3, stepMs: 1 }), pollMs: 10, progressEveryMs: 20 });
  try {
    const until = Date.now() + 30_000;
    while (!(await done())) {
      if (Date.now() > until) throw new Error(`timed out: ${JSON.stringify(await t.db.job.findMany({ where: { status: { not: "SUCCEEDED" } } }))}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await worker.stop();
  }
}

beforeAll(async () => {
  t = await createTestDb();
  config = loadConfig({ IMAGE_DIR: join(t.dir, "images"), API_TOKEN: TOKEN, REVIEW_FALLBACK_LADDER: "none", WORKER_BATCH: "2", HEARTBEAT_INTERVAL_S: "0.2" });
  yoga = createGraphqlApp({ db: t.db, config });
  const goya = await makeGoya(t.db);
  const by = [{ id: goya.id }];
  const described = await makeArtwork(t.db, { title: "The Dog", creators: by, description: "A dog looks up at a dark wall." });
  const human = await makeArtwork(t.db, { title: "Saturn", creators: by });
  await addDescription(t.db, human.id, "Written by a curator.", "HUMAN");
  const rejected = await makeArtwork(t.db, { title: "Rejected one", creators: by, description: "A cat paints a wall." });
  const bare = await makeArtwork(t.db, { title: "Undescribed", creators: by });
  await makeArtwork(t.db, { title: "Gone", creators: by, state: "DELETED" });
  await makeArtwork(t.db, { title: "No image", creators: by, image: false });
  await writePlaceholderImages(t.db, config.IMAGE_DIR);
  for (const [key, a] of Object.entries({ described, human, rejected, bare })) {
    const row = await t.db.artwork.findUniqueOrThrow({ where: { id: a.id } });
    works[key] = { id: a.id, qid: a.qid, currentBefore: row.currentDescriptionId };
  }

  const arms = parseArms([{ name: "a", text: "numBeams=1" }, { name: "b", text: "numBeams=2,maxNewTokens=32" }], paramsFromConfig(config));
  const { experiment, jobs } = await createExperiment(t.db, config, { name: "greedy vs beam", sampleSize: 10, seed: 1, creator: "goya", arms, requestedBy: "test" });
  experimentId = experiment.id;
  expect(jobs).toBe(8);
  // Experiment jobs hold back neither the nightly run nor a person's request for the same work.
  expect((await queueAfterSync(t.db, config)).queued).toBe(1);
  const image = await t.db.image.findFirstOrThrow({ where: { artworkId: works.bare!.id } });
  expect((await enqueueDescribe(t.db, config, { artworkId: works.bare!.id, imageId: image.id, params: { numBeams: 1 } })).created).toBe(true);
  await runWorkerUntil(async () => (await t.db.job.count({ where: { status: { in: ["QUEUED", "RUNNING"] } } })) === 0);
  experimentTexts = (await t.db.description.findMany({ where: { experimentId }, select: { id: true } })).map((d) => d.id);
  // A rejection after the run: the alt text must fall back past the experiment's newer texts.
  await reviewDescription(t.db, config, { descriptionId: works.rejected!.currentBefore!, verdict: "REJECTED", note: null, reviewer: "test" });
}, 60_000);
afterAll(() => t?.close());

describe("an experiment's run", () => {
  it("writes one tagged text per work per arm with its arm's parameters, and moves no current text", async () => {
    const texts = await t.db.description.findMany({ where: { experimentId }, include: { job: true } });
    expect(texts).toHaveLength(8);
    for (const d of texts) {
      expect(d.job!.experimentId).toBe(experimentId);
      expect(d.experimentArm).toBe(d.job!.experimentArm);
      expect(d.numBeams).toBe(d.experimentArm === "a" ? 1 : 2);
      expect(d.qualityRisk).not.toBeNull();
    }
    expect(new Set(texts.map((d) => `${d.artworkId}:${d.experimentArm}`)).size).toBe(8);
    expect(texts.map((d) => d.artworkId).sort()).toEqual(Object.values(works).flatMap((w) => [w.id, w.id]).sort());
    for (const [key, w] of Object.entries(works)) {
      const now = await t.db.artwork.findUniqueOrThrow({ where: { id: w.id }, include: { currentDescription: true } });
      if (key === "bare") {
        // The nightly job's text (or the request's) became current, never the experiment's.
        expect(now.currentDescription!.experimentId).toBeNull();
        expect(now.currentDescription!.jobId).not.toBeNull();
      } else expect(now.currentDescriptionId).toBe(w.currentBefore);
    }
  });

  it("reports both arms finished", async () => {
    const r = await experimentReport(t.db, experimentId);
    expect(r.state).toBe("FINISHED");
    expect(r.arms.map((a) => [a.name, a.described, a.total, a.asRun])).toEqual([
      ["a", 4, 4, ["1 beam, 256 tokens"]],
      ["b", 4, 4, ["2 beams, 32 tokens"]],
    ]);
    expect(r.comparisons[0]!.pairedWorks).toBe(4);
    // One worker, one model: each arm's texts were made alike.
    expect(r.arms.map((a) => a.mixed)).toEqual([[], []]);
    // A text of arm b made by a worker with another prompt and revision is named.
    const one = await t.db.description.findFirstOrThrow({ where: { experimentId, experimentArm: "b" } });
    await t.db.description.update({ where: { id: one.id }, data: { prompt: "Other.", modelRevision: "r9" } });
    const again = await experimentReport(t.db, experimentId);
    // Values in the order the texts were written.
    expect(again.arms.find((a) => a.name === "b")!.mixed).toEqual(["prompt Other. (1) or \"Describe the objects, people, and bac\"… (3)", "modelRevision r9 (1) or r1 (3)"]);
  });
});

describe("an experiment's texts are left out", () => {
  it("of the artwork's history, unless includeExperiments is given", async () => {
    const q = `query($id: ID!, $inc: Boolean) { artwork(id: $id) { ... on Artwork {
      descriptions(includeExperiments: $inc) { id experimentArm experiment { number name } } } } }`;
    const w = works.described!;
    const plain = (await gql(yoga, q, { id: w.qid })).data.artwork.descriptions as { experimentArm: string | null }[];
    expect(plain).toHaveLength(1);
    expect(plain[0]!.experimentArm).toBeNull();
    const all = (await gql(yoga, q, { id: w.qid, inc: true })).data.artwork.descriptions as { experimentArm: string | null; experiment: { number: number; name: string } | null }[];
    expect(all).toHaveLength(3);
    expect(all.filter((d) => d.experiment).map((d) => [d.experimentArm, d.experiment!.number, d.experiment!.name]).sort()).toEqual([
      ["a", experimentId, "greedy vs beam"],
      ["b", experimentId, "greedy vs beam"],
    ]);
  });

  it("of the history connection, unless includeExperiments is given; its page size is still checked", async () => {
    const q = `query($id: ID!, $inc: Boolean, $first: Int) { artwork(id: $id) { ... on Artwork {
      descriptionsConnection(includeExperiments: $inc, first: $first) { edges { node { experimentArm } } } } } }`;
    const arms = async (inc?: boolean) =>
      ((await gql(yoga, q, { id: works.human!.qid, inc })).data.artwork.descriptionsConnection.edges as { node: { experimentArm: string | null } }[]).map((e) => e.node.experimentArm);
    expect(await arms()).toEqual([null]);
    expect((await arms(true)).sort()).toEqual(["a", "b", null]);
    const tooMany = await gql(yoga, q, { id: works.human!.qid, inc: true, first: 100_000 });
    expect(tooMany.errors?.[0]?.message).toMatch(/first/);
  });

  it("of the review queue", async () => {
    const { sql, params } = queuePageSql({ filter: { flag: null, minRisk: null, creatorIds: null }, after: null, before: null, inverted: false, limit: 100 }, dialect(t.db));
    const ids = (await t.db.$queryRawUnsafe<{ id: number }[]>(sql, ...params)).map((r) => Number(r.id));
    expect(ids.length).toBeGreaterThan(0);
    expect(ids.filter((id) => experimentTexts.includes(id))).toEqual([]);
  });

  it("of stats by model and parameter set", async () => {
    const groups = await qualityCountsByModel(t.db);
    const counted = groups.reduce((n, g) => n + g.descriptions, 0);
    const ordinary = await t.db.description.count({ where: { experimentId: null, artwork: { state: "ACTIVE" } } });
    expect(counted).toBe(ordinary);
    expect(groups.some((g) => g.modelId === "test/scripted" && g.params === "numBeams=2,maxNewTokens=32")).toBe(false);
  });

  it("of the export and of alt text, even when they are the newest texts of a work whose current one is rejected", async () => {
    const sink = new TextSink();
    await writeExport(t.db, sink, { format: "jsonl", altTextMaxChars: config.ALT_TEXT_MAX_CHARS });
    const rows = new Map(sink.text.trim().split("\n").map((l) => [(JSON.parse(l) as ExportRow).qid, JSON.parse(l) as ExportRow]));
    const rejected = rows.get(works.rejected!.qid)!;
    expect(rejected.description).toBe("A cat paints a wall.");
    expect(rejected.altText).toBe("Rejected one by Francisco Goya, " + rejected.inception!.slice(0, 4));
    // Only the undescribed work has a scripted text of its own (the nightly job's); the experiment wrote one for every work.
    for (const r of rows.values()) if (r.qid !== works.bare!.qid) expect(`${r.description} ${r.altText}`).not.toMatch(/Scripted description/);
    const api = await gql(yoga, `query($id: ID!) { artwork(id: $id) { ... on Artwork { altText } } }`, { id: works.rejected!.qid });
    expect(api.data.artwork.altText).toBe(rejected.altText);
  });

  it("of the metrics", async () => {
    const text = await createMetricsRegistry(t.db, { defaultMetrics: false }).metrics();
    const ordinary = await t.db.description.count({ where: { experimentId: null, source: "MODEL" } });
    expect(text).toContain(`artdesc_descriptions_total{source="MODEL"} ${ordinary}`);
    const timed = await t.db.description.count({ where: { experimentId: null, source: "MODEL", timings: { not: null } } });
    expect(text).toContain(`artdesc_description_seconds_count ${timed}`);
  });

  it("of search", async () => {
    const hits = await searchArtworks(t.db, "scripted", { limit: 10 });
    // Only the undescribed work's own (nightly) text says "Scripted"; the experiment wrote such texts for all four.
    expect(hits.hits.map((h) => h.artworkId)).toEqual([works.bare!.id]);
  });
});

describe("a verdict on an experiment's text", () => {
  it("is refused with a typed error, and nothing is recorded or queued", async () => {
    const jobsBefore = await t.db.job.count();
    await expect(reviewDescription(t.db, config, { descriptionId: experimentTexts[0]!, verdict: "REJECTED", note: null, reviewer: "x" })).rejects.toBeInstanceOf(
      ExperimentDescriptionError,
    );
    const r = await gql(
      yoga,
      `mutation($id: ID!) { reviewDescription(id: $id, verdict: REJECTED) { __typename ... on Error { message } ... on InvalidInputError { field } } }`,
      { id: String(experimentTexts[1]) },
      AUTH,
    );
    expect(r.data.reviewDescription).toMatchObject({ __typename: "InvalidInputError", field: "id" });
    expect(r.data.reviewDescription.message).toMatch(/written by experiment \d+/);
    expect(await t.db.review.count({ where: { descriptionId: { in: experimentTexts } } })).toBe(0);
    expect(await t.db.description.count({ where: { id: { in: experimentTexts }, reviewState: { not: null } } })).toBe(0);
    expect(await t.db.job.count()).toBe(jobsBefore);
  });
});

describe("GraphQL experiments and experiment(id)", () => {
  const Q = `query($id: ID!) { experiment(id: $id) { __typename
    ... on Experiment { id number name seed sampleSize sampled creator state arms { name params requestedParams }
      report { state jobs { succeeded failed } arms { name params described total secondsPerImage { mean } generatedTokens { mean }
        words { mean } finishReasons { reason share } flags { flag share } meanRisk depictsRecall { recall judged } }
        comparisons { arm baseline pairedWorks secondsRatio riskDifference { mean ci95 } } markdown }
      descriptions(arm: "b", limit: 10) { experimentArm generation { numBeams maxNewTokens } } }
    ... on Error { message } } }`;

  it("answers with the arms side by side, by number or global id", async () => {
    const r = await gql(yoga, Q, { id: String(experimentId) });
    expect(r.errors).toBeUndefined();
    const e = r.data.experiment;
    expect(e).toMatchObject({ __typename: "Experiment", number: experimentId, name: "greedy vs beam", seed: 1, sampleSize: 10, sampled: 4, creator: "goya", state: "FINISHED" });
    expect(e.arms).toEqual([
      { name: "a", params: "numBeams=1", requestedParams: { numBeams: 1 } },
      { name: "b", params: "maxNewTokens=32,numBeams=2", requestedParams: { maxNewTokens: 32, numBeams: 2 } },
    ]);
    expect(e.report.jobs).toEqual({ succeeded: 8, failed: 0 });
    expect(e.report.arms.map((a: { described: number }) => a.described)).toEqual([4, 4]);
    expect(e.report.arms[0].secondsPerImage.mean).toBeCloseTo(0.01);
    expect(e.report.arms[0].flags).toHaveLength(QUALITY_FLAGS.length);
    expect(e.report.comparisons).toMatchObject([{ arm: "b", baseline: "a", pairedWorks: 4, secondsRatio: 1 }]);
    expect(e.report.markdown).toContain(`# Experiment ${experimentId}: greedy vs beam`);
    expect(e.descriptions).toHaveLength(4);
    for (const d of e.descriptions) expect(d).toEqual({ experimentArm: "b", generation: { numBeams: 2, maxNewTokens: 32 } });
    const byGlobal = await gql(yoga, `query($id: ID!) { experiment(id: $id) { ... on Experiment { number } } }`, { id: e.id });
    expect(byGlobal.data.experiment.number).toBe(experimentId);
    const node = await gql(yoga, `query($id: ID!) { node(id: $id) { ... on Experiment { number } } }`, { id: e.id });
    expect(node.data.node.number).toBe(experimentId);
  });

  it("lists experiments newest first and tags their jobs", async () => {
    const r = await gql(yoga, `{ experiments(limit: 5) { number state } }`);
    expect(r.data.experiments[0]).toEqual({ number: experimentId, state: "FINISHED" });
    const job = await t.db.job.findFirstOrThrow({ where: { experimentId } });
    const j = await gql(yoga, `query($id: ID!) { job(id: $id) { ... on Job { experimentArm experiment { number } reason } } }`, { id: String(job.id) });
    expect(j.data.job).toEqual({ experimentArm: job.experimentArm, experiment: { number: experimentId }, reason: `experiment ${experimentId}, arm ${job.experimentArm}` });
  });

  it.each([
    ["an unknown number", "999999", "NotFoundError"],
    ["words", "abc", "InvalidIdError"],
    ["zero", "0", "InvalidIdError"],
    ["a negative number", "-1", "InvalidIdError"],
    ["a number beyond any row", "99999999999999", "InvalidIdError"],
    ["5,000 characters", "x".repeat(5000), "InvalidIdError"],
    ["another type's global id", Buffer.from("Artwork:1").toString("base64"), "InvalidIdError"],
  ])("answers %s with a typed error", async (_label, id, type) => {
    const r = await gql(yoga, Q, { id });
    expect(r.errors).toBeUndefined();
    expect(r.data.experiment.__typename).toBe(type);
    expect(r.data.experiment.message.length).toBeLessThan(400);
  });

  it("prices a report like the texts it reads: a page of reports is refused before it runs, one is not", async () => {
    const page = await gql(yoga, `{ experiments(limit: 50) { report { markdown } } }`);
    expect(page.errors?.[0]?.extensions?.code).toBe("COST_LIMIT");
    const one = await gql(yoga, `query($id: ID!) { experiment(id: $id) { ... on Experiment { report { markdown } } } }`, { id: String(experimentId) });
    expect(one.errors).toBeUndefined();
    const few = await gql(yoga, `{ experiments(limit: 3) { number report { state } } }`);
    expect(few.errors).toBeUndefined();
  });

  it("refuses a page size out of range", async () => {
    for (const limit of [-1, 101]) {
      const r = await gql(yoga, `query($n: Int) { experiments(limit: $n) { number } }`, { n: limit });
      expect(r.errors?.[0]?.message).toMatch(/limit must be between 0 and 100/);
    }
  });
});

describe("creating and cancelling", () => {
  it("refuses a sample size out of range and a creator with no work", async () => {
    const arms = parseArms([{ name: "a", text: "" }, { name: "b", text: "numBeams=1" }], paramsFromConfig(config));
    for (const sampleSize of [0, -3, 1.5, 5001]) {
      await expect(createExperiment(t.db, config, { sampleSize, seed: 1, arms })).rejects.toBeInstanceOf(ExperimentRequestError);
    }
    await expect(createExperiment(t.db, config, { sampleSize: 2, seed: 1, arms, creator: "Q999999999" })).rejects.toThrow(/no active work with a downloaded image by "Q999999999"/);
    await expect(createExperiment(t.db, config, { sampleSize: 2, seed: 1, arms, name: "two\nlines" })).rejects.toThrow(/one line/);
  });

  it("draws the same sample for the same seed, and cancels its jobs", async () => {
    const arms = parseArms([{ name: "a", text: "" }, { name: "b", text: "numBeams=1" }], paramsFromConfig(config));
    const one = await createExperiment(t.db, config, { sampleSize: 2, seed: 7, arms });
    const two = await createExperiment(t.db, config, { sampleSize: 2, seed: 7, arms });
    const sample = async (id: number) => (await t.db.experimentWork.findMany({ where: { experimentId: id }, orderBy: { position: "asc" } })).map((w) => w.artworkId);
    expect(await sample(two.experiment.id)).toEqual(await sample(one.experiment.id));
    // Four jobs each: two experiments of the same works and arms are not merged.
    expect(await t.db.job.count({ where: { experimentId: { in: [one.experiment.id, two.experiment.id] }, status: "QUEUED" } })).toBe(8);
    expect(await cancelExperiment(t.db, one.experiment.id)).toBe(4);
    expect((await experimentReport(t.db, one.experiment.id)).state).toBe("CANCELLED");
    expect((await experimentReport(t.db, two.experiment.id)).state).toBe("RUNNING");
    await cancelExperiment(t.db, two.experiment.id);
  });

  it("cancelling a finished experiment changes nothing: its report stays finished", async () => {
    const arms = parseArms([{ name: "a", text: "" }, { name: "b", text: "numBeams=1" }], paramsFromConfig(config));
    const done = await createExperiment(t.db, config, { sampleSize: 2, seed: 3, arms });
    await t.db.job.updateMany({ where: { experimentId: done.experiment.id }, data: { status: "SUCCEEDED", finishedAt: new Date() } });
    expect((await experimentReport(t.db, done.experiment.id)).state).toBe("FINISHED");
    expect(await cancelExperiment(t.db, done.experiment.id)).toBe(0);
    expect((await experimentReport(t.db, done.experiment.id)).state).toBe("FINISHED");
    expect((await t.db.experiment.findUniqueOrThrow({ where: { id: done.experiment.id } })).cancelledAt).toBeNull();
  });
});
