import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import onnxProto from "onnx-proto";
import * as ort from "onnxruntime-node";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/config.js";
import { pullCommand } from "../../../src/describe/models/commands.js";
import { checkModelFolder, defaultDtypes, readRevision, resolveModelFiles, REVISION_FILE } from "../../../src/describe/models/contract.js";
import { progressPrinter } from "../../../src/describe/models/progress.js";
import { fileUrl, type PullProgress, pullModel } from "../../../src/describe/models/pull.js";
import { startLocalHub, type LocalHub } from "../../support/hub.js";
import { createTinyModel, type TinyModel } from "../../support/models.js";

const MODEL_ID = "HuggingFaceTB/SmolVLM-tiny-test";
const DECODER = "onnx/decoder_model_merged.onnx";
let model: TinyModel;
let hub: LocalHub;
let modelDir: string;

beforeAll(async () => {
  model = createTinyModel();
  hub = await startLocalHub(MODEL_ID, model.dir);
});
afterAll(async () => {
  await hub.close();
  model.remove();
});
beforeEach(() => {
  modelDir = mkdtempSync(join(tmpdir(), "artdesc-pull-"));
  hub.requests.length = 0;
  hub.cutOnce.clear();
  hub.lieSize.clear();
  hub.lieHash.clear();
  hub.stallOnce.clear();
  return () => rmSync(modelDir, { recursive: true, force: true });
});

const pull = (extra: { onProgress?: (e: PullProgress) => void; dtype?: "fp32" | "fp16" } = {}) =>
  pullModel({
    hubUrl: hub.url,
    modelId: MODEL_ID,
    revision: "main",
    dtypes: defaultDtypes("cpu"),
    modelDir,
    ...extra,
    ...(extra.dtype ? { dtypes: { vision_encoder: extra.dtype, embed_tokens: extra.dtype, decoder_model_merged: extra.dtype } } : {}),
  });

const same = (file: string) => readFileSync(join(modelDir, MODEL_ID, file)).equals(readFileSync(join(model.dir, file)));

