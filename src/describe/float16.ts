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
  return Uint16Array.from(values as ArrayLike<number>, toFloat16Bits);
}

/** binary16 bits (an ort "float16" tensor's data) as float32. */
export function fromFloat16Array(bits: ArrayLike<number>): Float32Array {
  return Float32Array.from(bits as ArrayLike<number>, fromFloat16Bits);
}
