import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { afterAll, describe, expect, it } from "vitest";
import { generateWeight, GraphBuilder, type Quantization, type WeightInit, writeOnnxModel } from "../../../src/describe/models/onnx-builder.js";
import {
  dequantizeBlockwise4,
  dequantizeInt8,
  quantizeBlockwise4,
  quantizeInt8,
  roundHalfEven,
  transposeBytes,
} from "../../../src/describe/models/quantize.js";

const dir = mkdtempSync(join(tmpdir(), "artdesc-quant-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SEED = 3;
const INIT: WeightInit = { normal: 0.5 };
let files = 0;

/** A one-MatMul graph y = x W, W [k, n] written with the given storage; returns a session. */
async function matmulSession(k: number, n: number, quant: Quantization, layout: "kn" | "nk" = "kn", float: "float32" | "float16" = "float32") {
  const g = new GraphBuilder("matmul", float, quant);
  const x = g.toCompute(g.input("x", float, ["rows", k]));
  g.emit("y", g.matmul(x, "w", k, n, INIT, layout), ["rows", n]);
  const file = join(dir, `m${files++}.onnx`);
  writeOnnxModel(file, g, { seed: SEED, opset: 17, producer: "test" });
  return ort.InferenceSession.create(file);
}

/** x [rows, k] times w [k, n], in float64. */
function reference(x: Float32Array, w: Float32Array, rows: number, k: number, n: number): Float64Array {
  const y = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let i = 0; i < k; i++) s += x[r * k + i]! * w[i * n + j]!;
    y[r * n + j] = s;
  }
  return y;
}

const input = (rows: number, k: number) => Float32Array.from({ length: rows * k }, (_, i) => Math.sin(i * 0.77) * (1 + (i % 5)));
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

describe("quantizeBlockwise4 (MatMulNBits weights)", () => {
  it("keeps each value within half a step (one step where code 15 clips), and the extreme exactly", () => {
    const k = 70; // not a whole number of blocks: the last one is padded
    const n = 3;
    const w = generateWeight(SEED, "w", k * n, INIT);
    const q = quantizeBlockwise4(w, k, n, "kn", 32);
    expect(q.blocks).toBe(3);
    expect(q.packed.length).toBe(n * 3 * 16);
    const back = dequantizeBlockwise4(q, k, n, 32);
    for (let kk = 0; kk < k; kk++) for (let col = 0; col < n; col++) {
      const scale = Math.abs(q.scales[col * 3 + Math.floor(kk / 32)]!);
      // Codes run -8..7 steps: a value of the extreme's opposite sign beyond 7.5 steps clips to 7.
      const clipped = Math.abs(w[kk * n + col]! / scale) > 7.5;
      expect(Math.abs(back[kk * n + col]! - w[kk * n + col]!)).toBeLessThanOrEqual((clipped ? scale : scale / 2) + 1e-6);
    }
    // The value of largest magnitude in a block is code 0: (0 - 8) * scale reproduces it.
    const block0 = Array.from({ length: 32 }, (_, kk) => w[kk * n]!);
    const extreme = block0.reduce((a, b) => (Math.abs(b) > Math.abs(a) ? b : a));
    const at = block0.indexOf(extreme);
    expect(q.scales[0]).toBeCloseTo(extreme / -8, 6);
    expect((q.packed[at >> 1]! >> (at & 1 ? 4 : 0)) & 0x0f).toBe(0);
    expect(back[at * n]).toBeCloseTo(extreme, 6);
  });

  it("reads the [N, K] layout as B transposed", () => {
    const k = 64;
    const n = 5;
    const nk = generateWeight(SEED, "t", k * n, INIT);
    const kn = new Float32Array(k * n);
    for (let col = 0; col < n; col++) for (let kk = 0; kk < k; kk++) kn[kk * n + col] = nk[col * k + kk]!;
    const a = quantizeBlockwise4(nk, k, n, "nk", 32);
    const b = quantizeBlockwise4(kn, k, n, "kn", 32);
    expect(Buffer.from(a.packed).equals(Buffer.from(b.packed))).toBe(true);
    expect(Array.from(a.scales)).toEqual(Array.from(b.scales));
  });

  it("rejects a block size MatMulNBits cannot use", () => {
    expect(() => quantizeBlockwise4(new Float32Array(64), 64, 1, "kn", 24)).toThrow(/power of 2/);
    expect(() => quantizeBlockwise4(new Float32Array(63), 64, 1, "kn", 32)).toThrow(/63 values/);
  });
});

