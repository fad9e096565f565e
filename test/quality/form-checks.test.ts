import { describe, expect, it } from "vitest";
import { checkTooLong, checkTooShort, DEFAULT_TARGET_WORDS, TOO_LONG_RATIO, TOO_SHORT_RATIO } from "../../src/quality/checks/length.js";
import { checkMarkdown } from "../../src/quality/checks/markdown.js";
import { checkTruncated } from "../../src/quality/checks/truncated.js";

const words = (n: number) => `${Array.from({ length: n }, (_, i) => `word${i}`).join(" ")}.`;

describe("TRUNCATED", () => {
  it.each([
    ["max tokens", { text: "A woman stands by a window.", generation: { finishReason: "length" } }],
    ["trimmed", { text: "A woman stands by a window.", generation: { finishReason: "eos", trimmed: true } }],
    ["max tokens and trimmed", { text: "A dog sleeps.", generation: { finishReason: "length", trimmed: true } }],
    ["model text mid-sentence", { text: "A woman stands by a window and", generation: { finishReason: "eos" } }],
    ["human text mid-sentence", { text: "The etching shows a donkey carrying" }],
    ["ends with a comma", { text: "A man rides a horse," }],
    ["ends on a bare list marker", { text: "The figures are:\n1." }],
    ["ends with a colon", { text: "Three figures appear:" }],
    ["max tokens, Spanish", { text: "Una mujer con un perro.", generation: { finishReason: "length" } }],
  ])("flags %s", (_name, input) => {
    expect(checkTruncated(input).flagged).toBe(true);
  });

  it.each([
    ["eos", { text: "A woman stands by a window.", generation: { finishReason: "eos", trimmed: false } }],
    ["target reached", { text: "A woman stands by a window.", generation: { finishReason: "stop" } }],
    ["human text", { text: "A woman stands by a window." }],
    ["question", { text: "Is it a dog or a donkey?" }],
    ["exclamation", { text: "What a storm!" }],
    ["closing quote", { text: 'The caption reads "Nadie se conoce."' }],
    ["ellipsis", { text: "The night goes on…" }],
    ["closing bracket", { text: "A donkey (an ass.)" }],
    ["empty text is TOO_SHORT's business", { text: "" }],
    ["decimal inside", { text: "It measures 3.5 by 2 metres." }],
  ])("does not flag %s", (_name, input) => {
    expect(checkTruncated(input).flagged).toBe(false);
  });
});

describe("MARKDOWN", () => {
  it.each([
    ["cleanup removed something", { text: "A woman stands.", generation: { markdownRemoved: true } }],
    ["a heading", { text: "### Description\nA woman stands." }],
    ["bold", { text: "A **woman** stands by a window." }],
    ["a bullet list", { text: "The work shows:\n- a woman\n- a dog" }],
    ["a numbered list", { text: "Figures:\n1. a woman\n2. a dog" }],
    ["an appended analysis section", { text: "A woman stands by a window. ### Analysis: 1. **Subjects**: a woman." }],
    ["italics", { text: "The title is *The Sleep of Reason* here." }],
    ["underscored bold", { text: "A __dark__ sky." }],
    ["a second-level heading", { text: "## Subjects\nA dog." }],
  ])("flags %s", (_name, input) => {
    expect(checkMarkdown(input).flagged).toBe(true);
  });

  it.each([
    ["plain prose", { text: "A woman stands by a window." }],
    ["cleanup removed nothing", { text: "A woman stands.", generation: { markdownRemoved: false } }],
    ["line breaks between paragraphs", { text: "A woman stands.\n\nA dog sleeps." }],
    ["an abbreviation", { text: "St. Peter weeps near No. 5 street." }],
    ["a year at a line start", { text: "Made in\n1799. The plate shows owls." }],
    ["a hyphen inside a line", { text: "A half-open door - and a dog." }],
    ["a lone asterisk", { text: "Plate 43 * (first state) shows a man." }],
    ["a hash without space", { text: "Plate #43 shows a man." }],
    ["quotes", { text: 'Its title, "El sueño de la razón produce monstruos", is etched.' }],
  ])("does not flag %s", (_name, input) => {
    expect(checkMarkdown(input).flagged).toBe(false);
  });
});

describe("TOO_SHORT and TOO_LONG", () => {
  it("uses the target length, or DEFAULT_TARGET_WORDS when there is none", () => {
    expect(checkTooShort({ text: words(59) }).checks[0]).toMatchObject({ name: "lengthRatio", value: 59 / DEFAULT_TARGET_WORDS });
    expect(checkTooShort({ text: words(59), generation: { targetWords: 0 } }).flagged).toBe(true);
    expect(checkTooShort({ text: words(59), generation: { targetWords: 100 } }).flagged).toBe(false);
  });

  it("TOO_SHORT below 0.4 of the target, not at it", () => {
    expect(TOO_SHORT_RATIO).toBe(0.4);
    expect(checkTooShort({ text: words(60) }).flagged).toBe(false); // exactly 0.4
    expect(checkTooShort({ text: words(59) }).flagged).toBe(true);
    expect(checkTooShort({ text: words(40), generation: { targetWords: 100 } }).flagged).toBe(false);
    expect(checkTooShort({ text: words(39), generation: { targetWords: 100 } }).flagged).toBe(true);
  });

  it("TOO_LONG above 2x the target, not at it", () => {
    expect(TOO_LONG_RATIO).toBe(2);
    expect(checkTooLong({ text: words(300) }).flagged).toBe(false);
    expect(checkTooLong({ text: words(301) }).flagged).toBe(true);
    expect(checkTooLong({ text: words(200), generation: { targetWords: 100 } }).flagged).toBe(false);
    expect(checkTooLong({ text: words(201), generation: { targetWords: 100 } }).flagged).toBe(true);
  });

  it.each([0, 1, 5, 12, 30, 45, 59, 20])("a %i-word text for 150 is TOO_SHORT", (n) => {
    expect(checkTooShort({ text: n ? words(n) : "" }).flagged).toBe(true);
    expect(checkTooLong({ text: n ? words(n) : "" }).flagged).toBe(false);
  });

  it.each([60, 80, 100, 150, 200, 250, 299, 300])("a %i-word text for 150 is neither", (n) => {
    expect(checkTooShort({ text: words(n) }).flagged).toBe(false);
    expect(checkTooLong({ text: words(n) }).flagged).toBe(false);
  });

  it.each([301, 320, 400, 450, 600, 800, 1000, 2000])("a %i-word text for 150 is TOO_LONG", (n) => {
    expect(checkTooLong({ text: words(n) }).flagged).toBe(true);
  });

  it("severity grows the further past the threshold", () => {
    const s = (n: number) => checkTooShort({ text: words(n) }).severity;
    expect(s(10)).toBeGreaterThan(s(50));
    expect(s(50)).toBeGreaterThan(s(80));
    expect(s(80)).toBeGreaterThan(s(150));
    expect(s(59)).toBeGreaterThanOrEqual(0.5);
    expect(s(60)).toBeLessThanOrEqual(0.2);
  });
});
