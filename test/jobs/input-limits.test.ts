import { describe, expect, it } from "vitest";
import { checkText, TEXT_LIMITS } from "../../src/jobs/input-limits.js";

describe("checkText", () => {
  const prose = TEXT_LIMITS.reason;
  const name = TEXT_LIMITS.author;

  it("trims, keeps newlines and tabs in prose, and turns CR LF into LF", () => {
    expect(checkText("  a\r\n\tb  ", prose)).toEqual({ ok: true, text: "a\n\tb" });
    expect(checkText("Ana Pintora", name)).toEqual({ ok: true, text: "Ana Pintora" });
    expect(checkText("Élodie 😀 Ñ", name)).toEqual({ ok: true, text: "Élodie 😀 Ñ" });
  });

  it("counts the length after trimming", () => {
    expect(checkText(` ${"x".repeat(name.max)} `, name).ok).toBe(true);
    expect(checkText("x".repeat(name.max + 1), name)).toEqual({ ok: false, problem: `must have at most ${name.max} characters (got ${name.max + 1})` });
  });

  it.each([
    ["", prose, /must not be empty/],
    [" \n ", prose, /must not be empty/],
    ["a\u0000b", prose, /U\+0000/],
    ["a\rb", prose, /U\+000D/],
    ["a\u007Fb", prose, /U\+007F/],
    ["a\u009Bb", prose, /U\+009B/],
    ["a\u2066b", prose, /U\+2066/],
    ["a\nb", name, /U\+000A/],
    ["a\tb", name, /U\+0009/],
    ["a\u2029b", name, /U\+2029/],
    ["a\ud800b", prose, /lone surrogate/],
    ["a\udfffb", name, /lone surrogate/],
  ])("refuses %j", (value, limit, problem) => {
    const r = checkText(value, limit);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problem).toMatch(problem);
  });
});
