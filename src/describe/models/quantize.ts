/**
 * The weight quantisers behind the synthetic `int8` / `uint8` / `quantized` and `q4` / `q4f16`
 * exports: pure functions over one weight's float values, following what onnxruntime's Python
 * quantisation tools write into Hugging Face's ONNX repositories.
 *
 * - 8 bits: `quantize_dynamic` (onnxruntime/python/tools/quantization, as transformers.js's
 *   scripts/quantize.py calls it: per tensor, no reduced range). Signed weights are symmetric in
 *   [-127, 127] with zero point 0; unsigned ones are asymmetric over [min(x, 0), max(x, 0)].
 * - 4 bits: `MatMul4BitsQuantizer` (symmetric, the default there), which calls MLAS's
 *   MlasQuantizeBlockwise: per output column, blocks of `blockSize` along K; the value of largest
 *   magnitude in a block maps to -8, scale = that value / -8, q = clamp(round(x / scale) + 8, 0, 15);
 *   no zero-point input (MatMulNBits then assumes 8). Packed as MatMulNBits reads B:
 *   [N][blocks][blockSize / 2] bytes, element 2i in the low nibble, 2i + 1 in the high one.
 */

export type Int8Type = "int8" | "uint8";

export interface QuantizedTensor {
  /** The quantised values, one byte each (int8 as two's complement). */
  data: Uint8Array;
  scale: number;
  zeroPoint: number;
}

/** numpy's rounding (half to even), which onnxruntime's Python quantiser uses. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Per-tensor 8-bit quantisation of a weight, as `quantize_dynamic` stores it. */
export function quantizeInt8(values: Float32Array, type: Int8Type): QuantizedTensor {
  let min = 0;
  let max = 0;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const data = new Uint8Array(values.length);
  if (type === "int8") {
    const absMax = Math.max(-min, max);
    const scale = absMax > 0 ? (2 * absMax) / 254 : 1;
    for (let i = 0; i < values.length; i++) data[i] = Math.max(-127, Math.min(127, roundHalfEven(values[i]! / scale))) & 0xff;
    return { data, scale, zeroPoint: 0 };
  }
  const scale = max - min > 0 ? (max - min) / 255 : 1;
  const zeroPoint = Math.max(0, Math.min(255, roundHalfEven(-min / scale)));
  for (let i = 0; i < values.length; i++) data[i] = Math.max(0, Math.min(255, roundHalfEven(values[i]! / scale) + zeroPoint));
  return { data, scale, zeroPoint };
}

/** The float value of each quantised element: (q - zeroPoint) * scale. */
export function dequantizeInt8(q: QuantizedTensor, type: Int8Type): Float32Array {
  const out = new Float32Array(q.data.length);
  for (let i = 0; i < out.length; i++) {
    const v = type === "int8" ? (q.data[i]! << 24) >> 24 : q.data[i]!;
    out[i] = (v - q.zeroPoint) * q.scale;
  }
  return out;
}

/** A row-major [rows, cols] byte matrix transposed to [cols, rows]. */
export function transposeBytes(data: Uint8Array, rows: number, cols: number): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c]!;
  return out;
}

export interface Blockwise4 {
  /** MatMulNBits input B: [N, blocks, blockSize / 2] bytes. */
  packed: Uint8Array;
  /** MatMulNBits scales: [N * blocks]. */
  scales: Float32Array;
  blocks: number;
}

/**
 * 4-bit blockwise quantisation of a MatMul weight B of shape [K, N]. `layout` says how `values`
 * holds it: "kn" row-major [K, N] (a MatMul initializer), "nk" row-major [N, K] (B transposed,
 * as a tied embedding table is stored). K is padded with zeros to whole blocks.
 */
export function quantizeBlockwise4(values: Float32Array, k: number, n: number, layout: "kn" | "nk", blockSize: number): Blockwise4 {
  if (values.length !== k * n) throw new Error(`quantizeBlockwise4: ${values.length} values for [${k}, ${n}]`);
  if (blockSize < 16 || blockSize & (blockSize - 1)) throw new Error(`quantizeBlockwise4: block size ${blockSize} must be a power of 2, at least 16`);
  const blocks = Math.ceil(k / blockSize);
  const blob = blockSize / 2;
  const packed = new Uint8Array(n * blocks * blob);
  const scales = new Float32Array(n * blocks);
  const at = layout === "kn" ? (kk: number, nn: number) => values[kk * n + nn]! : (kk: number, nn: number) => values[nn * k + kk]!;
  const q = new Uint8Array(blockSize);
  for (let col = 0; col < n; col++) {
    for (let b = 0; b < blocks; b++) {
      const start = b * blockSize;
      const end = Math.min(k, start + blockSize);
      let extreme = 0;
      for (let kk = start; kk < end; kk++) {
        const v = at(kk, col);
        if (Math.abs(v) > Math.abs(extreme)) extreme = v;
      }
      const scale = Math.fround(extreme / -8);
      const inv = scale !== 0 ? 1 / scale : 0;
      for (let i = 0; i < blockSize; i++) {
        const v = start + i < end ? at(start + i, col) : 0;
        q[i] = Math.max(0, Math.min(15, Math.round(v * inv + 8)));
      }
      scales[col * blocks + b] = scale;
      const base = (col * blocks + b) * blob;
      for (let i = 0; i < blob; i++) packed[base + i] = q[2 * i]! | (q[2 * i + 1]! << 4);
    }
  }
  return { packed, scales, blocks };
}

/** The weight B [K, N] (row-major) that MatMulNBits computes with: (q - 8) * scale. */
export function dequantizeBlockwise4(q: Blockwise4, k: number, n: number, blockSize: number): Float32Array {
  const out = new Float32Array(k * n);
  const blob = blockSize / 2;
  for (let col = 0; col < n; col++) {
    for (let kk = 0; kk < k; kk++) {
      const b = Math.floor(kk / blockSize);
      const i = kk % blockSize;
      const byte = q.packed[(col * q.blocks + b) * blob + (i >> 1)]!;
      const nibble = i & 1 ? byte >> 4 : byte & 0x0f;
      out[kk * n + col] = (nibble - 8) * q.scales[col * q.blocks + b]!;
    }
  }
  return out;
}
