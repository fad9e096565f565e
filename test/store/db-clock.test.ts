import { describe, expect, it } from "vitest";
import { CLOCK_NOISE_MS, monotonicTime } from "../../src/store/db-clock.js";

describe("monotonicTime (dbTime's clock)", () => {
  it("holds the last time against a measurement's noise, and follows a real step back", () => {
    expect(monotonicTime(undefined, 1_000)).toBe(1_000);
    expect(monotonicTime(1_000, 1_005)).toBe(1_005);
    // An offset measured again a millisecond lower: a job just queued must not be in the claim's future.
    expect(monotonicTime(1_000, 999)).toBe(1_000);
    expect(monotonicTime(10_000, 10_000 - CLOCK_NOISE_MS + 1)).toBe(10_000);
    // The database's clock was set back by more than the noise: followed.
    expect(monotonicTime(10_000, 10_000 - CLOCK_NOISE_MS)).toBe(10_000 - CLOCK_NOISE_MS);
    expect(monotonicTime(10_000_000, 10_000_000 - 3_600_000)).toBe(6_400_000);
  });
});
