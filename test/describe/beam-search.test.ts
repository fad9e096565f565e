import { describe, expect, it } from "vitest";
import { beamSearch, type DecodingParams, targetLengthStop } from "../../src/describe/beam-search.js";
import { scriptedModel } from "./scripted-model.js";

// Hand-checked cases for each rule of /shared/reference/beam-search.md. Token 0 is EOS throughout;
// the scripted model's logits are log-probabilities, so each expected score is a sum of ln(p).
const EOS = 0;
const ln = Math.log;

function params(over: Partial<DecodingParams> = {}): DecodingParams {
  return {
    numBeams: 1,
    maxNewTokens: 10,
    lengthPenalty: 1,
    earlyStopping: false,
    numReturnSequences: 1,
    repetitionPenalty: 1,
    noRepeatNgramSize: 0,
    badWordsIds: [],
    minNewTokens: 0,
    eosTokenIds: [EOS],
    ...over,
  };
}

async function run(
  vocab: number,
  probs: (prompt: readonly number[], generated: readonly number[]) => number[],
  p: DecodingParams,
  prompts: number[][] = [[1]],
) {
  const model = scriptedModel(vocab, probs);
  const items = prompts.map((promptIds) => ({ promptIds }));
  const out = await beamSearch({ items, prefillLogits: model.prefill(items), vocabSize: vocab, params: p, step: model.step });
  return { ...out, calls: model.calls };
}

const byLength = (table: number[][]) => (_: readonly number[], g: readonly number[]) => table[Math.min(g.length, table.length - 1)]!;

