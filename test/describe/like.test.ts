import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { encodeGlobalID } from "@pothos/plugin-relay";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Config, loadConfig } from "../../src/config.js";
import { describeLike, LIKE_EXIT } from "../../src/describe/command.js";
import { openDescriber } from "../../src/describe/describer.js";
import { setHumanDescription } from "../../src/jobs/descriptions.js";
import { enqueueDescribe } from "../../src/jobs/queue.js";
import { startWorker } from "../../src/jobs/worker.js";
import { createGraphqlApp } from "../../src/graphql/yoga.js";
import { createLogger } from "../../src/log.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { addDescription, makeArtwork } from "../support/factories.js";
import { gql } from "../support/graphql.js";
import { createTinyModel, type TinyModel } from "../support/models.js";

/**
 * `artdesc describe --like`: descriptions written by the real worker (tiny synthetic model, worker
 * thread) in a batch of 2 with prompt context (prompts of different lengths) are run again alone
 * and give the same tokens; a changed image, other model files, a person's text or a row without
 * reproduction data are refused without running anything.
 */

let t: TestDb;
let model: TinyModel;
let other: TinyModel;
let config: Config;
const described: { id: number; imageFile: string; tokens: number[] }[] = [];
const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

async function picture(file: string, seed: number) {
  const w = 90 + seed * 30;
  const data = Buffer.alloc(w * 70 * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * (7 + seed) + seed * 61) % 251;
  mkdirSync(dirname(file), { recursive: true });
  await sharp(data, { raw: { width: w, height: 70, channels: 3 } }).jpeg().toFile(file);
}

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) } };
}

