import { writeFileSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { describeFiles } from "../../src/describe/command.js";
import { createTinyModel, type TinyModel } from "../support/models.js";

let model: TinyModel;
let good: string;
let bad: string;

beforeAll(async () => {
  model = createTinyModel({ dtype: "fp32" });
  good = join(model.root, "good.png");
  await sharp({ create: { width: 70, height: 50, channels: 3, background: { r: 10, g: 120, b: 200 } } }).png().toFile(good);
  bad = join(model.root, "bad.png");
  writeFileSync(bad, "definitely not a png");
});
afterAll(() => model.remove());

describe("artdesc describe", () => {
  it("prints one JSON object per image and reports a bad file without stopping the others", async () => {
    const out: string[] = [];
    const err: string[] = [];
    const failures = await describeFiles(
      loadConfig({}),
      [good, bad, good],
      { model: model.dir, params: { numBeams: 2, maxNewTokens: 16 }, batch: 2, json: true },
      { out: (l) => out.push(l), err: (l) => err.push(l) },
    );
    expect(failures).toBe(1);
    expect(err).toEqual([expect.stringMatching(new RegExp(`^Cannot use image ${bad.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: `))]);
    const objs = out.map((l) => JSON.parse(l) as Record<string, any>);
    expect(objs.map((o) => o.file)).toEqual([good, good]);
    expect(objs[0]).toMatchObject({ params: { numBeams: 2, maxNewTokens: 16 }, model: { modelId: "artdesc/synth-tiny" } });
    expect(objs[0]!.generatedTokenIds).toEqual(objs[1]!.generatedTokenIds);
    for (const k of ["text", "rawText", "finishReason", "trimmed", "prompt", "promptTokens", "imageTokens", "generatedTokens", "sequenceScore", "timings"]) {
      expect(objs[0]).toHaveProperty(k);
    }
  });
});
