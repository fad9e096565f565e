import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { openDescriber } from "../../src/describe/describer.js";
import { Engine } from "../../src/describe/engine.js";
import { defaultGenerationParams, type Describer, EngineStoppedError, ImageInputError, ModelMissingError } from "../../src/describe/types.js";
import { ParamOutOfRangeError } from "../../src/generation/params.js";
import { ModelContractError } from "../../src/describe/models/contract.js";
import { modelErrorForReaders } from "../../src/jobs/worker.js";
import { createTinyModel, type TinyModel } from "../support/models.js";

let model: TinyModel;
let describer: Describer;
let image: string;
const config = loadConfig({});
const params = { ...defaultGenerationParams(config), numBeams: 2, maxNewTokens: 48, targetWords: 0 };

beforeAll(async () => {
  model = createTinyModel({ dtype: "fp32" });
  image = join(model.root, "a.png");
  const data = Buffer.alloc(120 * 90 * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37) % 251;
  await sharp(data, { raw: { width: 120, height: 90, channels: 3 } }).png().toFile(image);
  describer = await openDescriber(config, { modelDir: model.dir });
});
afterAll(async () => {
  await describer?.close();
  model.remove();
});

describe("openDescriber (worker thread)", () => {
  it("describes like the engine does in-process, reporting progress per step", async () => {
    const progress: number[] = [];
    const [out] = await describer.describe([{ imagePath: image }], params, { onProgress: (_, n) => progress.push(n) });
    const engine = await Engine.load({ modelDir: model.dir });
    try {
      const [direct] = await engine.describe([{ imagePath: image }], { ...params, cleanMarkdown: config.DESCRIBE_CLEAN_MARKDOWN });
      expect(out!.generatedTokenIds).toEqual(direct!.generatedTokenIds);
      expect(out!.text).toBe(direct!.text);
    } finally {
      await engine.dispose();
    }
    expect(progress.length).toBe(Math.max(...progress));
    expect(describer.model.modelId).toBe("artdesc/synth-tiny");
  });

  it("refuses parameters outside the vocabulary before the model sees them, and stays usable", async () => {
    for (const [bad, field] of [
      [{ ...params, numBeams: 100 }, "numBeams"],
      [{ ...params, minNewTokens: 100, maxNewTokens: 48 }, "minNewTokens"],
      [{ ...params, earlyStopping: "sometimes" }, "earlyStopping"],
    ] as const) {
      const err = await describer.describe([{ imagePath: image }], bad as never).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ParamOutOfRangeError);
      expect((err as ParamOutOfRangeError).field).toBe(field);
    }
    const { cleanMarkdown: _dropped, ...missing } = params;
    expect(await describer.describe([{ imagePath: image }], missing as never).catch((e: unknown) => e)).toBeInstanceOf(ParamOutOfRangeError);
    const [out] = await describer.describe([{ imagePath: image }], { ...params, maxNewTokens: 16 });
    expect(out!.params).toMatchObject({ maxNewTokens: 16, cleanMarkdown: true });
  });

  it("keeps the caller's event loop free while it works", async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 2);
    try {
      await describer.describe([{ imagePath: image }, { imagePath: image }], { ...params, numBeams: 4, imageSplitting: true });
    } finally {
      clearInterval(timer);
    }
    expect(ticks).toBeGreaterThan(3);
  });

  it("stops between steps when the signal aborts, and stays usable", async () => {
    const ctl = new AbortController();
    const reason = new Error("no longer needed");
    let seen = 0;
    const pending = describer.describe([{ imagePath: image }], { ...params, maxNewTokens: 1000, minNewTokens: 1000 }, {
      signal: ctl.signal,
      onProgress: (_, n) => {
        seen = n;
        if (n === 2) ctl.abort(reason);
      },
    });
    await expect(pending).rejects.toBe(reason);
    // 1000 tokens take seconds; the abort lands within a few steps of the second.
    expect(seen).toBeLessThan(1000);
    const [again] = await describer.describe([{ imagePath: image }], params);
    expect(again!.generatedTokens).toBeGreaterThan(0);
  });

  it("drops one input from the batch when its item signal aborts; the other is described as alone", async () => {
    const forty = { ...params, maxNewTokens: 40, minNewTokens: 40 };
    const [alone] = await describer.describe([{ imagePath: image }], forty);
    const drop = new AbortController();
    const seen = new Map<number, number>();
    const outs = await describer.describe([{ imagePath: image }, { imagePath: image }], forty, {
      itemSignals: [undefined, drop.signal],
      onProgress: (i, n) => {
        seen.set(i, n);
        if (i === 1 && n === 2) drop.abort();
      },
    });
    expect(outs[1]).toBeNull();
    expect(seen.get(1)!).toBeLessThan(40);
    expect(seen.get(0)).toBe(40);
    expect(outs[0]!.generatedTokenIds).toEqual(alone!.generatedTokenIds);
    expect(outs[0]!.batchSize).toBe(2);
  });

  it("reports a bad image as an error of that request, of its class, with its reason", async () => {
    const err = await describer.describe([{ imagePath: join(model.root, "nope.jpg") }], params).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageInputError);
    expect(err).toMatchObject({ path: join(model.root, "nope.jpg"), reason: "no such file" });
  });

  it("fails fast with ModelMissingError when the folder lacks the model", async () => {
    await expect(openDescriber(config, { modelDir: join(model.root, "empty") })).rejects.toBeInstanceOf(ModelMissingError);
  });

  it("a model that breaks the ONNX contract fails to open with ModelContractError, its problems listed (they reach the heartbeat's modelError)", async () => {
    const broken = createTinyModel({ dtype: "fp32" });
    try {
      const file = join(broken.dir, "processor_config.json");
      writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, "utf8")), image_seq_len: 7 }));
      const err = await openDescriber(config, { modelDir: broken.dir }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ModelContractError);
      expect((err as ModelContractError).problems).toEqual([expect.stringMatching(/^processor_config.json: image_seq_len 7 != /)]);
      expect(modelErrorForReaders(err)).toMatch(/image_seq_len 7/);
    } finally {
      broken.remove();
    }
  });

  it("refuses work after close() with EngineStoppedError", async () => {
    await describer.close();
    await expect(describer.describe([{ imagePath: image }], params)).rejects.toBeInstanceOf(EngineStoppedError);
  });
});
