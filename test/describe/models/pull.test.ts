import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { checkModelFolder, defaultDtypes, readRevision } from "../../../src/describe/models/contract.js";
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

  it("fails on a size mismatch and keeps nothing of that file", async () => {
    const full = statSync(join(model.dir, DECODER)).size;
    hub.lieSize.set(DECODER, full + 10);
    await expect(pull()).rejects.toThrow(`${DECODER}: the server sends ${full} bytes, its HEAD said ${full + 10}; size mismatch`);
    const onnxDir = join(modelDir, MODEL_ID, "onnx");
    expect(readdirSync(onnxDir).filter((f) => f.startsWith("decoder_model_merged"))).toEqual([]);
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
