import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_EMBED_MODEL_DTYPE, loadConfig } from "../../src/config.js";
import { pullCommand } from "../../src/describe/models/commands.js";
import { embedVocabulary, SEMANTIC_GROUPS, synthEmbedModel } from "../../src/describe/models/embed-synth.js";
import {
  type Embedder,
  EmbedderBusyError,
  EmbedderFailedError,
  EmbedModelMissingError,
  EmbedRequestError,
  MAX_PENDING_QUERIES,
  nextQueryBatch,
  openEmbedder,
  QUERY_BATCH_CHARS,
  QUERY_BATCH_MAX,
  QueryEmbedder,
} from "../../src/embed/embedder.js";
import { embedConventions, embedOnnxFile } from "../../src/embed/model-files.js";
import { NonFiniteEmbeddingError, unitLength } from "../../src/embed/model.js";
import { startLocalHub } from "../support/hub.js";

const MODEL_ID = "artdesc/synth-embed-tiny";
let modelDir: string;
let embedder: Embedder;
const config = () => loadConfig({ MODEL_DIR: modelDir, EMBED_MODEL_ID: MODEL_ID });
const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);

beforeAll(async () => {
  modelDir = mkdtempSync(join(tmpdir(), "artdesc-embed-model-"));
  synthEmbedModel({ preset: "embed-tiny", outDir: join(modelDir, MODEL_ID) });
  embedder = await openEmbedder(config());
});
afterAll(async () => {
  await embedder?.close();
  rmSync(modelDir, { recursive: true, force: true });
});

describe("the synthetic semantic model, through transformers.js in the embedding thread", () => {
  it("has the real file layout and e5's conventions", () => {
    const cfg = JSON.parse(readFileSync(join(modelDir, MODEL_ID, "config.json"), "utf8"));
    expect(cfg.model_type).toBe("bert");
    expect(embedder.info).toEqual({ modelId: MODEL_ID, revision: "synth-embed-tiny-seed1", dims: 128, dtype: DEFAULT_EMBED_MODEL_DTYPE });
    expect(embedConventions(MODEL_ID).queryPrefix).toBe("query: ");
    expect(embedConventions("Xenova/multilingual-e5-small")).toMatchObject({ queryPrefix: "query: ", passagePrefix: "passage: ", pooling: "mean" });
    expect(embedConventions("Xenova/all-MiniLM-L6-v2").queryPrefix).toBe("");
  });

  it("puts texts that share a word group close, though they share no word", async () => {
    const [q, near, far, spanish] = await embedder.embed(["hound", "A dog sleeps by the fire.", "A ship on a calm sea.", "Un perro duerme."], "passage");
    expect(Math.hypot(...q!)).toBeCloseTo(1, 5);
    expect(dot(q!, near!)).toBeGreaterThan(0.5);
    expect(dot(q!, far!)).toBeLessThan(0.3);
    expect(dot(q!, spanish!)).toBeGreaterThan(0.5);
    const [squad, fusil, dogs] = await embedder.embed(["firing squad"], "query").then(async ([a]) => [a, ...(await embedder.embed(["Fusilamientos del tres de mayo", "Dogs"], "passage"))]);
    expect(dot(squad!, fusil!)).toBeGreaterThan(dot(squad!, dogs!) + 0.3);
  });

  it("tokenizes every group word as one token (accents stripped), so the design holds through the real tokenizer", () => {
    const tokens = new Set(embedVocabulary().tokens);
    for (const words of Object.values(SEMANTIC_GROUPS)) for (const w of words) expect(tokens.has(w)).toBe(true);
  });

  it("is refused with the command that installs it when absent", async () => {
    const err = await openEmbedder(loadConfig({ MODEL_DIR: modelDir })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmbedModelMissingError);
    expect((err as EmbedModelMissingError).command).toBe("artdesc models pull --embed");
    const q = new QueryEmbedder(loadConfig({ MODEL_DIR: modelDir }));
    expect(q.available()).toBe(false);
  });

  it("keeps query vectors in its LRU: the second ask costs no inference", async () => {
    let opened = 0;
    let calls = 0;
    const q = new QueryEmbedder(config(), async (c) => {
      opened++;
      const e = await openEmbedder(c);
      return { info: e.info, close: () => e.close(), embed: (t, k) => (calls++, e.embed(t, k)) };
    });
    const a = await q.embedQuery("hound");
    const b = await q.embedQuery("hound");
    expect(b).toBe(a);
    expect([opened, calls]).toEqual([1, 1]);
    await q.embedQuery("cur");
    expect(calls).toBe(2);
    await q.close();
  });
});

