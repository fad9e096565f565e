import type { BeamSearchItem, StepFn } from "../../src/describe/beam-search.js";

/**
 * A scripted language model for beam-search tests: `probs(prompt, generated)` gives the next-token
 * distribution; logits are log-probabilities, so log-softmax returns them unchanged. It tracks
 * each row's sequence through `parents` the way the engine tracks its key/value cache.
 */
export function scriptedModel(vocab: number, probs: (prompt: readonly number[], generated: readonly number[]) => number[]) {
  const calls: { parents: number[]; tokens: number[] }[] = [];
  let rows: { prompt: readonly number[]; generated: number[] }[] = [];
  const logitsOf = (r: { prompt: readonly number[]; generated: number[] }) => {
    const p = probs(r.prompt, r.generated);
    if (p.length !== vocab) throw new Error(`script gave ${p.length} probabilities for vocab ${vocab}`);
    return p.map((x) => Math.log(x));
  };
  return {
    calls,
    prefill(items: BeamSearchItem[]): Float32Array {
      rows = items.map((it) => ({ prompt: it.promptIds, generated: [] }));
      return Float32Array.from(rows.flatMap(logitsOf));
    },
    step: ((parents, tokens) => {
      calls.push({ parents: [...parents], tokens: [...tokens] });
      rows = [...parents].map((p, i) => ({ prompt: rows[p]!.prompt, generated: [...rows[p]!.generated, tokens[i]!] }));
      return Float32Array.from(rows.flatMap(logitsOf));
    }) satisfies StepFn,
  };
}
