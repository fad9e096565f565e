/**
 * IEEE 754 binary16 ("fp16") conversion, the one implementation: the synthetic model writer
 * stores fp16 weights with it and the engine converts fp16 tensors (pixel values in, logits out)
 * with it. Node 20 has no Float16Array.
 */

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/**
 * binary32 → binary16 bits, rounding to nearest even (carries into the exponent, overflow becomes
 * ±Infinity); NaN stays NaN (a quiet NaN), subnormals are kept, below half the smallest subnormal
 * becomes a signed zero.
 */
export function toFloat16Bits(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

/** binary16 bits → number (exact: every binary16 value is a binary64 value). */
export function fromFloat16Bits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** A float32 array as binary16 bits (an ort "float16" tensor's data). */
export function toFloat16Array(values: ArrayLike<number>): Uint16Array {
  // A plain loop: Uint16Array.from with a map function ran about 20 times slower.
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = toFloat16Bits(values[i]!);
  return out;
}

/** Every binary16 value as float32, by bit pattern (exact): 256 KB, built on first use. */
let float16Values: Float32Array | null = null;

function float16Table(): Float32Array {
  if (!float16Values) {
    const table = new Float32Array(0x10000);
    for (let h = 0; h < 0x10000; h++) table[h] = fromFloat16Bits(h);
    float16Values = table;
  }
  return float16Values;
}

/**
 * binary16 bits (an ort "float16" tensor's data) as float32, from `start` up to `end`. A table
 * lookup per value: Float32Array.from with fromFloat16Bits took 43 ms for one decode step's logits
 * (4 beams x 49,280) on the 2-core machine, against about 2 ms.
 */
export function fromFloat16Array(bits: ArrayLike<number>, start = 0, end = bits.length): Float32Array {
  if (!(0 <= start && start <= end && end <= bits.length)) throw new RangeError(`float16 range ${start}..${end} is outside 0..${bits.length}`);
  const table = float16Table();
  const out = new Float32Array(end - start);
  for (let i = start; i < end; i++) out[i - start] = table[bits[i]! & 0xffff]!;
  return out;
}
