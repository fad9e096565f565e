/**
 * Logits processing for one row, following Python transformers (generation/utils.py and
 * logits_process.py): the processors in the order repetition penalty → no-repeat-ngram → bad words
 * → min new tokens, with no renormalisation afterwards. Every processor sees the whole sequence
 * (prompt and image tokens included). What they run on depends on the mode, as in HF: beam search
 * (`_beam_search`) takes the log-softmax in float32 first and processes the log-probabilities;
 * greedy search (`_sample`, greedy.ts) processes the raw float32 logits. See
 * /shared/reference/beam-search.md.
 */

export interface ProcessorParams {
  repetitionPenalty: number;
  noRepeatNgramSize: number;
  /** Token sequences that may never be generated (e.g. the image tokens). */
  badWordsIds: readonly (readonly number[])[];
  minNewTokens: number;
  eosTokenIds: readonly number[];
}

/** Log-softmax of `logits[offset .. offset + vocab)` into `out` (float32), computed in float64. */
export function logSoftmaxInto(logits: ArrayLike<number>, offset: number, vocab: number, out: Float32Array): void {
  let max = -Infinity;
  for (let i = 0; i < vocab; i++) {
    const v = Math.fround(logits[offset + i]!);
    if (v > max) max = v;
  }
  let sum = 0;
  for (let i = 0; i < vocab; i++) sum += Math.exp(Math.fround(logits[offset + i]!) - max);
  const logZ = max + Math.log(sum);
  for (let i = 0; i < vocab; i++) out[i] = Math.fround(logits[offset + i]!) - logZ;
}

/**
 * A row's token sequence as the processors see it: the prompt followed by the generated tokens,
 * without concatenating them (the prompt is long and shared by every beam).
 */
export interface RowSequence {
  prompt: readonly number[];
  generated: readonly number[];
}

const at = (s: RowSequence, i: number) => (i < s.prompt.length ? s.prompt[i]! : s.generated[i - s.prompt.length]!);
const lengthOf = (s: RowSequence) => s.prompt.length + s.generated.length;

/** Applies the processors in place to one row of log-probabilities. `seen` is scratch space of vocab size. */
export function applyProcessors(scores: Float32Array, seq: RowSequence, p: ProcessorParams, seen: Uint8Array): void {
  const vocab = scores.length;
  const len = lengthOf(seq);

  // RepetitionPenaltyLogitsProcessor: every distinct token of the sequence, once.
  if (p.repetitionPenalty !== 1) {
    const touched: number[] = [];
    for (let i = 0; i < len; i++) {
      const t = at(seq, i);
      if (t < 0 || t >= vocab || seen[t]) continue;
      seen[t] = 1;
      touched.push(t);
      const s = scores[t]!;
      scores[t] = s < 0 ? s * p.repetitionPenalty : s / p.repetitionPenalty;
    }
    for (const t of touched) seen[t] = 0;
  }

  // NoRepeatNGramLogitsProcessor: ban each token that would complete an n-gram already present.
  const n = p.noRepeatNgramSize;
  if (n > 0 && len + 1 >= n) {
    const prefixStart = len - (n - 1);
    for (let i = 0; i + n - 1 < len; i++) {
      let match = true;
      for (let j = 0; j < n - 1; j++) {
        if (at(seq, i + j) !== at(seq, prefixStart + j)) {
          match = false;
          break;
        }
      }
      if (match) {
        const banned = at(seq, i + n - 1);
        if (banned >= 0 && banned < vocab) scores[banned] = -Infinity;
      }
    }
  }

  // NoBadWordsLogitsProcessor: ban the last token of each sequence whose prefix the row ends with.
  for (const words of p.badWordsIds) {
    const last = words[words.length - 1];
    if (last === undefined || last < 0 || last >= vocab) continue;
    const prefix = words.length - 1;
    if (prefix > len) continue;
    let match = true;
    for (let j = 0; j < prefix; j++) {
      if (at(seq, len - prefix + j) !== words[j]) {
        match = false;
        break;
      }
    }
    if (match) scores[last] = -Infinity;
  }

  // MinNewTokensLengthLogitsProcessor.
  if (seq.generated.length < p.minNewTokens) {
    for (const eos of p.eosTokenIds) if (eos >= 0 && eos < vocab) scores[eos] = -Infinity;
  }
}
