import { greedySearch } from "./greedy.js";
import { applyProcessors, logSoftmaxInto, type ProcessorParams } from "./logits-processors.js";
import { countWords, endsSentence } from "./postprocess.js";
import type { EarlyStopping, FinishReason } from "./types.js";

/**
 * Beam search as Python transformers' `_beam_search` does it (v4.36+; rules in
 * /shared/reference/beam-search.md), driven by a `step` callback so it runs the same against a
 * scripted table in tests and against the ONNX decoder in the engine. Several items (images)
 * decode together; each item behaves exactly as it would alone, and an item that is done drops
 * out of the rows sent to `step`.
 *
 * Callers decode through `decodeTokens()`, which picks the mode as Hugging Face's `generate()` does:
 * one beam is greedy search (greedy.ts), two or more beam search. `beamSearch` with one beam is
 * Python's `_beam_search` run with num_beams=1, which HF never runs; it differs from greedy once
 * a processor changes the ranking (the processors see log-probabilities here, raw logits there)
 * or an EOS is ranked first (it finishes a hypothesis and the beam goes on with the runner-up).
 */

export interface DecodingParams extends ProcessorParams {
  numBeams: number;
  maxNewTokens: number;
  lengthPenalty: number;
  earlyStopping: EarlyStopping;
  numReturnSequences: number;
  /**
   * An extra stopping criterion checked on every candidate that is not an EOS token: when it
   * returns true the candidate finishes like EOS, with finish reason "stop" (the target length).
   * Like EOS it is not checked before min_new_tokens tokens.
   * `prefix` is the candidate's generated tokens before `token`.
   */
  stop?: (item: number, prefix: readonly number[], token: number) => boolean;
}

export interface BeamSearchItem {
  /** The whole prompt as token ids (image tokens included), as the processors see it. */
  promptIds: readonly number[];
}

/**
 * Runs the model for one step. Row r of the new batch continues row `parents[r]` of the previous
 * call (for the first call: of the prefill, where row i is item i's prompt) with token `tokens[r]`.
 * Returns the last-position logits, rows x vocab.
 */
export type StepFn = (parents: Int32Array, tokens: Int32Array) => Promise<ArrayLike<number>> | ArrayLike<number>;

export interface Hypothesis {
  /** Generated tokens, the final EOS included when the hypothesis ended with one. */
  tokens: number[];
  /**
   * Beam search: summed log-probability divided by generated length ** length_penalty.
   * Greedy: the mean log-probability of the chosen tokens (see greedy.ts).
   */
  score: number;
  sumLogProbs: number;
  finishReason: FinishReason;
}

export interface BeamSearchOutput {
  /** Per item, the best `numReturnSequences` hypotheses, best first. */
  hypotheses: Hypothesis[][];
  /** Number of `step` calls made. */
  steps: number;
}

export interface BeamSearchRun {
  items: readonly BeamSearchItem[];
  /** The prefill's last-position logits, one row per item (items x vocab). */
  prefillLogits: ArrayLike<number>;
  vocabSize: number;
  params: DecodingParams;
  step: StepFn;
  /** Called after each step with the generated length of each item still decoding. */
  onStep?: (item: number, generated: number) => void;
  /**
   * Asked before each step for every item still decoding: true drops the item (a cancelled job).
   * Its rows leave the batch, the other items go on exactly as before, and it returns no hypotheses.
   */
  dropped?: (item: number) => boolean;
  signal?: AbortSignal;
}

const NEG = -1.0e9;

interface Beam {
  tokens: number[];
  score: number;
}

interface Slot {
  tokens: number[];
  score: number;
  sumLogProbs: number;
  finished: boolean;
  finishReason: FinishReason;
}

interface Candidate {
  beam: number;
  token: number;
  logProb: number;
  hitsStop: boolean;
  reason: FinishReason;
}

interface ItemState {
  running: Beam[];
  slots: Slot[];
  heuristicUnsatisfied: boolean;
  done: boolean;
  /** First row of this item in the rows of the last step (or prefill), -1 once done. */
  row: number;
}

/** Stable descending order of indices by value: ties keep the earlier index, like torch.topk on CPU. */
function topIndices(values: readonly number[], k: number): number[] {
  return values
    .map((v, i) => [v, i] as const)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .slice(0, k)
    .map(([, i]) => i);
}

