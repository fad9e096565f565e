import { describe, expect, it } from "vitest";
import { beamSearch, type DecodingParams, decodeTokens } from "../../src/describe/beam-search.js";
import { greedySearch } from "../../src/describe/greedy.js";
import { scriptedModel } from "./scripted-model.js";

// Greedy search as Hugging Face runs it for one beam (Python `_sample` without sampling,
// transformers.js GreedySampler): processors on the raw logits, argmax, no beam rules. The scripted
// model returns ln(x) of what the script gives, so a script of exp(logit) values yields raw logits.
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

type Script = (prompt: readonly number[], generated: readonly number[]) => number[];

async function run(vocab: number, script: Script, p: DecodingParams, prompts: number[][] = [[1]], search = decodeTokens) {
  const model = scriptedModel(vocab, script);
  const items = prompts.map((promptIds) => ({ promptIds }));
  const out = await search({ items, prefillLogits: model.prefill(items), vocabSize: vocab, params: p, step: model.step });
  return { ...out, calls: model.calls };
}

const byLength = (table: number[][]) => (_: readonly number[], g: readonly number[]) => table[Math.min(g.length, table.length - 1)]!;
/** A script of raw logits (the scripted model takes ln of what it gets). */
const rawLogits = (table: number[][]) => {
  const t = byLength(table.map((row) => row.map(Math.exp)));
  return (p: readonly number[], g: readonly number[]) => t(p, g);
};

/**
 * An independent greedy decoder with Hugging Face's rules, written from transformers'
 * logits_process.py: whole sequences, recomputed every step, processors on float32 raw logits in
 * HF's order, argmax with ties to the lowest id, score = mean log-softmax of the processed scores.
 */
function referenceGreedy(vocab: number, script: Script, prompt: number[], p: DecodingParams) {
  const generated: number[] = [];
  let sum = 0;
  for (;;) {
    const seq = [...prompt, ...generated];
    const s = Float32Array.from(script(prompt, generated).map((x) => Math.log(x)));
    if (p.repetitionPenalty !== 1) {
      for (const t of new Set(seq)) s[t] = s[t]! < 0 ? s[t]! * p.repetitionPenalty : s[t]! / p.repetitionPenalty;
    }
    const n = p.noRepeatNgramSize;
    if (n > 0 && seq.length + 1 >= n) {
      const grams = new Map<string, number[]>();
      for (let j = 0; j + n <= seq.length; j++) {
        const key = seq.slice(j, j + n - 1).join(",");
        grams.set(key, [...(grams.get(key) ?? []), seq[j + n - 1]!]);
      }
      for (const t of grams.get(seq.slice(seq.length - (n - 1)).join(",")) ?? []) s[t] = -Infinity;
    }
    for (const words of p.badWordsIds) {
      const prefix = words.slice(0, -1);
      if (prefix.every((w, j) => seq[seq.length - prefix.length + j] === w)) s[words.at(-1)!] = -Infinity;
    }
    if (generated.length < p.minNewTokens) for (const e of p.eosTokenIds) s[e] = -Infinity;
    let best = 0;
    for (let t = 1; t < vocab; t++) if (s[t]! > s[best]!) best = t;
    const max = Math.max(...s);
    const lse = max + Math.log(s.reduce((a, x) => a + Math.exp(x - max), 0));
    sum += s[best]! - lse;
    generated.push(best);
    if (p.eosTokenIds.includes(best)) return { tokens: generated, score: sum / generated.length, finishReason: "eos" };
    if (generated.length >= p.maxNewTokens) return { tokens: generated, score: sum / generated.length, finishReason: "length" };
  }
}