describe("MatMulNBits in onnxruntime matches the dequantised weights", () => {
  for (const [k, n] of [
    [96, 24],
    [80, 7], // K padded to 96 inside the last block
  ] as const) {
    it(`accuracy_level 0 (float compute), K=${k} N=${n}: output = x times the dequantised weights`, async () => {
      const rows = 3;
      const session = await matmulSession(k, n, { kind: "q4", blockSize: 32, accuracyLevel: 0 });
      const x = input(rows, k);
      const y = (await session.run({ x: new ort.Tensor("float32", x, [rows, k]) })).y!.data as Float32Array;
      const w = generateWeight(SEED, "w", k * n, INIT);
      const q = quantizeBlockwise4(w, k, n, "kn", 32);
      const expected = reference(x, dequantizeBlockwise4(q, k, n, 32), rows, k, n);
      expect(maxAbsDiff(y, expected)).toBeLessThan(1e-4);
      // Against the float weights: within sum |x| * (one step) per output, and not exact.
      const exact = reference(x, w, rows, k, n);
      for (let r = 0; r < rows; r++) for (let j = 0; j < n; j++) {
        let bound = 0;
        for (let i = 0; i < k; i++) bound += Math.abs(x[r * k + i]!) * Math.abs(q.scales[j * q.blocks + Math.floor(i / 32)]!);
        expect(Math.abs(y[r * n + j]! - exact[r * n + j]!)).toBeLessThanOrEqual(bound + 1e-4);
      }
      expect(maxAbsDiff(y, exact)).toBeGreaterThan(1e-3);
      await session.release();
    });
  }

  it("accuracy_level 4 (int8 activations): within the activation's int8 step of the level-0 result", async () => {
    const k = 96;
    const n = 24;
    const rows = 2;
    const x = input(rows, k);
    const w = generateWeight(SEED, "w", k * n, INIT);
    const dq = dequantizeBlockwise4(quantizeBlockwise4(w, k, n, "kn", 32), k, n, 32);
    const session = await matmulSession(k, n, { kind: "q4", blockSize: 32, accuracyLevel: 4 });
    const y = (await session.run({ x: new ort.Tensor("float32", x, [rows, k]) })).y!.data as Float32Array;
    const expected = reference(x, dq, rows, k, n);
    // Each block of x is quantised to int8 with step max|x_block| / 127: error <= half a step times sum |w|.
    for (let r = 0; r < rows; r++) for (let j = 0; j < n; j++) {
      let bound = 0;
      for (let b = 0; b < k / 32; b++) {
        let amax = 0;
        let wsum = 0;
        for (let i = b * 32; i < (b + 1) * 32; i++) {
          amax = Math.max(amax, Math.abs(x[r * k + i]!));
          wsum += Math.abs(dq[i * n + j]!);
        }
        bound += ((amax / 127) * wsum) / 2;
      }
      expect(Math.abs(y[r * n + j]! - expected[r * n + j]!)).toBeLessThanOrEqual(bound * 1.01 + 1e-4);
    }
    await session.release();
  });

  it("the transposed layout (the tied head) computes x times B, B = table^T", async () => {
    const k = 64;
    const n = 10;
    const session = await matmulSession(k, n, { kind: "q4", blockSize: 32, accuracyLevel: 0 }, "nk");
    const x = input(1, k);
    const y = (await session.run({ x: new ort.Tensor("float32", x, [1, k]) })).y!.data as Float32Array;
    const q = quantizeBlockwise4(generateWeight(SEED, "w", k * n, INIT), k, n, "nk", 32);
    expect(maxAbsDiff(y, reference(x, dequantizeBlockwise4(q, k, n, 32), 1, k, n))).toBeLessThan(1e-4);
    await session.release();
  });

  it("q4f16: fp16 activations and scales give the fp32 result within fp16 precision", async () => {
    const k = 64;
    const n = 8;
    const { toFloat16Array, fromFloat16Array } = await import("../../../src/describe/float16.js");
    const x = fromFloat16Array(toFloat16Array(input(1, k)));
    const session = await matmulSession(k, n, { kind: "q4", blockSize: 32, accuracyLevel: 0 }, "kn", "float16");
    const out = (await session.run({ x: new ort.Tensor("float16", toFloat16Array(x), [1, k]) })).y!;
    expect(out.type).toBe("float16");
    const y = fromFloat16Array(out.data as Uint16Array);
    const expected = reference(x, dequantizeBlockwise4(quantizeBlockwise4(generateWeight(SEED, "w", k * n, INIT), k, n, "kn", 32), k, n, 32), 1, k, n);
    const scale = Math.max(...Array.from(expected, Math.abs));
    expect(maxAbsDiff(y, expected)).toBeLessThan(scale * 5e-3);
    await session.release();
  });
});

