import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";
import { GENERATION_DEFAULTS } from "../../src/generation/params.js";
import { DEFAULT_FALLBACK_LADDER, fallbackReason, formatStep, LadderError, ladderProblems, MAX_LADDER_STEPS, parseLadder } from "../../src/review/ladder.js";
import { runCli } from "../support/cli.js";

describe("parseLadder", () => {
  it("reads steps of name=value pairs with the CLI's value syntax", () => {
    expect(parseLadder("numBeams=4; numBeams=4,maxNewTokens=256,repetitionPenalty=1.2 ;earlyStopping=never,imageSplitting=yes")).toEqual([
      { numBeams: 4 },
      { numBeams: 4, maxNewTokens: 256, repetitionPenalty: 1.2 },
      { earlyStopping: "never", imageSplitting: true },
    ]);
    expect(parseLadder("none")).toEqual([]);
    expect(parseLadder(" NONE ")).toEqual([]);
  });

  it("the default ladder is valid: more beams, then image tiles, then a repetition penalty", () => {
    const ladder = parseLadder(DEFAULT_FALLBACK_LADDER);
    expect(ladder).toHaveLength(3);
    expect(ladder[0]).toEqual({ numBeams: 8 });
    expect(ladder[1]).toMatchObject({ imageSplitting: true });
    expect(ladder[2]).toMatchObject({ repetitionPenalty: 1.2 });
    expect(ladderProblems(ladder, GENERATION_DEFAULTS)).toEqual([]);
    expect(loadConfig({}).REVIEW_FALLBACK_LADDER).toEqual(ladder);
  });

  it("refuses each bad step with the same ranges as the generation parameters", () => {
    const bad: [string, RegExp][] = [
      ["numBeams=9", /step 1: numBeams must be an integer between 1 and 8/],
      ["numBeams=4;numBeams=0", /step 2: numBeams must be an integer between 1 and 8/],
      ["numBeams=2.5", /step 1: numBeams must be an integer/],
      ["repetitionPenalty=3.5", /repetitionPenalty must be a number between 0.5 and 3/],
      ["maxNewTokens=abc", /maxNewTokens must be an integer/],
      ["earlyStopping=sometimes", /earlyStopping must be true, false or never/],
      ["beams=4", /"beams" is not a generation parameter/],
      ["numBeams", /"numBeams" is not name=value/],
      ["=4", /"=4" is not name=value/],
      ["numBeams=4;;numBeams=5", /step 2 is empty/],
      ["", /step 1 is empty/],
      ["numBeams=4,numBeams=5", /numBeams is given twice/],
      ["prompt=Describe it", /prompt cannot be set/],
      [Array.from({ length: MAX_LADDER_STEPS + 1 }, () => "numBeams=2").join(";"), /at most 10/],
    ];
    for (const [text, problem] of bad) {
      expect(() => parseLadder(text), text.slice(0, 40)).toThrow(LadderError);
      expect(() => parseLadder(text), text.slice(0, 40)).toThrow(problem);
    }
  });

  it("checks each step over the configured defaults (minNewTokens above the max that applies)", () => {
    expect(ladderProblems(parseLadder("numBeams=2;minNewTokens=300"), GENERATION_DEFAULTS)).toEqual([
      "step 2: minNewTokens must not exceed maxNewTokens (256) (got 300)",
    ]);
    expect(ladderProblems(parseLadder("minNewTokens=300,maxNewTokens=512"), GENERATION_DEFAULTS)).toEqual([]);
  });

  it("formats a step canonically and names the job's reason", () => {
    expect(formatStep({ repetitionPenalty: 1.2, numBeams: 8 })).toBe("numBeams=8,repetitionPenalty=1.2");
    expect(formatStep({})).toBe("");
    expect(fallbackReason(2, 3)).toBe("fallback 2/3 after rejection");
  });
});

describe("REVIEW_FALLBACK_LADDER in the configuration", () => {
  it("a bad ladder is a ConfigError naming the variable and the step", () => {
    for (const [value, problem] of [
      ["numBeams=100", /REVIEW_FALLBACK_LADDER="numBeams=100": step 1: numBeams must be an integer between 1 and 8/],
      ["numBeams=4;colour=red", /REVIEW_FALLBACK_LADDER="numBeams=4;colour=red": step 2: "colour" is not a generation parameter/],
      ["minNewTokens=200", /REVIEW_FALLBACK_LADDER="minNewTokens=200": step 1: minNewTokens must not exceed maxNewTokens \(100\)/],
    ] as const) {
      const env = { REVIEW_FALLBACK_LADDER: value, DESCRIBE_MAX_NEW_TOKENS: "100" };
      expect(() => loadConfig(env)).toThrow(ConfigError);
      expect(() => loadConfig(env)).toThrow(problem);
    }
  });

  it("a bad API_TOKEN_NAME is refused too", () => {
    expect(() => loadConfig({ API_TOKEN_NAME: "two\nlines" })).toThrow(/API_TOKEN_NAME/);
    expect(() => loadConfig({ API_TOKEN_NAME: "x".repeat(201) })).toThrow(/API_TOKEN_NAME/);
    expect(loadConfig({ API_TOKEN_NAME: " Ana " }).API_TOKEN_NAME).toBe("Ana");
  });

  it("artdesc exits with status 2 and names the variable", async () => {
    const cli = runCli(["status"], { REVIEW_FALLBACK_LADDER: "numBeams=4;numBeams=99" });
    const { code } = await cli.exit;
    expect(code).toBe(2);
    expect(cli.output()).toMatch(/REVIEW_FALLBACK_LADDER="numBeams=4;numBeams=99": step 2: numBeams must be an integer between 1 and 8/);
  }, 30_000);
});