/** A seeded pseudo-random generator (mulberry32). */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("greedy search (one beam)", () => {
  it("argmax each step; the score is the mean log-probability of the chosen tokens, EOS included", async () => {
    const table = [
      [0.1, 0.6, 0.2, 0.1],
      [0.2, 0.1, 0.5, 0.2],
      [0.7, 0.1, 0.1, 0.1],
    ];
    // The length penalty does not apply to greedy (HF has none there).
    for (const lengthPenalty of [1, 2, 0]) {
      const r = await run(4, byLength(table), params({ lengthPenalty }));
      const h = r.hypotheses[0]![0]!;
      expect(h.tokens).toEqual([1, 2, EOS]);
      expect(h.finishReason).toBe("eos");
      expect(h.sumLogProbs).toBeCloseTo(ln(0.6) + ln(0.5) + ln(0.7), 5);
      expect(h.score).toBeCloseTo((ln(0.6) + ln(0.5) + ln(0.7)) / 3, 5);
      expect(r.steps).toBe(2);
    }
  });

  it("an EOS ranked first ends it at once, whatever early_stopping says (one-beam beam search goes on)", async () => {
    // After [1]: EOS .4 leads; the runner-up 1 then leads to a better-scoring ending.
    const script = (_: readonly number[], g: readonly number[]) => (g.length === 0 ? [0.3, 0.6, 0.1] : g.length === 1 ? [0.4, 0.35, 0.25] : [0.95, 0.03, 0.02]);
    for (const earlyStopping of [true, false, "never"] as const) {
      const p = params({ earlyStopping, maxNewTokens: 5 });
      const greedy = await run(3, script, p);
      expect(greedy.hypotheses[0]![0]).toMatchObject({ tokens: [1, EOS], finishReason: "eos" });
      expect(greedy.steps).toBe(1);
    }
    // The old one-beam beam search with "never" keeps the runner-up beam alive and returns another text.
    const beam = await run(3, script, params({ earlyStopping: "never", maxNewTokens: 5 }), [[1]], beamSearch);
    expect(beam.hypotheses[0]![0]!.tokens).toEqual([1, 1, EOS]);
  });

  it("the repetition penalty acts on raw logits: positive ones are divided, not the log-probabilities multiplied", async () => {
    // Prompt [1]. Raw logits EOS -20, A 0.1, B 0: A / 2 = 0.05 still beats B. On log-probabilities
    // (beam search's input) A's -0.644 x 2 = -1.288 falls below B's -0.744.
    const script = rawLogits([
      [-20, 0.1, 0],
      [20, 0, 0],
    ]);
    const greedy = await run(3, script, params({ repetitionPenalty: 2 }));
    expect(greedy.hypotheses[0]![0]!.tokens).toEqual([1, EOS]);
    const beam = await run(3, script, params({ repetitionPenalty: 2 }), [[1]], beamSearch);
    expect(beam.hypotheses[0]![0]!.tokens).toEqual([2, EOS]);
    // A negative raw logit is multiplied: prompt [1], A -1 x 3 = -3 loses to B -2.
    const neg = await run(3, rawLogits([[-20, -1, -2], [20, 0, 0]]), params({ repetitionPenalty: 3 }));
    expect(neg.hypotheses[0]![0]!.tokens).toEqual([2, EOS]);
  });

  it("no_repeat_ngram_size looks at the prompt; the score renormalises over what the processors left", async () => {
    const probs = byLength([
      [0.1, 0.2, 0.6, 0.1],
      [0.9, 0.05, 0.03, 0.02],
    ]);
    const banned = await run(4, probs, params({ noRepeatNgramSize: 2 }), [[1, 2, 1]]);
    expect(banned.hypotheses[0]![0]!.tokens).toEqual([1, EOS]);
    // Token 2 is -inf, so the log-softmax of the processed scores is over 0.1 + 0.2 + 0.1; at the
    // second step the sequence ends in 1 and both 2 and 1 would repeat a bigram: 0.9 + 0.02 remain.
    expect(banned.hypotheses[0]![0]!.sumLogProbs).toBeCloseTo(ln(0.2 / 0.4) + ln(0.9 / 0.92), 5);
  });

  it("min_new_tokens bans EOS until enough tokens exist; bad words are never generated", async () => {
    const probs = byLength([
      [0.6, 0.3, 0.05, 0.05],
      [0.7, 0.2, 0.05, 0.05],
    ]);
    const r = await run(4, probs, params({ minNewTokens: 2 }));
    expect(r.hypotheses[0]![0]).toMatchObject({ tokens: [1, 1, EOS], finishReason: "eos" });
    const bad = await run(4, probs, params({ minNewTokens: 2, badWordsIds: [[1], [3, 2]] }));
    expect(bad.hypotheses[0]![0]!.tokens).toEqual([2, 2, EOS]);
  });

  it("the extra stop criterion finishes with reason stop, never before min_new_tokens", async () => {
    const stop = (_: number, prefix: readonly number[], token: number) => token === 2 && prefix.length >= 1;
    const probs = () => [0.05, 0.5, 0.45];
    // Argmax is always 1, so the criterion (which wants 2) never fires: length.
    expect((await run(3, probs, params({ maxNewTokens: 4, stop }))).hypotheses[0]![0]!.finishReason).toBe("length");
    const alt = (_: readonly number[], g: readonly number[]) => (g.length % 2 ? [0.05, 0.2, 0.75] : [0.05, 0.75, 0.2]);
    const r = await run(3, alt, params({ maxNewTokens: 9, stop }));
    expect(r.hypotheses[0]![0]).toMatchObject({ tokens: [1, 2], finishReason: "stop" });
    const late = await run(3, alt, params({ maxNewTokens: 9, minNewTokens: 3, stop }));
    expect(late.hypotheses[0]![0]).toMatchObject({ tokens: [1, 2, 1, 2], finishReason: "stop" });
  });

  it("equals an independent Hugging Face greedy decoder on random scripts and settings", async () => {
    const random = rng(7);
    const vocab = 9;
    let compared = 0;
    for (let trial = 0; trial < 60; trial++) {
      // Each (prompt, generated) maps to a fixed random distribution; EOS is rare enough for long runs.
      const cache = new Map<string, number[]>();
      const script: Script = (prompt, g) => {
        const key = `${prompt.join(",")}|${g.join(",")}`;
        let row = cache.get(key);
        if (!row) {
          row = Array.from({ length: vocab }, (_, t) => Math.exp((random() - 0.5) * 6) * (t === EOS ? 0.3 : 1));
          cache.set(key, row);
        }
        return row;
      };
      const p = params({
        maxNewTokens: 3 + Math.floor(random() * 12),
        repetitionPenalty: [1, 1.3, 2, 0.7][Math.floor(random() * 4)]!,
        noRepeatNgramSize: [0, 2, 3][Math.floor(random() * 3)]!,
        minNewTokens: Math.floor(random() * 4),
        badWordsIds: random() < 0.5 ? [[8], [3, 4]] : [],
        earlyStopping: (["never", true, false] as const)[Math.floor(random() * 3)]!,
        lengthPenalty: random() * 2,
      });
      const prompts = [[1, 2, 3, 1, 2], [5, 6]];
      const out = await run(vocab, script, p, prompts);
      prompts.forEach((prompt, i) => {
        const ref = referenceGreedy(vocab, script, prompt, p);
        const h = out.hypotheses[i]![0]!;
        expect(h.tokens).toEqual(ref.tokens);
        expect(h.finishReason).toBe(ref.finishReason);
        expect(Math.abs(h.score - ref.score)).toBeLessThan(1e-5);
        compared += h.tokens.length;
      });
    }
    expect(compared).toBeGreaterThan(300);
  });

  it("decodes several items in one batch exactly as alone, dropping finished ones from the rows", async () => {
    const probs = (prompt: readonly number[], g: readonly number[]) =>
      prompt[0] === 1 ? (g.length === 0 ? [0.7, 0.2, 0.1] : [0.5, 0.3, 0.2]) : g.length < 3 ? [0.1, 0.6, 0.3] : [0.8, 0.1, 0.1];
    const both = await run(3, probs, params(), [[1], [2]]);
    const one = await run(3, probs, params(), [[1]]);
    const two = await run(3, probs, params(), [[2]]);
    expect(both.hypotheses).toEqual([one.hypotheses[0], two.hypotheses[0]]);
    // Item 1 ends at its first token: the first call carries item 2's row alone, from prefill row 1.
    expect(both.calls[0]).toEqual({ parents: [1], tokens: [1] });
    expect(both.calls.every((c) => c.parents.length === 1)).toBe(true);
  });

  it("a dropped item leaves the batch and returns nothing; abort stops between steps", async () => {
    const model = scriptedModel(3, () => [0.1, 0.8, 0.1]);
    const items = [{ promptIds: [1] }, { promptIds: [2] }];
    let steps = 0;
    const out = await greedySearch({
      items,
      prefillLogits: model.prefill(items),
      vocabSize: 3,
      params: params({ maxNewTokens: 5 }),
      step: model.step,
      onStep: (item) => item === 1 && steps++,
      dropped: (item) => item === 0 && steps >= 2,
    });
    expect(out.hypotheses[0]).toEqual([]);
    expect(out.hypotheses[1]![0]!.tokens).toEqual([1, 1, 1, 1, 1]);
    expect(model.calls.map((c) => c.parents.length)).toEqual([2, 2, 1, 1]);

    const ctl = new AbortController();
    const pending = greedySearch({
      items: [items[0]!],
      prefillLogits: model.prefill([items[0]!]),
      vocabSize: 3,
      params: params({ maxNewTokens: 50 }),
      step: model.step,
      onStep: (_, g) => g === 3 && ctl.abort(new Error("stop please")),
      signal: ctl.signal,
    });
    await expect(pending).rejects.toThrow("stop please");
  });

  it("refuses more than one beam or more than one returned sequence", async () => {
    await expect(run(3, () => [0.2, 0.5, 0.3], params({ numBeams: 2 }), [[1]], greedySearch)).rejects.toThrow(RangeError);
    await expect(run(3, () => [0.2, 0.5, 0.3], params({ numReturnSequences: 2 }))).rejects.toThrow(RangeError);
  });
});