describe("8-bit dynamic quantisation (MatMulInteger)", () => {
  it("quantizes int8 symmetrically and uint8 over [min(x, 0), max(x, 0)]", () => {
    const v = Float32Array.of(-1.27, 0, 0.5, 1);
    const s = quantizeInt8(v, "int8");
    expect(s.scale).toBeCloseTo(0.01, 9);
    expect(s.zeroPoint).toBe(0);
    expect(Array.from(s.data, (b) => (b << 24) >> 24)).toEqual([-127, 0, 50, 100]);
    const u = quantizeInt8(v, "uint8");
    expect(u.scale).toBeCloseTo(2.27 / 255, 9);
    expect(u.zeroPoint).toBe(Math.round(1.27 / (2.27 / 255)));
    expect(maxAbsDiff(dequantizeInt8(u, "uint8"), v)).toBeLessThanOrEqual(u.scale / 2 + 1e-7);
    expect(roundHalfEven(2.5)).toBe(2);
    expect(roundHalfEven(-2.5)).toBe(-2);
    expect(roundHalfEven(3.5)).toBe(4);
    expect(Array.from(transposeBytes(Uint8Array.of(1, 2, 3, 4, 5, 6), 2, 3))).toEqual([1, 4, 2, 5, 3, 6]);
  });

  for (const weights of ["int8", "uint8"] as const) {
    it(`MatMulInteger with ${weights} weights equals the integer product of DynamicQuantizeLinear(x) and the weights, scaled`, async () => {
      const k = 48;
      const n = 12;
      const rows = 2;
      const x = input(rows, k);
      const session = await matmulSession(k, n, { kind: "int8", weights });
      const y = (await session.run({ x: new ort.Tensor("float32", x, [rows, k]) })).y!.data as Float32Array;
      // DynamicQuantizeLinear: uint8 over [min(x, 0), max(x, 0)], one scale for the whole tensor.
      const xq = quantizeInt8(x, "uint8");
      const w = quantizeInt8(generateWeight(SEED, "w", k * n, INIT), weights);
      const expected = reference(dequantizeInt8(xq, "uint8"), dequantizeInt8(w, weights), rows, k, n);
      expect(maxAbsDiff(y, expected)).toBeLessThan(1e-3);
      const exact = reference(x, generateWeight(SEED, "w", k * n, INIT), rows, k, n);
      const scale = Math.max(...Array.from(exact, Math.abs));
      expect(maxAbsDiff(y, exact)).toBeLessThan(scale * 0.05);
      await session.release();
    });
  }
});