beforeAll(async () => {
  t = await createTestDb();
  model = createTinyModel({ dtype: "fp32" });
  other = createTinyModel({ dtype: "fp32", seed: 2 });
  config = loadConfig({
    IMAGE_DIR: join(t.dir, "images"),
    WORKER_BATCH: "2",
    DESCRIBE_PROMPT_CONTEXT: "true",
    DESCRIBE_NUM_BEAMS: "2",
    DESCRIBE_MAX_NEW_TOKENS: "24",
    DESCRIBE_TARGET_WORDS: "0",
    HEARTBEAT_INTERVAL_S: "0.2",
    HEARTBEAT_STALE_S: "5",
  });
  const jobs = [];
  for (const [i, title] of ["Ass", "The Sleep of Reason Produces Monsters, plate 43 of Los Caprichos"].entries()) {
    const a = await makeArtwork(t.db, { title });
    const image = await t.db.image.findFirstOrThrow({ where: { artworkId: a.id } });
    const file = join(config.IMAGE_DIR, image.localPath!);
    await picture(file, i + 1);
    await t.db.image.update({ where: { id: image.id }, data: { localHash: sha256(file) } });
    jobs.push((await enqueueDescribe(t.db, config, { artworkId: a.id, imageId: image.id })).job);
  }
  const worker = await startWorker({
    db: t.db,
    config,
    log: createLogger("silent"),
    openDescriber: () => openDescriber(config, { modelDir: model.dir }),
    pollMs: 20,
    progressEveryMs: 20,
  });
  try {
    const until = Date.now() + 60_000;
    while ((await t.db.job.count({ where: { status: "SUCCEEDED" } })) < 2) {
      if (Date.now() > until) throw new Error(`jobs did not finish: ${JSON.stringify(await t.db.job.findMany())}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await worker.stop();
  }
  for (const job of jobs) {
    const d = await t.db.description.findUniqueOrThrow({ where: { jobId: job.id }, include: { image: true } });
    described.push({ id: d.id, imageFile: join(config.IMAGE_DIR, d.image!.localPath!), tokens: JSON.parse(d.generatedTokenIds!) as number[] });
  }
}, 120_000);
afterAll(async () => {
  await t?.close();
  model?.remove();
  other?.remove();
});

describe("reproduction data written by the worker", () => {
  it("stores the exact instruction, the flags, the batch size, the image hash and the model files", async () => {
    const rows = await t.db.description.findMany({ where: { id: { in: described.map((d) => d.id) } }, include: { image: true, artwork: true } });
    for (const d of rows) {
      expect(d).toMatchObject({ cleanMarkdown: true, decoding: "beam", batchSize: 2, imageHash: d.image!.localHash, prompt: config.DESCRIBE_PROMPT });
      // The templated text as it went to the processor: the facts, the instruction, one image placeholder.
      expect(d.instruction).toContain(`Title: ${d.artwork.title}.`);
      expect(d.instruction).toContain(config.DESCRIBE_PROMPT);
      expect(d.instruction!.match(/<image>/g)).toHaveLength(1);
      const files = JSON.parse(d.modelFiles!) as Record<string, string>;
      expect(files["onnx/decoder_model_merged.onnx"]).toBe(sha256(join(model.dir, "onnx/decoder_model_merged.onnx")));
      const timings = JSON.parse(d.timings!) as Record<string, number>;
      expect(timings.totalMs).toBeLessThanOrEqual(timings.batchMs! + 1);
    }
    expect(rows[0]!.promptTokens).not.toBe(rows[1]!.promptTokens);
  });

  it("shows them in GraphQL as Description.reproduction", async () => {
    const yoga = createGraphqlApp({ db: t.db, config });
    const r = await gql(
      yoga,
      `query($id: ID!) { node(id: $id) { ... on Description {
        reproduction { instruction cleanMarkdown decoding batchSize imageHash modelFiles { path sha256 } }
        outcome { timings { totalMs batchMs } } } } }`,
      { id: encodeGlobalID("Description", described[0]!.id) },
    );
    expect(r.errors).toBeUndefined();
    const rep = r.data.node.reproduction;
    expect(rep).toMatchObject({ cleanMarkdown: true, decoding: "beam", batchSize: 2, imageHash: sha256(described[0]!.imageFile) });
    expect(rep.instruction).toContain("Title: Ass.");
    expect(rep.modelFiles).toContainEqual({ path: "onnx/decoder_model_merged.onnx", sha256: sha256(join(model.dir, "onnx/decoder_model_merged.onnx")) });
    expect(r.data.node.outcome.timings.batchMs).toBeGreaterThan(0);
    const human = await setHumanDescription(t.db, (await t.db.artwork.findFirstOrThrow()).id, "A curator's text.");
    const h = await gql(yoga, `query($id: ID!) { node(id: $id) { ... on Description { reproduction { decoding } } } }`, { id: encodeGlobalID("Description", human.id) });
    expect(h.data.node.reproduction).toBeNull();
  });
});

describe("describe --like", () => {
  it("runs each description of a batch of 2 again alone and gets the same tokens", async () => {
    for (const d of described) {
      const c = io();
      const code = await describeLike(config, t.db, String(d.id), { model: model.dir }, c.io);
      expect(c.err.join("\n")).toMatch(new RegExp(`^tokens identical: ${d.tokens.length} tokens, as description ${d.id} \\(made in a batch of 2, run again alone\\)$`));
      expect(code).toBe(LIKE_EXIT.identical);
      expect(c.out[0]).toBe((await t.db.description.findUniqueOrThrow({ where: { id: d.id } })).text);
    }
  });

  it("takes a global id and prints JSON with --json", async () => {
    const c = io();
    const code = await describeLike(config, t.db, encodeGlobalID("Description", described[1]!.id), { model: model.dir, json: true }, c.io);
    expect(code).toBe(LIKE_EXIT.identical);
    const o = JSON.parse(c.out[0]!) as Record<string, unknown>;
    expect(o).toMatchObject({ descriptionId: described[1]!.id, identical: true, firstDifference: null, storedBatchSize: 2, batchSize: 1 });
    expect(o.generatedTokenIds).toEqual(described[1]!.tokens);
  });

  it("refuses when the image file changed since, without loading the model", async () => {
    const file = described[0]!.imageFile;
    const original = readFileSync(file);
    await picture(file, 9);
    try {
      const c = io();
      expect(await describeLike(config, t.db, String(described[0]!.id), { model: join(t.dir, "no-model-here") }, c.io)).toBe(LIKE_EXIT.notReproducible);
      expect(c.err.join("\n")).toMatch(/^not reproducible: description \d+: image differs: .* has sha256 [0-9a-f]{12}… now, [0-9a-f]{12}… then$/);
      expect(c.out).toEqual([]);
    } finally {
      writeFileSync(file, original);
    }
  });

  it("refuses when the model files differ, naming them", async () => {
    const c = io();
    expect(await describeLike(config, t.db, String(described[0]!.id), { model: other.dir }, c.io)).toBe(LIKE_EXIT.notReproducible);
    const msg = c.err.join("\n");
    expect(msg).toContain("model files differ: onnx/decoder_model_merged.onnx: sha256 differs");
    expect(msg).toContain("model files differ: onnx/vision_encoder.onnx: sha256 differs");
    expect(msg).not.toContain("config.json");
    expect(c.out).toEqual([]);
  });

  it("refuses, as not reproducible here, when the model folder has no model", async () => {
    const c = io();
    expect(await describeLike(config, t.db, String(described[0]!.id), { model: join(t.dir, "no-model-here") }, c.io)).toBe(LIKE_EXIT.notReproducible);
    expect(c.err.join("\n")).toMatch(/^not reproducible: description \d+: its model cannot be loaded here: .*missing/i);
    expect(c.out).toEqual([]);
  });

  it("refuses a person's text, a row without reproduction data, and ids that name no description", async () => {
    const art = await t.db.artwork.findFirstOrThrow();
    const human = await setHumanDescription(t.db, art.id, "Written by a curator.");
    const old = await addDescription(t.db, art.id, "A model text from before reproduction data.");
    const cases: [string, RegExp][] = [
      [String(human.id), /it is a person's text/],
      [String(old.id), /written before reproduction data was stored \(no instruction, cleanMarkdown, imageHash, modelFiles/],
      ["999999", /no such description/],
      ["0", /not a description id/],
      ["-1", /not a description id/],
      ["12abc", /not a description id/],
      [encodeGlobalID("Artwork", art.id), /not a description id/],
      ["9".repeat(400), /not a description id/],
    ];
    for (const [id, pattern] of cases) {
      const c = io();
      // Something that is no description id at all is bad usage (2); the rest cannot be reproduced (3).
      expect(await describeLike(config, t.db, id, { model: model.dir }, c.io)).toBe(/not a description id/.test(pattern.source) ? LIKE_EXIT.badUsage : LIKE_EXIT.notReproducible);
      expect(c.err.join("\n")).toMatch(pattern);
      expect(c.err.join("\n").length).toBeLessThan(400);
    }
  });
});