describe("beam search", () => {
  it("greedy is one beam: argmax each step, score = sum of log-probs / generated length incl. EOS", async () => {
    const table = [
      [0.1, 0.6, 0.2, 0.1],
      [0.2, 0.1, 0.5, 0.2],
      [0.7, 0.1, 0.1, 0.1],
    ];
    const r = await run(4, byLength(table), params({ lengthPenalty: 2 }));
    const h = r.hypotheses[0]![0]!;
    expect(h.tokens).toEqual([1, 2, EOS]);
    expect(h.finishReason).toBe("eos");
    expect(h.sumLogProbs).toBeCloseTo(ln(0.6) + ln(0.5) + ln(0.7), 5);
    expect(h.score).toBeCloseTo((ln(0.6) + ln(0.5) + ln(0.7)) / 3 ** 2, 5);
    expect(r.steps).toBe(2);
  });

  it("length penalty divides by the generated length: lp=1 prefers the longer hypothesis, lp=0 the shorter", async () => {
    const probs = (_: readonly number[], g: readonly number[]) =>
      g.length === 0 ? [0.5, 0.4, 0.06, 0.04] : [0.9, 0.05, 0.03, 0.02];
    const lp1 = await run(4, probs, params({ numBeams: 2, lengthPenalty: 1, earlyStopping: true, numReturnSequences: 2 }));
    expect(lp1.hypotheses[0]!.map((h) => h.tokens)).toEqual([[1, EOS], [EOS]]);
    expect(lp1.hypotheses[0]![0]!.score).toBeCloseTo(ln(0.4 * 0.9) / 2, 5);
    expect(lp1.hypotheses[0]![1]!.score).toBeCloseTo(ln(0.5), 5);
    const lp0 = await run(4, probs, params({ numBeams: 2, lengthPenalty: 0, earlyStopping: true, numReturnSequences: 2 }));
    expect(lp0.hypotheses[0]!.map((h) => h.tokens)).toEqual([[EOS], [1, EOS]]);
    expect(lp0.hypotheses[0]![1]!.score).toBeCloseTo(ln(0.4 * 0.9), 5);
  });

  it("keeps K = 2 x beams candidates, so an EOS at the top does not cost a running beam", async () => {
    const probs = (_: readonly number[], g: readonly number[]) => (g.length === 0 ? [0.5, 0.3, 0.15, 0.05] : [0.9, 0.05, 0.03, 0.02]);
    const r = await run(4, probs, params({ numBeams: 2, earlyStopping: true }));
    // EOS ranked first finished; the two running beams are A and B (ranks 1 and 2 of K = 4).
    expect(r.calls[0]).toEqual({ parents: [0, 0], tokens: [1, 2] });
  });

  it("an EOS ranked outside the first num_beams candidates never becomes a finished hypothesis", async () => {
    // Step 1: A .4, B .35, EOS .2 (rank 2 of K=4), C .05. With lp=0, [EOS] (ln .2) would beat both
    // final hypotheses (ln .16, ln .14) if it had been admitted.
    const probs = (_: readonly number[], g: readonly number[]) => (g.length === 0 ? [0.2, 0.4, 0.35, 0.05] : [0.1, 0.3, 0.2, 0.4]);
    const r = await run(4, probs, params({ numBeams: 2, lengthPenalty: 0, maxNewTokens: 2, numReturnSequences: 2 }));
    expect(r.hypotheses[0]!.map((h) => h.tokens)).toEqual([[1, 3], [2, 3]]);
    expect(r.hypotheses[0]!.map((h) => h.finishReason)).toEqual(["length", "length"]);
    expect(r.hypotheses[0]![0]!.score).toBeCloseTo(ln(0.4 * 0.4), 5);
    expect(r.hypotheses[0]![1]!.score).toBeCloseTo(ln(0.35 * 0.4), 5);
  });

  // After A the distribution is EOS .4, A .36, B .24 (as at the start); after B it is .45, .3, .25.
  const esProbs = (_: readonly number[], g: readonly number[]) => (g[g.length - 1] === 2 ? [0.45, 0.3, 0.25] : [0.4, 0.36, 0.24]);
  const a = ln(0.4);
  const b = ln(0.36);

  it("early_stopping true stops as soon as num_beams hypotheses are finished", async () => {
    const r = await run(3, esProbs, params({ numBeams: 2, lengthPenalty: 2, maxNewTokens: 4, earlyStopping: true, numReturnSequences: 2 }));
    expect(r.steps).toBe(1);
    expect(r.hypotheses[0]!.map((h) => h.tokens)).toEqual([[1, EOS], [EOS]]);
    expect(r.hypotheses[0]![0]!.score).toBeCloseTo((b + a) / 4, 5);
  });

  it("early_stopping false continues while best running / cur_len**lp can beat the worst finished", async () => {
    // lp=2: after step 2, best running A,A: 2b/4 = -0.511 > worst finished a = -0.916, go on;
    // after step 3, A,A,A: 3b/9 = -0.341 > -0.484, go on; step 4 reaches max length.
    const r = await run(3, esProbs, params({ numBeams: 2, lengthPenalty: 2, maxNewTokens: 4, earlyStopping: false, numReturnSequences: 2 }));
    expect(r.steps).toBe(3);
    expect(r.hypotheses[0]!.map((h) => h.tokens)).toEqual([[1, 1, 1, EOS], [1, 1, 1, 1]]);
    expect(r.hypotheses[0]!.map((h) => h.finishReason)).toEqual(["eos", "length"]);
    expect(r.hypotheses[0]![0]!.score).toBeCloseTo((3 * b + a) / 16, 5);
    expect(r.hypotheses[0]![1]!.score).toBeCloseTo((4 * b) / 16, 5);
    // lp=1: after step 2, 2b/2 = -1.022 < worst finished (b+a)/2 = -0.969: stop.
    const lp1 = await run(3, esProbs, params({ numBeams: 2, lengthPenalty: 1, maxNewTokens: 4, earlyStopping: false }));
    expect(lp1.steps).toBe(1);
    expect(lp1.hypotheses[0]![0]!.tokens).toEqual([EOS]);
  });

  it('early_stopping "never" with lp > 0 measures the best possible score at max_length', async () => {
    // lp=1: 2b/4 = -0.511 > -0.969, so it goes on to max length where nothing better turns up.
    const r = await run(3, esProbs, params({ numBeams: 2, lengthPenalty: 1, maxNewTokens: 4, earlyStopping: "never", numReturnSequences: 2 }));
    expect(r.steps).toBe(3);
    expect(r.hypotheses[0]!.map((h) => h.tokens)).toEqual([[EOS], [1, EOS]]);
  });

  it("no_repeat_ngram_size looks at the prompt too", async () => {
    const probs = byLength([
      [0.1, 0.2, 0.6, 0.1],
      [0.9, 0.05, 0.03, 0.02],
    ]);
    // Prompt 1 2 1: the bigram (1, 2) exists and the sequence ends in 1, so 2 is banned.
    const banned = await run(4, probs, params({ noRepeatNgramSize: 2 }), [[1, 2, 1]]);
    expect(banned.hypotheses[0]![0]!.tokens).toEqual([1, EOS]);
    expect(banned.hypotheses[0]![0]!.sumLogProbs).toBeCloseTo(ln(0.2) + ln(0.9), 5);
    const free = await run(4, probs, params(), [[1, 2, 1]]);
    expect(free.hypotheses[0]![0]!.tokens).toEqual([2, EOS]);
  });

  it("min_new_tokens bans every EOS id until enough tokens exist, without renormalising", async () => {
    const probs = byLength([
      [0.6, 0.3, 0.05, 0.05],
      [0.7, 0.2, 0.05, 0.05],
    ]);
    const r = await run(4, probs, params({ minNewTokens: 2 }));
    const h = r.hypotheses[0]![0]!;
    expect(h.tokens).toEqual([1, 1, EOS]);
    expect(h.sumLogProbs).toBeCloseTo(ln(0.3) + ln(0.2) + ln(0.7), 5);
  });

  it("repetition penalty multiplies the log-prob of each token already in the sequence", async () => {
    // Prompt [1]: A's ln .5 * 2 = -1.386 falls below B's ln .4 = -0.916.
    const probs = byLength([
      [0.1, 0.5, 0.4],
      [0.8, 0.1, 0.1],
    ]);
    const r = await run(3, probs, params({ repetitionPenalty: 2 }));
    const h = r.hypotheses[0]![0]!;
    expect(h.tokens).toEqual([2, EOS]);
    expect(h.sumLogProbs).toBeCloseTo(ln(0.4) + ln(0.8), 5);
  });

  it("bad words: single tokens never appear, a sequence's last token is banned after its prefix", async () => {
    const probs = byLength([
      [0.1, 0.15, 0.05, 0.7],
      [0.05, 0.1, 0.15, 0.7],
      [0.9, 0.03, 0.03, 0.04],
    ]);
    const r = await run(4, probs, params({ badWordsIds: [[3], [1, 2]] }));
    expect(r.hypotheses[0]![0]!.tokens).toEqual([1, 1, EOS]);
  });

  it("every EOS id finishes a hypothesis", async () => {
    const probs = byLength([
      [0.1, 0.6, 0.1, 0.2],
      [0.1, 0.1, 0.1, 0.7],
    ]);
    const r = await run(4, probs, params({ eosTokenIds: [EOS, 3], numBeams: 2 }));
    expect(r.hypotheses[0]![0]!.tokens).toEqual([1, 3]);
    expect(r.hypotheses[0]![0]!.finishReason).toBe("eos");
  });

  it("stops at max_new_tokens with finish reason length", async () => {
    const r = await run(3, () => [0.1, 0.8, 0.1], params({ maxNewTokens: 3 }));
    expect(r.hypotheses[0]![0]).toMatchObject({ tokens: [1, 1, 1], finishReason: "length" });
    expect(r.steps).toBe(2);
  });

  describe("target-length stop", () => {
    // 0 EOS, 1 " word", 2 ".": the script writes "word word. word word word. word word." then EOS.
    const pieces = ["</s>", " word", "."];
    const decode = (ids: readonly number[]) => ids.map((i) => pieces[i]).join("");
    const script = [1, 1, 2, 1, 1, 1, 2, 1, 1, 2, EOS];
    const probs = (_: readonly number[], g: readonly number[]) => {
      const next = script[Math.min(g.length, script.length - 1)]!;
      return [0, 1, 2].map((t) => (t === next ? 0.9 : 0.05));
    };

    it("finishes a beam that ends a sentence past the target, with reason stop", async () => {
      for (const numBeams of [1, 2]) {
        const r = await run(3, probs, params({ numBeams, stop: targetLengthStop(decode, 4) }));
        const h = r.hypotheses[0]![0]!;
        expect(h.tokens).toEqual([1, 1, 2, 1, 1, 1, 2]);
        expect(h.finishReason).toBe("stop");
        expect(h.score).toBeCloseTo(ln(0.9), 5);
      }
    });

    it("does not stop before min_new_tokens", async () => {
      const r = await run(3, probs, params({ minNewTokens: 8, maxNewTokens: 20, stop: targetLengthStop(decode, 4) }));
      // The first sentence end at or after 8 tokens and 4 words is the third "." (token 10).
      expect(r.hypotheses[0]![0]).toMatchObject({ tokens: script.slice(0, 10), finishReason: "stop" });
    });

    it("without it the same script runs to EOS", async () => {
      const r = await run(3, probs, params({ maxNewTokens: 20 }));
      expect(r.hypotheses[0]![0]).toMatchObject({ tokens: script, finishReason: "eos" });
    });
  });

  it("decodes several items in one batch exactly as alone, dropping finished items from the rows", async () => {
    // Item with prompt [1] ends after 1 token; prompt [2] after 3.
    const probs = (prompt: readonly number[], g: readonly number[]) =>
      prompt[0] === 1 ? (g.length === 0 ? [0.7, 0.2, 0.1] : [0.5, 0.3, 0.2]) : g.length < 3 ? [0.1, 0.6, 0.3] : [0.8, 0.1, 0.1];
    const p = params({ numBeams: 2, earlyStopping: true, numReturnSequences: 2 });
    const both = await run(3, probs, p, [[1], [2]]);
    const one = await run(3, probs, p, [[1]]);
    const two = await run(3, probs, p, [[2]]);
    expect(both.hypotheses).toEqual([one.hypotheses[0], two.hypotheses[0]]);
    // The first call carries 2 x 2 rows (item 1's rows from prefill row 1); later calls item 2's alone.
    expect(both.calls[0]!.parents).toEqual([0, 0, 1, 1]);
    expect(both.calls.at(-1)!.parents.length).toBe(2);
  });

  it("stops between steps when aborted", async () => {
    const model = scriptedModel(3, () => [0.1, 0.8, 0.1]);
    const items = [{ promptIds: [1] }];
    const ctl = new AbortController();
    const pending = beamSearch({
      items,
      prefillLogits: model.prefill(items),
      vocabSize: 3,
      params: params({ maxNewTokens: 50 }),
      step: model.step,
      onStep: (_, g) => g === 3 && ctl.abort(new Error("stop please")),
      signal: ctl.signal,
    });
    await expect(pending).rejects.toThrow("stop please");
    expect(model.calls.length).toBe(2);
  });
});