describe("pullModel from a local hub", () => {
  it("downloads the files for the dtypes, byte for byte, and records the resolved commit", async () => {
    const events: PullProgress[] = [];
    const result = await pull({ onProgress: (e) => events.push(e) });
    const dir = join(modelDir, MODEL_ID);
    expect(result.dir).toBe(dir);
    expect(result.commit).toBe(hub.commit);
    expect(checkModelFolder(dir, "fp32")).toEqual([]);
    for (const f of ["config.json", "tokenizer.json", "onnx/vision_encoder.onnx", DECODER]) expect(same(f)).toBe(true);
    expect(existsSync(join(dir, "onnx/decoder_model_merged_fp16.onnx"))).toBe(false);
    expect(readdirSync(join(dir, "onnx")).some((f) => f.endsWith(".part"))).toBe(false);
    expect(readRevision(dir)).toMatchObject({ model: MODEL_ID, revision: "main", commit: hub.commit, source: "hub", dtypes: ["fp32"] });
    expect(events).toContainEqual({ kind: "absent", file: "chat_template.json" });
    expect(events.filter((e) => e.kind === "done").map((e) => e.kind === "done" && e.file)).toContain(DECODER);
    // After the first answer names the commit, every file comes from that commit.
    const resolves = hub.requests.filter((r) => r.path.includes("/resolve/"));
    expect(resolves[0]!.path).toContain("/resolve/main/");
    expect(resolves.slice(1).every((r) => r.path.includes(`/resolve/${hub.commit}/`))).toBe(true);
  });

  it("skips complete files on a second run", async () => {
    await pull();
    hub.requests.length = 0;
    const result = await pull();
    expect(result.files.every((f) => f.skipped)).toBe(true);
    expect(hub.requests.filter((r) => r.method === "GET")).toEqual([]);
  });

  it("resumes an interrupted download with a Range request", async () => {
    const full = statSync(join(model.dir, DECODER)).size;
    hub.cutOnce.set(DECODER, 100_000);
    await expect(pull()).rejects.toThrow(/decoder_model_merged\.onnx: download interrupted after \d+ bytes .*run pull again to resume/);
    const onnxDir = join(modelDir, MODEL_ID, "onnx");
    const part = readdirSync(onnxDir).find((f) => f.endsWith(".part"));
    expect(part).toBe(`decoder_model_merged.onnx.${hub.commit.slice(0, 12)}.part`);
    const partial = statSync(join(onnxDir, part!)).size;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(full);

    hub.requests.length = 0;
    const events: PullProgress[] = [];
    await pull({ onProgress: (e) => events.push(e) });
    expect(same(DECODER)).toBe(true);
    const gets = hub.requests.filter((r) => r.method === "GET" && r.path === `/cdn/${DECODER}`);
    expect(gets).toEqual([{ method: "GET", path: `/cdn/${DECODER}`, range: `bytes=${partial}-` }]);
    expect(events).toContainEqual({ kind: "start", file: DECODER, total: full, resumedFrom: partial });
    // Files finished before the cut were not fetched again.
    expect(hub.requests.some((r) => r.method === "GET" && r.path.endsWith("vision_encoder.onnx"))).toBe(false);
  });

  it("retries an interrupted file by resuming it, within one run", async () => {
    hub.cutOnce.set(DECODER, 50_000);
    const events: PullProgress[] = [];
    await pullModel({ hubUrl: hub.url, modelId: MODEL_ID, revision: "main", dtypes: defaultDtypes("cpu"), modelDir, retries: 1, onProgress: (e) => events.push(e) });
    expect(same(DECODER)).toBe(true);
    expect(events.filter((e) => e.kind === "retry")).toEqual([
      { kind: "retry", file: DECODER, attempt: 1, reason: expect.stringMatching(/download interrupted after \d+ bytes/) },
    ]);
    expect(hub.requests.filter((r) => r.path === `/cdn/${DECODER}` && r.method === "GET").map((r) => r.range)).toEqual([undefined, expect.stringMatching(/^bytes=\d+-$/)]);
  });

  it("aborts a stalled transfer after the idle timeout and keeps the part", async () => {
    hub.stallOnce.set(DECODER, 30_000);
    await expect(
      pullModel({ hubUrl: hub.url, modelId: MODEL_ID, revision: "main", dtypes: defaultDtypes("cpu"), modelDir, idleTimeoutMs: 300 }),
    ).rejects.toThrow(/decoder_model_merged\.onnx: download interrupted after 30000 bytes \(no data for 300 ms\)/);
    await pull();
    expect(same(DECODER)).toBe(true);
    expect(hub.requests.filter((r) => r.path === `/cdn/${DECODER}` && r.method === "GET").at(-1)!.range).toBe("bytes=30000-");
  });

  it("fails on a size mismatch and keeps nothing of that file", async () => {
    const full = statSync(join(model.dir, DECODER)).size;
    hub.lieSize.set(DECODER, full + 10);
    await expect(pull()).rejects.toThrow(`${DECODER}: the server sends ${full} bytes, its HEAD said ${full + 10}; size mismatch`);
    const onnxDir = join(modelDir, MODEL_ID, "onnx");
    expect(readdirSync(onnxDir).filter((f) => f.startsWith("decoder_model_merged"))).toEqual([]);
  });

  it("checks each LFS file's sha256 against the hub's: a mismatch keeps nothing of that file, and a damaged kept file is fetched again", async () => {
    const wrong = "0".repeat(64);
    hub.lieHash.set(DECODER, wrong);
    await expect(pull()).rejects.toThrow(new RegExp(`${DECODER}: its sha256 is [0-9a-f]{64}, the hub says ${wrong}; nothing kept`));
    const onnxDir = join(modelDir, MODEL_ID, "onnx");
    expect(readdirSync(onnxDir).filter((f) => f.startsWith("decoder_model_merged"))).toEqual([]);
    hub.lieHash.clear();
    await pull();
    expect(same(DECODER)).toBe(true);
    // A bit flipped on disk, same size: the next pull reads it, finds it wrong, and fetches it again.
    const path = join(modelDir, MODEL_ID, DECODER);
    const bytes = readFileSync(path);
    bytes[bytes.length >> 1]! ^= 1;
    writeFileSync(path, bytes);
    hub.requests.length = 0;
    const again = await pull();
    expect(again.files.find((f) => f.file === DECODER)).toMatchObject({ skipped: false });
    expect(same(DECODER)).toBe(true);
    expect(hub.requests.filter((r) => r.method === "GET" && r.path === `/cdn/${DECODER}`)).toHaveLength(1);
  });

  it("names the missing file and URL when the hub lacks a dtype", async () => {
    rmSync(join(modelDir), { recursive: true, force: true });
    await expect(
      pullModel({
        hubUrl: hub.url,
        modelId: MODEL_ID,
        revision: "main",
        dtypes: { vision_encoder: "fp32", embed_tokens: "fp32", decoder_model_merged: "q4" },
        modelDir,
      }),
    ).rejects.toThrow(`onnx/decoder_model_merged_q4.onnx: not found at ${fileUrl(hub.url, MODEL_ID, hub.commit, "onnx/decoder_model_merged_q4.onnx")}`);
  });

  it("pulls fp16 files when asked", async () => {
    await pull({ dtype: "fp16" });
    expect(checkModelFolder(join(modelDir, MODEL_ID), "fp16")).toEqual([]);
    expect(same("onnx/decoder_model_merged_fp16.onnx")).toBe(true);
  });
});