/**
 * The top `k` (value, flat index) of `rows` score rows, ties to the lower index, where row b's
 * values are `rows[b][t] + add[b]` rounded to float32: the beam's summed score added as Python adds
 * it to the float32 log-probabilities, in the same pass as the selection (no second pass writing
 * the sums over beams x vocab).
 */
function topK(rows: Float32Array[], add: readonly number[], k: number): { value: number; index: number }[] {
  const vocab = rows[0]!.length;
  const values: number[] = [];
  const indices: number[] = [];
  for (let b = 0; b < rows.length; b++) {
    const row = rows[b]!;
    const s = add[b]!;
    for (let t = 0; t < vocab; t++) {
      const v = Math.fround(row[t]! + s);
      if (values.length === k && !(v > values[k - 1]!)) continue;
      let pos = values.length;
      while (pos > 0 && v > values[pos - 1]!) pos--;
      values.splice(pos, 0, v);
      indices.splice(pos, 0, b * vocab + t);
      if (values.length > k) {
        values.pop();
        indices.pop();
      }
    }
  }
  return values.map((value, i) => ({ value, index: indices[i]! }));
}

/** Decodes as Hugging Face's `generate()` without sampling: greedy for one beam, else beam search. */
export function decodeTokens(run: BeamSearchRun): Promise<BeamSearchOutput> {
  return run.params.numBeams === 1 ? greedySearch(run) : beamSearch(run);
}