describe("a model that fails to load", () => {
  it("is not loaded again for every search: for retryMs each query gets the load's error at once, then a search tries again", async () => {
    let opened = 0;
    let broken = true;
    const q = new QueryEmbedder(
      config(),
      async (c) => {
        opened++;
        if (broken) throw new EmbedderFailedError("the model's files are corrupt");
        return openEmbedder(c);
      },
      200,
    );
    for (const text of ["dog", "hound", "cur"]) await expect(q.embedQuery(text)).rejects.toThrow(/corrupt/);
    expect(opened).toBe(1);
    broken = false;
    await new Promise((r) => setTimeout(r, 250));
    expect((await q.embedQuery("dog")).length).toBe(128);
    expect(opened).toBe(2);
    await q.close();
  });
});

describe("a flood of distinct queries", () => {
  it("is bounded: past MAX_PENDING_QUERIES waiting embeddings a query is refused with EmbedderBusyError; the same text waits for the one in flight", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let calls = 0;
    const q = new QueryEmbedder(config(), async (c) => {
      const e = await openEmbedder(c);
      return { info: e.info, close: () => e.close(), embed: async (t, k) => (calls++, await gate, e.embed(t, k)) };
    });
    await q.warm();
    const waiting = Array.from({ length: MAX_PENDING_QUERIES }, (_, i) => q.embedQuery(`dog number ${i}`));
    const again = q.embedQuery("dog number 0");
    await expect(q.embedQuery("one too many")).rejects.toBeInstanceOf(EmbedderBusyError);
    release();
    const vectors = await Promise.all(waiting);
    expect(await again).toBe(vectors[0]);
    // Asked in one turn of the event loop, they went in runs of QUERY_BATCH_MAX.
    expect(calls).toBe(Math.ceil(MAX_PENDING_QUERIES / QUERY_BATCH_MAX));
    // Room again once they are done.
    expect((await q.embedQuery("one too many")).length).toBe(128);
    await q.close();
  });
});

describe("unitLength (normalisation as torch.nn.functional.normalize)", () => {
  it("scales to length 1, keeps a zero vector zero (not NaN), and refuses a non-finite one", () => {
    expect([...unitLength(Float32Array.from([3, 4]))]).toEqual([Math.fround(0.6), Math.fround(0.8)]);
    expect([...unitLength(new Float32Array(4))]).toEqual([0, 0, 0, 0]);
    expect(() => unitLength(Float32Array.from([1, Number.NaN]))).toThrow(NonFiniteEmbeddingError);
    expect(() => unitLength(Float32Array.from([Number.POSITIVE_INFINITY, 0]))).toThrow(NonFiniteEmbeddingError);
  });
});

