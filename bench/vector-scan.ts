/**
 * npx tsx bench/vector-scan.ts — the exact vector scan alone: one query against BENCH_VECTORS
 * (20,000) random unit vectors of BENCH_DIMS (384) dimensions, the best 100, median of 60 runs.
 * Prints VectorIndex.nearest as it runs (the int8 prefilter, then the rows it leaves scored
 * exactly), the exact WebAssembly SIMD scan of every row (the prefilter off), and the plain
 * JavaScript loop of the same float32 arithmetic; checks that all three give the same numbers.
 */
import { encodeVector } from "../src/embed/store.js";
import { dot, VectorIndex } from "../src/embed/vector-index.js";

/** The scan's float32 arithmetic in JavaScript: the index's own `dot`, as `similarity()` uses it. */
const jsDot = (m: Float32Array, q: Float32Array) => dot(m, 0, q);

const N = Number(process.env.BENCH_VECTORS ?? 20_000);
const D = Number(process.env.BENCH_DIMS ?? 384);
let seed = 1;
const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
const unit = () => {
  const v = Float32Array.from({ length: D }, random);
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
};
const vectors = Array.from({ length: N }, unit);
const index = new VectorIndex(null, "bench");
await index.refreshFrom({
  state: async () => ({ count: N, newest: 1 }),
  rows: async () => vectors.map((v, i) => ({ artworkId: i + 1, dims: D, vector: encodeVector(v) })),
});

const median = (run: () => void) => {
  const times: number[] = [];
  for (let i = 0; i < 60; i++) {
    const t = performance.now();
    run();
    times.push(performance.now() - t);
  }
  return times.sort((a, b) => a - b)[30]!;
};
const q = unit();
const scores = new Float64Array(N);
const js = median(() => vectors.forEach((v, i) => (scores[i] = jsDot(v, q))));
const prefiltered = median(() => index.nearest(q, 100, () => true));
const fromPrefilter = index.nearest(q, 100, () => true);
const scored = index.lastExactRows;
index.prefilter = false;
const exact = median(() => index.nearest(q, 100, () => true));
const fromExact = index.nearest(q, 100, () => true);
fromPrefilter.forEach((n, i) => {
  if (n.artworkId !== fromExact[i]!.artworkId || !Object.is(n.similarity, fromExact[i]!.similarity)) throw new Error(`rank ${i + 1}: the prefiltered and exact scans disagree`);
  if (!Object.is(n.similarity, jsDot(vectors[n.artworkId - 1]!, q))) throw new Error(`work ${n.artworkId}: the scans disagree`);
});
console.log(
  `${N} x ${D}, best 100: int8 prefilter + ${scored} rows scored exactly ${prefiltered.toFixed(2)} ms; exact WebAssembly SIMD scan ${exact.toFixed(2)} ms; ` +
    `JavaScript loop ${js.toFixed(2)} ms; same works, same similarities`,
);
