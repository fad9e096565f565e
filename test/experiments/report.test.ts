import { describe, expect, it } from "vitest";
import { checkDepictsMissing } from "../../src/quality/checks/depicts-missing.js";
import type { DepictedItem } from "../../src/quality/types.js";
import {
  buildReport,
  compareArms,
  depictsJudgement,
  experimentState,
  mixedSettings,
  NO_JOBS,
  progressLine,
  renderMarkdown,
  type ReportDescription,
  type ReportInput,
  spread,
} from "../../src/experiments/report.js";

/** Pure report maths: every figure checked against numbers worked out by hand. */

const item = (qid: string, en: string, instanceOf: string[] = []): DepictedItem => ({ qid, labels: { en }, instanceOf });
const DONKEY = item("Q19707", "donkey");
const TREE = item("Q10884", "tree");
const HOUSE = item("Q3947", "house");
const GOYA = item("Q5432", "Francisco Goya", ["Q5"]);

function row(o: Partial<ReportDescription> & Pick<ReportDescription, "arm" | "artworkId">): ReportDescription {
  return { totalMs: 1000, generatedTokens: 10, words: 8, finishReason: "eos", flags: [], risk: 0.1, depicts: null, numBeams: 1, maxNewTokens: 64, ...o };
}

describe("mixed settings in an arm", () => {
  it("names each setting the arm's texts differ in, with how many had each value, and the report says so", () => {
    const alike = { prompt: "Describe it.", numBeams: "4", modelRevision: "r1" };
    const texts = [
      row({ arm: "a", artworkId: 1, settings: alike }),
      row({ arm: "a", artworkId: 2, settings: { ...alike, repetitionPenalty: "1" } }),
      row({ arm: "a", artworkId: 3, settings: { ...alike, prompt: "Describe briefly, in plain prose.", repetitionPenalty: "1.3", modelRevision: "r2" } }),
      row({ arm: "a", artworkId: 4, settings: { ...alike, repetitionPenalty: "1.3", modelRevision: "r2" } }),
    ];
    expect(mixedSettings(texts)).toEqual(['prompt "Describe it." (3) or "Describe briefly, in plain prose." (1)', "modelRevision r1 (2) or r2 (2)", "repetitionPenalty 1 (1) or 1.3 (2)"]);
    expect(mixedSettings(texts.slice(0, 1))).toEqual([]);
    expect(mixedSettings([row({ arm: "a", artworkId: 1 })])).toEqual([]);
  });
});

describe("depictsJudgement reads the stored DEPICTS_MISSING check", () => {
  const judge = (text: string, depicts: DepictedItem[]) => depictsJudgement(checkDepictsMissing({ text, work: { depicts } }).checks);

  it("counts judged and named things, skipping people", () => {
    expect(judge("A donkey under a tree.", [DONKEY, TREE, HOUSE, GOYA])).toEqual({ judged: 3, mentioned: 2 });
    expect(judge("A donkey, a tree and a house.", [DONKEY, TREE, HOUSE])).toEqual({ judged: 3, mentioned: 3 });
    expect(judge("A cat.", [DONKEY, TREE])).toEqual({ judged: 2, mentioned: 0 });
    expect(judge("Donkeys.", [DONKEY])).toEqual({ judged: 1, mentioned: 1 });
  });

  it("is null when nothing could be judged or the check is absent", () => {
    expect(judge("A man.", [GOYA])).toBeNull();
    expect(judge("Anything.", [])).toBeNull();
    expect(depictsJudgement([])).toBeNull();
    expect(depictsJudgement([{ name: "depictsMissing", value: 0.5, detail: "garbled" }])).toBeNull();
    expect(depictsJudgement([{ name: "depictsMissing", value: Number.NaN, detail: "missing: x; 2 judged" }])).toBeNull();
  });
});

describe("spread", () => {
  it("mean and median, odd and even counts", () => {
    expect(spread([])).toBeNull();
    expect(spread([3])).toEqual({ n: 1, mean: 3, median: 3 });
    expect(spread([5, 1, 3])).toEqual({ n: 3, mean: 3, median: 3 });
    expect(spread([4, 1, 10, 2])).toEqual({ n: 4, mean: 4.25, median: 3 });
  });
});

describe("experimentState", () => {
  it("running while anything is queued or running, then finished; cancelled wins", () => {
    expect(experimentState({ ...NO_JOBS, queued: 1 }, null)).toBe("RUNNING");
    expect(experimentState({ ...NO_JOBS, running: 1, succeeded: 3 }, null)).toBe("RUNNING");
    expect(experimentState({ ...NO_JOBS, succeeded: 3, failed: 1 }, null)).toBe("FINISHED");
    expect(experimentState(NO_JOBS, null)).toBe("FINISHED");
    expect(experimentState({ ...NO_JOBS, queued: 2 }, new Date())).toBe("CANCELLED");
  });
});

