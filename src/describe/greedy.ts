import type { BeamSearchOutput, BeamSearchRun, Hypothesis } from "./beam-search.js";
import { applyProcessors, logSoftmaxInto } from "./logits-processors.js";
import type { FinishReason } from "./types.js";

/**
 * Greedy search as Hugging Face transformers runs it for `num_beams=1, do_sample=False`
 * (Python's `_sample` without sampling; transformers.js's `generate()` with its GreedySampler):
 * each step takes the last position's logits as float32, runs the logits processors on these raw
 * logits (repetition penalty → no-repeat-ngram → bad words → min_new_tokens, HF's order), and
 * takes the argmax (the lowest id on a tie, like torch.argmax and transformers.js). A row stops
 * at an EOS id (kept as its last token), at max_new_tokens, or at the extra `stop` criterion
 * (never before min_new_tokens). `earlyStopping`, `lengthPenalty` and the beam rules do not apply.
 *
 * The score: HF reports none for greedy (transformers.js's sampler returns 0). The project stores
 * what `compute_transition_scores(sequences, scores, normalize_logits=True)` gives per token in
 * Python — the log-softmax of the processed scores at the chosen token — averaged over the
 * generated tokens (EOS included): `score = sumLogProbs / tokens.length`.
 *
 * Same run interface as beamSearch: several items decode together, one row each, and an item
 * that is done (or dropped) leaves the rows sent to `step`.
 */
export async function greedySearch(run: BeamSearchRun): Promise<BeamSearchOutput> {
  const { items, params: p, vocabSize: vocab } = run;
  if (p.numBeams !== 1) throw new RangeError(`greedy search runs one beam, got numBeams ${p.numBeams}`);
  if (p.numReturnSequences !== 1) {
    throw new RangeError(`numReturnSequences must be 1 for greedy search (one beam), got ${p.numReturnSequences}`);
  }
  if (p.maxNewTokens < 1) throw new RangeError(`maxNewTokens must be at least 1, got ${p.maxNewTokens}`);
  const eos = new Set(p.eosTokenIds);

  interface Row {
    tokens: number[];
    sumLogProbs: number;
    finishReason: FinishReason | null;
    dropped: boolean;
    /** This item's row in the last step's (or prefill's) logits, -1 once done. */
    row: number;
  }
  const rows: Row[] = items.map((_, i) => ({ tokens: [], sumLogProbs: 0, finishReason: null, dropped: false, row: i }));
  const scores = new Float32Array(vocab);
  const logProbs = new Float32Array(vocab);
  const seen = new Uint8Array(vocab);
  let logits: ArrayLike<number> = run.prefillLogits;
  let steps = 0;

  for (let generated = 0; ; ) {
    const parents: number[] = [];
    const tokens: number[] = [];
    const active: number[] = [];
    for (let item = 0; item < items.length; item++) {
      const st = rows[item]!;
      if (st.row < 0) continue;
      if (run.dropped?.(item)) {
        st.dropped = true;
        st.row = -1;
        continue;
      }
      active.push(item);
      // Raw logits as float32, the processors, then argmax.
      const offset = st.row * vocab;
      for (let t = 0; t < vocab; t++) scores[t] = logits[offset + t]!;
      applyProcessors(scores, { prompt: items[item]!.promptIds, generated: st.tokens }, p, seen);
      let token = 0;
      for (let t = 1; t < vocab; t++) if (scores[t]! > scores[token]!) token = t;
      logSoftmaxInto(scores, 0, vocab, logProbs);
      st.sumLogProbs += logProbs[token]!;

      const genLen = st.tokens.length + 1;
      if (eos.has(token)) st.finishReason = "eos";
      else if (p.stop && genLen >= p.minNewTokens && p.stop(item, st.tokens, token)) st.finishReason = "stop";
      else if (genLen >= p.maxNewTokens) st.finishReason = "length";
      st.tokens.push(token);

      const prevRow = st.row;
      if (st.finishReason) {
        st.row = -1;
      } else {
        st.row = parents.length;
        parents.push(prevRow);
        tokens.push(token);
      }
    }

    generated++;
    for (const item of active) run.onStep?.(item, generated);
    if (parents.length === 0) break;
    if (run.signal?.aborted) throw run.signal.reason ?? new Error("aborted");
    logits = await run.step(Int32Array.from(parents), Int32Array.from(tokens));
    steps++;
    if (logits.length !== parents.length * vocab) {
      throw new Error(`step returned ${logits.length} logits, expected ${parents.length} rows x ${vocab}`);
    }
  }

  const hypotheses = rows.map((st): Hypothesis[] =>
    st.dropped
      ? []
      : [{ tokens: st.tokens, score: st.sumLogProbs / st.tokens.length, sumLogProbs: st.sumLogProbs, finishReason: st.finishReason ?? "length" }],
  );
  return { hypotheses, steps };
}