describe("queries that wait for the thread go together in the next run", () => {
  it("sends the queries asked in one turn of the event loop in one run, and a later one in a run of its own", async () => {
    const runs: string[][] = [];
    const q = new QueryEmbedder(config(), async (c) => {
      const e = await openEmbedder(c);
      return { info: e.info, close: () => e.close(), embed: (t, k) => (runs.push([...t]), e.embed(t, k)) };
    });
    await q.warm();
    await Promise.all([q.embedQuery("dog"), q.embedQuery("hound"), q.embedQuery("cur")]);
    await q.embedQuery("firing squad");
    expect(runs).toEqual([["dog", "hound", "cur"], ["firing squad"]]);
    await q.close();
  });

  it("picks the first waiting text, then later ones while the batch stays within its count and padded characters", () => {
    expect(nextQueryBatch([])).toEqual([]);
    expect(nextQueryBatch([4000, 10, 10])).toEqual([0]);
    expect(nextQueryBatch([10, 4000, 10, 12])).toEqual([0, 2, 3]);
    expect(nextQueryBatch(Array(40).fill(20))).toEqual([...Array(QUERY_BATCH_MAX).keys()]);
    // 100 chars x 10 fits 1,024; an 11th would pad 11 x 100.
    expect(nextQueryBatch(Array(20).fill(100))).toHaveLength(Math.floor(QUERY_BATCH_CHARS / 100));
    expect(nextQueryBatch([10, 300, 300, 300, 300])).toEqual([0, 1, 2]);
  });

  it("gives each query the vector it gets alone, and fails only the text the model refused", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const runs: string[][] = [];
    const q = new QueryEmbedder(config(), async (c) => {
      const e = await openEmbedder(c);
      return {
        info: e.info,
        close: () => e.close(),
        embed: async (t, k) => {
          runs.push([...t]);
          await gate;
          if (t.includes("refused")) throw new EmbedRequestError("the model refused a text");
          return e.embed(t, k);
        },
      };
    });
    await q.warm();
    const texts = ["perro", "hound near the sea", "execution by firing squad", "refused", "a king on his throne", "dog"];
    const asked = texts.map((t) => q.embedQuery(t).then((v) => v, (err: unknown) => err));
    release();
    const got = await Promise.all(asked);
    // Asked in one turn, all went in one run; the model refused it, so each text went alone.
    expect(runs[0]).toEqual(texts);
    expect(runs.slice(1)).toEqual(texts.map((t) => [t]));
    expect(got[3]).toBeInstanceOf(EmbedRequestError);
    for (const [i, t] of texts.entries()) {
      if (t === "refused") continue;
      const [alone] = await embedder.embed([t], "query");
      const v = got[i] as Float32Array;
      expect(v).toBeInstanceOf(Float32Array);
      for (let j = 0; j < v.length; j++) expect(v[j]).toBeCloseTo(alone![j]!, 5);
    }
    await q.close();
  });
});

describe("models pull --embed", () => {
  it("downloads the embedding model from a hub, resumably, into MODEL_DIR/EMBED_MODEL_ID", async () => {
    const hub = await startLocalHub(MODEL_ID, join(modelDir, MODEL_ID));
    const target = mkdtempSync(join(tmpdir(), "artdesc-embed-pull-"));
    try {
      // The file EMBED_MODEL_DTYPE picks by default (model_quantized.onnx).
      const file = embedOnnxFile(DEFAULT_EMBED_MODEL_DTYPE);
      hub.cutOnce.set(file, 1000);
      let out = "";
      const ok = await pullCommand(
        { embed: true },
        loadConfig({ MODEL_DIR: target, EMBED_MODEL_ID: MODEL_ID, MODEL_HUB_URL: hub.url, HTTP_MAX_RETRIES: "2" }),
        { write: (s: string) => (out += s) },
      );
      expect(ok).toBe(true);
      expect(out).toContain(`Pulling embedding model artdesc/synth-embed-tiny@main (${DEFAULT_EMBED_MODEL_DTYPE})`);
      expect(readFileSync(join(target, MODEL_ID, file)).equals(readFileSync(join(modelDir, MODEL_ID, file)))).toBe(true);
      // The cut transfer resumed with a Range request.
      expect(hub.requests.some((r) => r.path.endsWith(file) && r.range === "bytes=1000-")).toBe(true);
      const e = await openEmbedder(loadConfig({ MODEL_DIR: target, EMBED_MODEL_ID: MODEL_ID }));
      expect(e.info.dims).toBe(128);
      await e.close();
    } finally {
      await hub.close();
      rmSync(target, { recursive: true, force: true });
    }
  });
});