const input: ReportInput = {
  experiment: { id: 7, name: "greedy | beam", seed: 1, sampleSize: 4, sampled: 3, creator: "Q5432", createdAt: new Date("2026-12-01T12:00:00Z"), cancelledAt: null },
  arms: [
    { name: "a", params: { numBeams: 1 } },
    { name: "b", params: { numBeams: 4, maxNewTokens: 256 } },
  ],
  jobs: { a: { ...NO_JOBS, succeeded: 3 }, b: { ...NO_JOBS, succeeded: 2, failed: 1 } },
  descriptions: [
    row({ arm: "a", artworkId: 1, totalMs: 1000, generatedTokens: 64, words: 40, finishReason: "length", flags: ["TRUNCATED"], risk: 0.6, depicts: { judged: 2, mentioned: 1 } }),
    row({ arm: "a", artworkId: 2, totalMs: 2000, generatedTokens: 20, words: 15, finishReason: "eos", flags: [], risk: 0.2, depicts: { judged: 1, mentioned: 0 } }),
    row({ arm: "a", artworkId: 3, totalMs: 3000, generatedTokens: 30, words: 20, finishReason: "eos", flags: null, risk: null, depicts: null }),
    row({ arm: "b", artworkId: 1, totalMs: 4000, generatedTokens: 50, words: 35, finishReason: "eos", flags: [], risk: 0.3, depicts: { judged: 2, mentioned: 2 }, numBeams: 4, maxNewTokens: 256 }),
    row({ arm: "b", artworkId: 2, totalMs: 8000, generatedTokens: 30, words: 25, finishReason: "eos", flags: ["TOO_SHORT"], risk: 0.1, depicts: { judged: 1, mentioned: 1 }, numBeams: 4, maxNewTokens: 256 }),
  ],
};

describe("buildReport", () => {
  const r = buildReport(input);

  it("puts each arm's figures side by side", () => {
    expect(r.state).toBe("FINISHED");
    expect(r.jobs).toEqual({ ...NO_JOBS, succeeded: 5, failed: 1 });
    const [a, b] = r.arms;
    expect(a).toMatchObject({ name: "a", params: "numBeams=1", total: 3, described: 3, assessed: 2, asRun: ["1 beam, 64 tokens"] });
    expect(a!.secondsPerImage).toEqual({ n: 3, mean: 2, median: 2 });
    expect(a!.generatedTokens).toEqual({ n: 3, mean: 38, median: 30 });
    expect(a!.words!.mean).toBe(25);
    expect(a!.finishReasons.map((f) => [f.reason, f.count])).toEqual([["eos", 2], ["length", 1], ["stop", 0]]);
    expect(a!.finishReasons[1]!.share).toBeCloseTo(1 / 3);
    // Flags are shares of the assessed texts (2 of 3 here).
    expect(a!.flags.find((f) => f.flag === "TRUNCATED")).toEqual({ flag: "TRUNCATED", count: 1, share: 0.5 });
    expect(a!.meanRisk).toBeCloseTo(0.4);
    expect(a!.depictsRecall).toEqual({ recall: 1 / 3, mentioned: 1, judged: 3, texts: 2 });
    expect(b).toMatchObject({ params: "maxNewTokens=256,numBeams=4", total: 3, described: 2, asRun: ["4 beams, 256 tokens"] });
    expect(b!.jobs.failed).toBe(1);
    expect(b!.secondsPerImage).toEqual({ n: 2, mean: 6, median: 6 });
    expect(b!.depictsRecall.recall).toBe(1);
  });

  it("compares each arm with the first on the works both described", () => {
    const [c] = r.comparisons;
    expect(c).toMatchObject({ arm: "b", baseline: "a", pairedWorks: 2 });
    // Works 1 and 2 only: b 6 s against a 1.5 s.
    expect(c!.secondsRatio).toBeCloseTo(4);
    // Risk differences 0.3-0.6 = -0.3 and 0.1-0.2 = -0.1: mean -0.2, sd 0.1414, ci 1.96*0.1414/sqrt 2 = 0.196.
    expect(c!.riskDifference!.mean).toBeCloseTo(-0.2);
    expect(c!.riskDifference!.ci95).toBeCloseTo(0.196, 3);
    // Recall on works judged in both: b 3/3, a 1/3.
    expect(c!.recallDifference).toBeCloseTo(2 / 3);
    // a was cut at max tokens on 1 of 2 paired works, b on none.
    expect(c!.lengthFinishDifference).toBeCloseTo(-0.5);
  });

  it("has nothing to compare before any work is done in both", () => {
    const c = compareArms("b", "a", [row({ arm: "a", artworkId: 1 })]);
    expect(c).toEqual({ arm: "b", baseline: "a", pairedWorks: 0, secondsRatio: null, riskDifference: null, recallDifference: null, lengthFinishDifference: null });
    expect(compareArms("b", "a", [row({ arm: "a", artworkId: 1, risk: 0.5 }), row({ arm: "b", artworkId: 1, risk: 0.25 })]).riskDifference).toEqual({ mean: -0.25, ci95: null, n: 1 });
  });

  it("reports an arm without texts with dashes, not zeros", () => {
    const empty = buildReport({ ...input, jobs: { a: { ...NO_JOBS, queued: 3 }, b: { ...NO_JOBS, queued: 3 } }, descriptions: [] });
    expect(empty.state).toBe("RUNNING");
    expect(empty.arms[0]).toMatchObject({ described: 0, secondsPerImage: null, meanRisk: null, depictsRecall: { recall: null, judged: 0 } });
    const md = renderMarkdown(empty);
    expect(md).toContain("Running: a 0/3, b 0/3 (0 running, 6 queued).");
    expect(md).toMatch(/\| seconds per image \(mean \/ median\) \| – \| – \|/);
    expect(md).toContain("nothing to compare yet");
  });
});