/**
 * An embed_tokens graph whose table lives in an external data file, as large exports store their
 * weights; written with onnx-proto directly since synth keeps weights inline.
 */
function writeExternalEmbed(dir: string, location = "embed_tokens.onnx_data"): void {
  const { onnx } = onnxProto;
  const table = Float32Array.from({ length: 300 * 64 }, (_, i) => Math.sin(i) * 0.02);
  writeFileSync(join(dir, "onnx/embed_tokens.onnx_data"), new Uint8Array(table.buffer));
  const dim = (d: number | string) => (typeof d === "number" ? { dimValue: d } : { dimParam: d });
  const vi = (name: string, elemType: number, dims: (number | string)[]) => ({ name, type: { tensorType: { elemType, shape: { dim: dims.map(dim) } } } });
  const bytes = onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: "", version: 17 }],
    graph: {
      name: "embed_tokens",
      node: [{ opType: "Gather", input: ["table", "input_ids"], output: ["inputs_embeds"], attribute: [{ name: "axis", type: 2, i: 0 }] }],
      initializer: [
        {
          name: "table",
          dims: [300, 64],
          dataType: 1,
          dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
          externalData: [
            { key: "location", value: location },
            { key: "offset", value: "0" },
            { key: "length", value: String(table.byteLength) },
          ],
        },
      ],
      input: [vi("input_ids", 7, ["batch_size", "sequence_length"])],
      output: [vi("inputs_embeds", 1, ["batch_size", "sequence_length", 64])],
    },
  }).finish();
  writeFileSync(join(dir, "onnx/embed_tokens.onnx"), bytes);
}

