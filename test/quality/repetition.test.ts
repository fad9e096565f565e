import { generationFacts } from "../../src/quality/store.js";
import { describe, expect, it } from "vitest";
import {
  checkRepetition,
  distinctNgramRatio,
  longestRepeatedSpan,
  MAX_REPEATED_SPAN,
  MIN_DISTINCT3,
  MIN_TRIGRAMS,
  repetitionFigures,
} from "../../src/quality/checks/repetition.js";

const FAITHFUL =
  "The etching shows a woman seated at a table with her head in her hands. Behind her, owls and bats rise from the " +
  "darkness while a large cat watches from the floor. The lines are fine and dense, and the aquatint gives the " +
  "background an even grey tone. A small inscription runs along the side of the desk.";

describe("REPETITION", () => {
  it.each([
    ["a sentence said twice", "A woman stands by the window. A dog sleeps on the floor. A woman stands by the window."],
    ["a loop at the end", `${FAITHFUL} The sky is dark and the sky is dark and the sky is dark and the sky is dark.`],
    ["a one-word loop", "The painting shows a man with a hat hat hat hat hat hat hat hat hat hat."],
    ["a paragraph repeated", `${FAITHFUL} ${FAITHFUL}`],
    ["a repeated sentence that differs only in case and punctuation", "Two men fight with sticks! A dog watches. two men, fight with sticks."],
    ["a long repeated clause", "In the foreground there is a woman in a white dress and a hat, while in the background there is a woman in a white dress and a hat."],
    ["a low distinct-3 ratio", "The man and the dog and the man and the dog and the man and the horse and the man and the dog and the cat and the man and the dog."],
    ["Spanish loop", "Una mujer con un perro. La mujer mira al cielo y la mujer mira al cielo y la mujer mira al cielo."],
    ["a list-like loop", "There are trees, houses, trees, houses, trees, houses, trees, houses, trees, houses, trees, houses."],
  ])("flags %s", (_name, text) => {
    expect(checkRepetition({ text }).flagged).toBe(true);
  });

  it.each([
    ["faithful prose", FAITHFUL],
    ["a repeated short phrase", "A woman in the centre looks left. A man in the centre looks right. A dog in the centre sleeps."],
    ["repeated function words", "The man and the woman and the child stand by the door of the house near the river."],
    ["a three-word sentence repeated", "It is dark. The owls fly over the sleeper. It is dark."],
    ["parallel structure", "On the left a man holds a torch; on the right a woman holds a child; in the middle a donkey holds still."],
    ["the same word many times, apart", "Red cloak, red hat, red shoes and a red flag make the red of the scene."],
    ["seven words repeated", "At dawn the light falls on the old man. Later the light falls on the old man, who sleeps."],
    ["short text", "A dog. A dog."],
    ["Spanish prose", "Una mujer sentada junto a una mesa sostiene una carta. Detrás de ella, un hombre con sombrero mira por la ventana."],
  ])("does not flag %s", (_name, text) => {
    expect(checkRepetition({ text }).flagged).toBe(false);
  });

  it("measures distinct-3 and the longest repeated span (overlaps count)", () => {
    expect(distinctNgramRatio("a b c a b c".split(" "))).toEqual({ ratio: 3 / 4, total: 4 });
    expect(longestRepeatedSpan("a a a a a".split(" "))).toBe(4);
    expect(longestRepeatedSpan("x a b c y a b c z".split(" "))).toBe(3);
    expect(longestRepeatedSpan([])).toBe(0);
  });

  it(`flags a repeated span of exactly ${MAX_REPEATED_SPAN} words, not ${MAX_REPEATED_SPAN - 1}`, () => {
    const span = (n: number) => Array.from({ length: n }, (_, i) => `s${i}`).join(" ");
    const text = (n: number) => `Alpha ${span(n)} beta gamma delta ${span(n)} epsilon.`;
    expect(repetitionFigures(text(MAX_REPEATED_SPAN)).longestRepeatedSpan).toBe(MAX_REPEATED_SPAN);
    expect(checkRepetition({ text: text(MAX_REPEATED_SPAN) }).flagged).toBe(true);
    expect(checkRepetition({ text: text(MAX_REPEATED_SPAN - 1) }).flagged).toBe(false);
  });

  it(`flags distinct-3 below ${MIN_DISTINCT3}, not at it, and only from ${MIN_TRIGRAMS} trigrams`, () => {
    // 40 distinct words and k copies of one trigram "a b c" spread apart: trigram count and ratio are exact.
    const build = (distinct: number, repeats: number) => {
      const out: string[] = [];
      for (let i = 0; i < distinct; i++) out.push(`w${i}`);
      for (let r = 0; r < repeats; r++) out.splice(r * 7, 0, "a", "b", "c");
      return out;
    };
    const at = (ws: string[]) => distinctNgramRatio(ws).ratio;
    // Search the exact boundary over generated texts rather than hard-coding one.
    let below: string[] | undefined;
    let equal: string[] | undefined;
    for (let d = 10; d < 200 && (!below || !equal); d++) {
      for (let r = 2; r < 12; r++) {
        const ws = build(d, r);
        if (repetitionFigures(ws.join(" ")).longestRepeatedSpan >= MAX_REPEATED_SPAN) continue;
        const ratio = at(ws);
        if (Math.abs(ratio - MIN_DISTINCT3) < 1e-12 && !equal) equal = ws;
        if (ratio < MIN_DISTINCT3 && ratio > MIN_DISTINCT3 - 0.03 && !below) below = ws;
      }
    }
    expect(equal && below).toBeTruthy();
    expect(checkRepetition({ text: equal!.join(" ") }).flagged).toBe(false);
    expect(checkRepetition({ text: below!.join(" ") }).flagged).toBe(true);
    // Under MIN_TRIGRAMS trigrams distinct-3 is not judged.
    const short = "a b c a b c d a b c".split(" ");
    expect(distinctNgramRatio(short).total).toBeLessThan(MIN_TRIGRAMS);
    expect(distinctNgramRatio(short).ratio).toBeLessThan(MIN_DISTINCT3);
    expect(checkRepetition({ text: short.join(" ") }).flagged).toBe(false);
  });

  it("a repeated sentence of four words flags, of three does not", () => {
    expect(checkRepetition({ text: "One two three four. Other words here now. One two three four." }).flagged).toBe(true);
    expect(checkRepetition({ text: "One two three. Other words here now. One two three." }).flagged).toBe(false);
  });
});

describe("a loop the engine removed", () => {
  it("counts once: from the raw text when the stored one says it once, not again when the stored text (written before) still loops", () => {
    const raw = "It is dark. It is dark. It is dark. A man sleeps.";
    const base = { rawText: raw, finishReason: "eos", trimmed: false, targetWords: 150 };
    expect(generationFacts({ ...base, text: "It is dark. A man sleeps." }).repeatsRemoved).toBe(2);
    expect(generationFacts({ ...base, text: raw }).repeatsRemoved).toBe(0);
    const flagged = checkRepetition({ text: "It is dark. A man sleeps.", generation: generationFacts({ ...base, text: "It is dark. A man sleeps." }) });
    expect(flagged.flagged).toBe(true);
    expect(flagged.checks.find((c) => c.name === "repeatedSentences")?.value).toBe(2);
  });
});
