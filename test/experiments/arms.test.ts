import { describe, expect, it } from "vitest";
import { ArmError, decodeArms, encodeArms, formatArm, parseArm, parseArms, splitArmOption } from "../../src/experiments/arms.js";
import { drawSample, parseSeed } from "../../src/experiments/sample.js";
import { GENERATION_DEFAULTS } from "../../src/generation/params.js";

const D = GENERATION_DEFAULTS;
const arm = (text: string, name = "a") => parseArm({ name, text }, D);

describe("arms", () => {
  it("reads name=value pairs, JSON (with a prompt) and defaults", () => {
    expect(arm("numBeams=1").params).toEqual({ numBeams: 1 });
    expect(arm(" numBeams=4 , maxNewTokens=256 ").params).toEqual({ numBeams: 4, maxNewTokens: 256 });
    expect(arm("imageSplitting=yes,earlyStopping=never").params).toEqual({ imageSplitting: true, earlyStopping: "never" });
    expect(arm('{"prompt": "Describe it, briefly; in English.", "numBeams": 2}').params).toEqual({ prompt: "Describe it, briefly; in English.", numBeams: 2 });
    expect(arm("defaults").params).toEqual({});
    expect(arm("").params).toEqual({});
  });

  it.each([
    ["numBeams=100", /arm "a": numBeams must be an integer between 1 and 8/],
    ["numBeams=0", /numBeams must be an integer between 1 and 8/],
    ["numBeams=1.5", /numBeams must be an integer/],
    ["maxNewTokens=abc", /maxNewTokens must be an integer/],
    ["beams=4", /"beams" is not a generation parameter/],
    ["numBeams", /"numBeams" is not name=value/],
    ["numBeams=2,numBeams=3", /numBeams is given twice/],
    ["prompt=Say hi", /prompt cannot be set as name=value/],
    ["minNewTokens=300", /minNewTokens must not exceed maxNewTokens \(256\)/],
    ["minNewTokens=100,maxNewTokens=50", /minNewTokens must not exceed maxNewTokens \(50\)/],
    ['{"numBeams": 9}', /numBeams must be an integer between 1 and 8 \(got 9\)/],
    ['{"numBeams": "4"}', /numBeams must be an integer/],
    ['{"beams": 4}', /"?beams"? is not a generation parameter/],
    ['{"prompt": ""}', /prompt/],
    ["{not json", /not a JSON object/],
    ["[1, 2]", /not a JSON object/],
    ['{"a":1} trailing', /not a JSON object/],
  ])("refuses %s", (text, problem) => {
    expect(() => arm(text)).toThrow(ArmError);
    expect(() => arm(text)).toThrow(problem);
  });

  it("refuses bad names, one arm, more than eight, and a name given twice", () => {
    for (const name of ["", "1a", "a b", "é", "x".repeat(33), "a:b"]) expect(() => arm("numBeams=1", name)).toThrow(/a name is a letter/);
    const arms = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `arm${i}`, text: "numBeams=1" }));
    expect(() => parseArms(arms(1), D)).toThrow(/at least 2 arms \(got 1\)/);
    expect(() => parseArms(arms(0), D)).toThrow(/at least 2 arms/);
    expect(() => parseArms(arms(9), D)).toThrow(/at most 8 arms \(got 9\)/);
    expect(parseArms(arms(8), D)).toHaveLength(8);
    expect(() => parseArms([{ name: "greedy", text: "" }, { name: "Greedy", text: "" }], D)).toThrow(/"Greedy" is given twice/);
  });

  it("splits --arm name:params at the first colon", () => {
    expect(splitArmOption("greedy:numBeams=1")).toEqual({ name: "greedy", text: "numBeams=1" });
    expect(splitArmOption('p:{"prompt":"a: b"}')).toEqual({ name: "p", text: '{"prompt":"a: b"}' });
    expect(() => splitArmOption("numBeams=1")).toThrow(/write name:parameters/);
    expect(() => splitArmOption(":numBeams=1")).toThrow(ArmError);
  });

  it("formats and stores arms; a stored row this version cannot read throws", () => {
    expect(formatArm({ numBeams: 4, maxNewTokens: 256 })).toBe("maxNewTokens=256,numBeams=4");
    expect(formatArm({})).toBe("defaults");
    expect(formatArm({ prompt: "Hi", numBeams: 1 })).toBe('numBeams=1,prompt="Hi"');
    const arms = parseArms([{ name: "a", text: "numBeams=1" }, { name: "b", text: '{"prompt":"P","earlyStopping":"never"}' }], D);
    expect(decodeArms(encodeArms(arms))).toEqual(arms);
    expect(() => decodeArms('[{"name":"a","params":{"numBeams":99}}]')).toThrow(/numBeams/);
  });
});

describe("sample", () => {
  const works = Array.from({ length: 40 }, (_, i) => ({ qid: `Q${1000 + i}` }));

  it("draws the same works for the same seed whatever the row order, others for another seed", () => {
    const a = drawSample(works, 10, 1).map((w) => w.qid);
    expect(drawSample([...works].reverse(), 10, 1).map((w) => w.qid)).toEqual(a);
    expect(new Set(a).size).toBe(10);
    expect(drawSample(works, 10, 2).map((w) => w.qid)).not.toEqual(a);
    // Not simply the first rows.
    expect(a).not.toEqual(works.slice(0, 10).map((w) => w.qid));
  });

  it("keeps earlier picks when the collection grows, and takes all when fewer qualify", () => {
    const before = drawSample(works, 10, 1).map((w) => w.qid);
    const grown = [...works, ...Array.from({ length: 5 }, (_, i) => ({ qid: `Q${9000 + i}` }))];
    const after = drawSample(grown, 10, 1).map((w) => w.qid);
    const newcomers = after.filter((q) => q.startsWith("Q9"));
    expect(after.filter((q) => !q.startsWith("Q9"))).toEqual(before.slice(0, 10 - newcomers.length));
    expect(drawSample(works.slice(0, 3), 10, 1)).toHaveLength(3);
  });

  it("parses --seed", () => {
    expect(parseSeed("0")).toBe(0);
    expect(parseSeed("42")).toBe(42);
    for (const bad of ["", "-1", "1.5", "x", "1e400"]) expect(() => parseSeed(bad)).toThrow(/whole number/);
  });
});