describe("pullModel and files from other places", () => {
  it("refuses a graph whose external data names a file outside the model folder, and writes nothing there", async () => {
    const source = join(model.root, "climbing");
    cpSync(model.dir, source, { recursive: true });
    writeExternalEmbed(source, "../../../escaped.txt");
    const other = await startLocalHub(MODEL_ID, source);
    try {
      await expect(pullModel({ hubUrl: other.url, modelId: MODEL_ID, revision: "main", dtypes: defaultDtypes("cpu"), modelDir })).rejects.toThrow(
        /onnx\/embed_tokens\.onnx names external data outside the model folder \("\.\.\/\.\.\/\.\.\/escaped\.txt"\): refused/,
      );
      expect(other.requests.some((r) => r.path.includes("escaped"))).toBe(false);
      expect(existsSync(join(modelDir, "escaped.txt"))).toBe(false);
      expect(existsSync(join(dirname(modelDir), "escaped.txt"))).toBe(false);
    } finally {
      await other.close();
      rmSync(source, { recursive: true, force: true });
    }
  });

  it("a pull cut short, then the repository moved on: nothing of the first commit is kept, and the folder is not loaded in between", async () => {
    // The second commit: same sizes, other bytes (as a push of retrained weights would be).
    const moved = join(model.root, "moved");
    cpSync(model.dir, moved, { recursive: true });
    const tokenizerConfig = join(moved, "tokenizer_config.json");
    const text = readFileSync(tokenizerConfig, "utf8");
    const changed = text.replace(/"(\w)/, (_m, c: string) => `"${c === "x" ? "y" : "x"}`);
    expect([changed.length, changed !== text]).toEqual([text.length, true]);
    writeFileSync(tokenizerConfig, changed);
    const second = await startLocalHub(MODEL_ID, moved, { commit: "b".repeat(40) });
    try {
      hub.cutOnce.set(DECODER, 100_000);
      await expect(pull()).rejects.toThrow(/download interrupted/);
      const dir = join(modelDir, MODEL_ID);
      expect(readRevision(dir)).toMatchObject({ commit: hub.commit, pending: true });
      const config = loadConfig({ MODEL_DIR: modelDir, MODEL_ID });
      expect(() => resolveModelFiles(config)).toThrow(/a models pull that did not finish/);
      await pullModel({ hubUrl: second.url, modelId: MODEL_ID, revision: "main", dtypes: defaultDtypes("cpu"), modelDir });
      expect(readFileSync(join(dir, "tokenizer_config.json"), "utf8")).toBe(changed);
      expect(readRevision(dir)).toMatchObject({ commit: "b".repeat(40) });
      expect(readRevision(dir)?.pending).toBeUndefined();
      // The first commit's part of the decoder is gone with it.
      expect(readdirSync(join(dir, "onnx")).filter((f) => f.endsWith(".part"))).toEqual([]);
      expect(() => resolveModelFiles(config)).not.toThrow();
    } finally {
      await second.close();
      rmSync(moved, { recursive: true, force: true });
    }
  });

  it("a revision record cut short is an unknown revision: the next pull fetches every file again", async () => {
    await pull();
    const dir = join(modelDir, MODEL_ID);
    writeFileSync(join(dir, REVISION_FILE), '{"model": "Hugging');
    expect(readRevision(dir)).toBeNull();
    const result = await pull();
    expect(result.files.every((f) => !f.skipped)).toBe(true);
    expect(readRevision(dir)).toMatchObject({ commit: hub.commit });
  });
});

describe("pullModel with external weight data", () => {
  it("fetches the data files the graphs name, and the contract requires them", async () => {
    const source = join(model.root, "external");
    cpSync(model.dir, source, { recursive: true });
    writeExternalEmbed(source);
    const session = await ort.InferenceSession.create(join(source, "onnx/embed_tokens.onnx"));
    await session.release();
    const other = await startLocalHub(MODEL_ID, source);
    try {
      const result = await pullModel({ hubUrl: other.url, modelId: MODEL_ID, revision: "main", dtypes: defaultDtypes("cpu"), modelDir });
      expect(result.files.map((f) => f.file)).toContain("onnx/embed_tokens.onnx_data");
      const dir = join(modelDir, MODEL_ID);
      expect(readFileSync(join(dir, "onnx/embed_tokens.onnx_data")).equals(readFileSync(join(source, "onnx/embed_tokens.onnx_data")))).toBe(true);
      expect(checkModelFolder(dir, "fp32")).toEqual([]);
      rmSync(join(dir, "onnx/embed_tokens.onnx_data"));
      expect(checkModelFolder(dir, "fp32")).toEqual(["onnx/embed_tokens.onnx: external data file onnx/embed_tokens.onnx_data missing"]);
    } finally {
      await other.close();
    }
  });
});

describe("artdesc models pull", () => {
  it("pulls MODEL_ID into MODEL_DIR from MODEL_HUB_URL with plain progress lines and checks the contract", async () => {
    const lines: string[] = [];
    const config = loadConfig({ MODEL_HUB_URL: hub.url, MODEL_DIR: modelDir, MODEL_ID, MODEL_DTYPE: "vision_encoder=fp32,embed_tokens=fp16,decoder_model_merged=fp16" });
    const ok = await pullCommand({ revision: hub.commit }, config, { write: (s) => lines.push(s) });
    const text = lines.join("");
    expect(ok).toBe(true);
    expect(text).toContain(`Pulling ${MODEL_ID}@${hub.commit} (vision_encoder=fp32,embed_tokens=fp16,decoder_model_merged=fp16) from ${hub.url}`);
    expect(text).toContain("onnx/decoder_model_merged_fp16.onnx: downloading");
    expect(text).toContain(`commit ${hub.commit}`);
    expect(text).not.toContain("contract:");
  });

  it("rejects a bad --dtype before touching the network", async () => {
    const config = loadConfig({ MODEL_HUB_URL: hub.url, MODEL_DIR: modelDir });
    await expect(pullCommand({ dtype: "fp8" }, config, { write: () => true })).rejects.toThrow(/--dtype="fp8": unknown dtype "fp8"/);
    expect(hub.requests).toEqual([]);
  });
});

describe("progressPrinter", () => {
  it("prints plain lines when not on a terminal", () => {
    const lines: string[] = [];
    const print = progressPrinter({ write: (s) => lines.push(s) });
    print({ kind: "start", file: "a.onnx", total: 2_000_000, resumedFrom: 500_000 });
    for (let r = 500_000; r <= 2_000_000; r += 100_000) print({ kind: "data", file: "a.onnx", received: r, total: 2_000_000 });
    print({ kind: "done", file: "a.onnx", bytes: 2_000_000, skipped: false });
    expect(lines.join("")).toBe(
      [
        "a.onnx: downloading 2.0 MB, resuming at 500.0 kB",
        "a.onnx: 20% (500.0 kB)",
        "a.onnx: 30% (600.0 kB)",
        "a.onnx: 40% (800.0 kB)",
        "a.onnx: 50% (1.0 MB)",
        "a.onnx: 60% (1.2 MB)",
        "a.onnx: 70% (1.4 MB)",
        "a.onnx: 80% (1.6 MB)",
        "a.onnx: 90% (1.8 MB)",
        "a.onnx: done, 2.0 MB",
        "",
      ].join("\n"),
    );
  });

  it("draws a bar on a terminal", () => {
    const out: string[] = [];
    const print = progressPrinter({ write: (s) => out.push(s), isTTY: true, columns: 80 });
    print({ kind: "data", file: "b.onnx", received: 1000, total: 1000 });
    expect(out[0]).toMatch(/^\rb\.onnx \[#+\] 100% 1\.0 kB/);
  });
});