describe("renderMarkdown", () => {
  const md = renderMarkdown(buildReport(input));

  it("is a table with one column per arm and a comparison", () => {
    expect(md).toContain("# Experiment 7: greedy | beam");
    expect(md).toContain("Finished: a 3/3, b 2/3 (1 failed). Sample: 3 works (4 asked for; no more qualified) by Q5432, seed 1");
    expect(md).toContain("| | **a** | **b** |");
    expect(md).toContain("| parameters | `numBeams=1` | `maxNewTokens=256,numBeams=4` |");
    expect(md).toContain("| seconds per image (mean / median) | 2.00 / 2.00 | 6.00 / 6.00 |");
    expect(md).toContain("| finish eos / length / stop | 67% / 33% / 0% | 100% / 0% / 0% |");
    expect(md).toContain("| TRUNCATED | 50% | 0% |");
    expect(md).toContain("| TOO_SHORT | 0% | 50% |");
    expect(md).toContain("| DEPICTS recall (named / judged) | 33% (1/3) | 100% (3/3) |");
    expect(md).toContain("**b against a** on the 2 works both described:");
    expect(md).toContain("- 4.00× the seconds per image");
    expect(md).toContain("- mean risk −0.200 (95% interval ±0.196)");
    expect(md).toContain("- DEPICTS recall +67 points");
    expect(md).toContain('- cut at max tokens (finish "length"): −50 points');
  });

  it("shows mixed settings only when an arm has them, and warns", () => {
    expect(md).not.toContain("mixed settings");
    const mixed = renderMarkdown(
      buildReport({
        ...input,
        descriptions: input.descriptions.map((d, i) => ({ ...d, settings: { repetitionPenalty: d.arm === "a" && i === 0 ? "1.3" : "1" } })),
      }),
    );
    expect(mixed).toContain("| **mixed settings** | repetitionPenalty 1.3 (1) or 1 (2) | none |");
    expect(mixed).toContain("**Mixed settings**: some arm's texts were made with different settings");
  });

  it("keeps a pipe or a line break in a name from breaking the table", () => {
    const odd = renderMarkdown(buildReport({ ...input, arms: [{ name: "a|x", params: {} }, { name: "b", params: {} }], jobs: {}, descriptions: [] }));
    expect(odd).toContain("| | **a\\|x** | **b** |");
    expect(odd).toContain("| parameters | `defaults` | `defaults` |");
  });
});

describe("progressLine", () => {
  it("says done of total per arm, failures, and what is left", () => {
    const arms = [
      { name: "a", jobs: { ...NO_JOBS, succeeded: 12, queued: 37, running: 1 } },
      { name: "b", jobs: { ...NO_JOBS, succeeded: 8, failed: 1, cancelled: 2, queued: 39 } },
    ];
    expect(progressLine(arms, "RUNNING")).toBe("a 12/50, b 8/50 (1 failed, 2 cancelled); 1 running, 76 queued");
    expect(progressLine(arms, "CANCELLED")).toBe("a 12/50, b 8/50 (1 failed, 2 cancelled); cancelled");
  });
});
