import { describe, expect, it } from "vitest";
import { cronProblem, nextCronMatch, timeZoneProblem } from "../../src/jobs/cron.js";

describe("cron checks", () => {
  it("accepts what node-cron runs: five fields, six with seconds, names, steps, wrapping ranges", () => {
    for (const ok of ["0 3 * * *", "*/5 * * * * *", "0 3 * * MON-FRI", "15,45 */2 1 1-6 *", "0 22-2 * * *", "0 0 29 2 *"]) expect(cronProblem(ok), ok).toBeNull();
  });
  it("names what it refuses: words, too few or too many fields, out-of-range values, dates that never come", () => {
    for (const bad of ["bad", "every night", "0 3 * *", "1 2 3 4 5 6 7", "61 * * * *", "0 25 * * *", "0 3 32 * *", "0 3 * 13 *", "0 3 * * 8", "*/0 * * * *", "0 0 30 2 *", " "]) {
      expect(cronProblem(bad), bad).toMatch(/cron expression|never fires/);
    }
  });
  it("accepts IANA time zones and refuses others", () => {
    for (const ok of ["UTC", "Europe/Madrid", "America/Argentina/Buenos_Aires"]) expect(timeZoneProblem(ok), ok).toBeNull();
    for (const bad of ["Mars/Base", "Europe/Atlantis", "GMT+25", " "]) expect(timeZoneProblem(bad), bad).toMatch(/IANA time zone/);
  });
  it("finds the next match in the time zone", () => {
    const now = new Date("2026-11-27T10:00:00Z");
    expect(nextCronMatch("0 3 * * *", "Europe/Madrid", now).toISOString()).toBe("2026-11-28T02:00:00.000Z");
  });
});
