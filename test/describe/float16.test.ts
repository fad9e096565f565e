import { describe, expect, it } from "vitest";
import { fromFloat16Array, fromFloat16Bits, toFloat16Array, toFloat16Bits } from "../../src/describe/float16.js";

describe("float16 conversion (the one converter: model writer and engine)", () => {
  it("round-trips representable values and rounds to nearest even", () => {
    for (const v of [0, 1, -2, 0.5, 65504, 6.103515625e-5, 5.960464477539063e-8]) expect(fromFloat16Bits(toFloat16Bits(v))).toBe(v);
    expect(toFloat16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie, rounds to even
    expect(toFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(toFloat16Bits(1e6)).toBe(0x7c00);
    expect(Number.isNaN(fromFloat16Bits(toFloat16Bits(NaN)))).toBe(true);
  });

  it("rounds rather than truncates, carrying into the exponent", () => {
    // 1 + 0.75 ulp rounds up (truncation would give 0x3c00).
    expect(toFloat16Bits(1 + 0.75 * 2 ** -10)).toBe(0x3c01);
    // Just below 2: every mantissa bit set rounds up into the exponent.
    expect(toFloat16Bits(2 - 2 ** -12)).toBe(0x4000);
    // 65519 rounds down to the largest finite value, 65520 up to Infinity.
    expect(toFloat16Bits(65519)).toBe(0x7bff);
    expect(toFloat16Bits(65520)).toBe(0x7c00);
  });

  it("keeps NaN a NaN, infinities and signed zero, and subnormals", () => {
    expect(toFloat16Bits(NaN) & 0x7c00).toBe(0x7c00);
    expect(toFloat16Bits(NaN) & 0x3ff).not.toBe(0);
    expect(toFloat16Bits(Infinity)).toBe(0x7c00);
    expect(toFloat16Bits(-Infinity)).toBe(0xfc00);
    expect(toFloat16Bits(-0)).toBe(0x8000);
    expect(toFloat16Bits(2 ** -24)).toBe(0x0001);
    expect(toFloat16Bits(3 * 2 ** -24)).toBe(0x0003);
    expect(toFloat16Bits(2 ** -26)).toBe(0); // below half the smallest subnormal
    expect(fromFloat16Bits(0x03ff)).toBe(1023 * 2 ** -24);
  });

  it("converts arrays both ways", () => {
    const values = Float32Array.from([0, -1.5, 3.140625, NaN, -Infinity]);
    const back = fromFloat16Array(toFloat16Array(values));
    expect(Array.from(back.subarray(0, 3))).toEqual([0, -1.5, 3.140625]);
    expect(Number.isNaN(back[3])).toBe(true);
    expect(back[4]).toBe(-Infinity);
  });

  it("converts every binary16 bit pattern to the value fromFloat16Bits gives, and a range of them alone", () => {
    const bits = Uint16Array.from({ length: 0x10000 }, (_, h) => h);
    const all = fromFloat16Array(bits);
    for (let h = 0; h < 0x10000; h++) {
      const want = Math.fround(fromFloat16Bits(h));
      if (Number.isNaN(want)) expect(Number.isNaN(all[h])).toBe(true);
      else expect(Object.is(all[h], want)).toBe(true);
    }
    const range = fromFloat16Array(bits, 0x3c00, 0x3c04);
    expect(Array.from(range)).toEqual([1, 1 + 2 ** -10, 1 + 2 ** -9, 1 + 3 * 2 ** -10]);
    expect(fromFloat16Array(bits, 5, 5).length).toBe(0);
    expect(() => fromFloat16Array(bits, 0x10000 - 1, 0x10000 + 1)).toThrow(RangeError);
    expect(() => fromFloat16Array(bits, 6, 5)).toThrow(RangeError);
  });

  it("writes each value's toFloat16Bits into the array", () => {
    const values = Float32Array.from({ length: 4096 }, (_, i) => Math.sin(i) * 2 ** ((i % 40) - 25));
    const bits = toFloat16Array(values);
    for (let i = 0; i < values.length; i++) expect(bits[i]).toBe(toFloat16Bits(values[i]!));
    expect(toFloat16Array([]).length).toBe(0);
  });
});