export async function beamSearch(run: BeamSearchRun): Promise<BeamSearchOutput> {
  const { items, params: p, vocabSize: vocab } = run;
  const nb = p.numBeams;
  if (!Number.isInteger(nb) || nb < 1) throw new RangeError(`numBeams must be a positive integer, got ${nb}`);
  if (p.numReturnSequences < 1 || p.numReturnSequences > nb) {
    throw new RangeError(`numReturnSequences must be between 1 and numBeams (${nb}), got ${p.numReturnSequences}`);
  }
  if (p.maxNewTokens < 1) throw new RangeError(`maxNewTokens must be at least 1, got ${p.maxNewTokens}`);
  const eos = new Set(p.eosTokenIds);
  const k = Math.max(2, 1 + p.eosTokenIds.length) * nb;
  const lp = p.lengthPenalty;

  const states: ItemState[] = items.map((_, i) => ({
    // Step 2 of the rules: beam 0 starts at 0, the others at -1e9, all from the same prefill row.
    running: Array.from({ length: nb }, (_, b) => ({ tokens: [], score: b === 0 ? 0 : NEG })),
    slots: Array.from({ length: nb }, () => ({ tokens: [], score: NEG, sumLogProbs: NEG, finished: false, finishReason: "length" as FinishReason })),
    heuristicUnsatisfied: true,
    done: false,
    row: i,
  }));

  const scratch = Array.from({ length: nb }, () => new Float32Array(vocab));
  const seen = new Uint8Array(vocab);
  let logits: ArrayLike<number> = run.prefillLogits;
  let first = true;
  let steps = 0;

  for (let generated = 0; ; ) {
    const parents: number[] = [];
    const tokens: number[] = [];
    const active: number[] = [];
    let rowCount = 0;

    for (let item = 0; item < items.length; item++) {
      const st = states[item]!;
      if (st.done) continue;
      if (run.dropped?.(item)) {
        st.done = true;
        st.row = -1;
        st.slots = [];
        continue;
      }
      active.push(item);
      // 1. log-softmax and processors per running beam (2., adding the beam's summed score, is in topK).
      for (let b = 0; b < nb; b++) {
        const row = first ? st.row : st.row + b;
        const out = scratch[b]!;
        logSoftmaxInto(logits, row * vocab, vocab, out);
        applyProcessors(out, { prompt: items[item]!.promptIds, generated: st.running[b]!.tokens }, p, seen);
      }
      // 3. the top K candidates over beams x vocab (the beam's score added as they are scanned).
      const genLen = generated + 1;
      const atMax = genLen >= p.maxNewTokens;
      const beamScores = st.running.map((r) => r.score);
      const candidates: Candidate[] = topK(scratch, beamScores, k).map(({ value, index }) => {
        const beam = Math.floor(index / vocab);
        const token = index % vocab;
        // 4. finished: an EOS id, the extra stop criterion, or max length.
        let reason: FinishReason | undefined;
        if (eos.has(token)) reason = "eos";
        // Like EOS, the extra stop is not allowed before min_new_tokens.
        else if (p.stop && genLen >= p.minNewTokens && p.stop(item, st.running[beam]!.tokens, token)) reason = "stop";
        else if (atMax) reason = "length";
        return { beam, token, logProb: value, hitsStop: reason !== undefined, reason: reason ?? "length" };
      });

      // 5. next running beams: the best nb after pushing finished candidates down by 1e9.
      const runningScores = candidates.map((c) => c.logProb + (c.hitsStop ? NEG : 0));
      const nextIdx = topIndices(runningScores, nb);
      const nextRunning = nextIdx.map((ci) => ({
        tokens: [...st.running[candidates[ci]!.beam]!.tokens, candidates[ci]!.token],
        score: runningScores[ci]!,
        parent: candidates[ci]!.beam,
      }));

      // 6. finished hypotheses: only candidates ranked within the first nb; length penalty on the
      // generated length including the new token; nothing enters once full (early_stopping true)
      // or once improvement is impossible.
      const full = st.slots.every((s) => s.finished) && p.earlyStopping === true;
      const denom = genLen ** lp;
      const merged: Slot[] = [...st.slots];
      const mergedScores = st.slots.map((s) => s.score);
      candidates.forEach((c, rank) => {
        const entered = c.hitsStop && rank < nb;
        let score = c.logProb / denom;
        if (full) score += NEG;
        if (!st.heuristicUnsatisfied) score += NEG;
        if (!entered) score += NEG;
        merged.push({
          tokens: [...st.running[c.beam]!.tokens, c.token],
          score,
          sumLogProbs: c.logProb,
          finished: entered,
          finishReason: c.reason,
        });
        mergedScores.push(score);
      });
      st.slots = topIndices(mergedScores, nb).map((i) => merged[i]!);

      // 7. the stop-early heuristic, after the length increment.
      const bestRunning = Math.max(...nextRunning.map((r) => r.score));
      const hypotheticalLen = p.earlyStopping === "never" && lp > 0 ? p.maxNewTokens : genLen;
      const bestPossible = bestRunning / hypotheticalLen ** lp;
      const worstFinished = Math.min(...st.slots.map((s) => s.score));
      st.heuristicUnsatisfied &&= st.slots.some((s) => bestPossible > (s.finished ? worstFinished : NEG));

      // 8. done: no improvement possible, full with early_stopping true, or no valid continuation.
      const allFull = st.slots.every((s) => s.finished);
      st.done = !st.heuristicUnsatisfied || (allFull && p.earlyStopping === true) || candidates.every((c) => c.hitsStop);

      const prevRow = st.row;
      if (st.done) {
        st.row = -1;
      } else {
        st.row = rowCount;
        rowCount += nb;
        for (const r of nextRunning) {
          parents.push(first ? prevRow : prevRow + r.parent);
          tokens.push(r.tokens[r.tokens.length - 1]!);
        }
      }
      st.running = nextRunning.map(({ tokens, score }) => ({ tokens, score }));
    }

    generated++;
    first = false;
    for (const item of active) run.onStep?.(item, generated);
    if (rowCount === 0) break;
    if (run.signal?.aborted) throw run.signal.reason ?? new Error("aborted");
    logits = await run.step(Int32Array.from(parents), Int32Array.from(tokens));
    steps++;
    if (logits.length !== rowCount * vocab) {
      throw new Error(`step returned ${logits.length} logits, expected ${rowCount} rows x ${vocab}`);
    }
  }

  // 9. output: the best numReturnSequences finished hypotheses.
  const hypotheses = states.map((st) =>
    st.slots
      .filter((s) => s.finished)
      .slice(0, p.numReturnSequences)
      .map(({ tokens, score, sumLogProbs, finishReason }) => ({ tokens, score, sumLogProbs, finishReason })),
  );
  return { hypotheses, steps };
}

/**
 * The target-length stop: a candidate finishes when its text ends a sentence and has at least
 * `targetWords` words. `decode` turns generated token ids into text. Only tokens whose own text
 * holds a sentence-ending mark trigger a full decode.
 */
export function targetLengthStop(
  decode: (ids: readonly number[]) => string,
  targetWords: number,
): (item: number, prefix: readonly number[], token: number) => boolean {
  const mayEnd = new Map<number, boolean>();
  return (_item, prefix, token) => {
    let m = mayEnd.get(token);
    if (m === undefined) {
      m = /[.!?]/.test(decode([token]));
      mayEnd.set(token, m);
    }
    if (!m) return false;
    const text = decode([...prefix, token]);
    return endsSentence(text) && countWords(text) >= targetWords;
  };
}
