/**
 * npx tsx bench/vector-scan.ts — the exact vector scan alone: one query against BENCH_VECTORS
 * (20,000) random unit vectors of BENCH_DIMS (384) dimensions, the best 100, median of 60 runs.
 * Prints the WebAssembly SIMD scan that VectorIndex.nearest uses next to the plain JavaScript
 * loop it replaced (four float64 running sums), and checks that both give the same numbers.
 */
import { encodeVector } from "../src/embed/store.js";
import { VectorIndex } from "../src/embed/vector-index.js";

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

/** The JavaScript scan as it was before the WebAssembly module. */
function jsDot(m: Float32Array, q: Float32Array): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0; // prettier-ignore
  const n = q.length - (q.length % 4);
  let j = 0;
  for (; j < n; j += 4) {
    s0 += m[j]! * q[j]!;
    s1 += m[j + 1]! * q[j + 1]!;
    s2 += m[j + 2]! * q[j + 2]!;
    s3 += m[j + 3]! * q[j + 3]!;
  }
  for (; j < q.length; j++) s0 += m[j]! * q[j]!;
  return s0 + s1 + s2 + s3;
}

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
const wasm = median(() => index.nearest(q, 100, () => true));
for (const n of index.nearest(q, 100, () => true)) {
  if (!Object.is(n.similarity, jsDot(vectors[n.artworkId - 1]!, q))) throw new Error(`work ${n.artworkId}: the scans disagree`);
}
console.log(`${N} x ${D}: JavaScript scan ${js.toFixed(2)} ms, WebAssembly SIMD scan + best 100 ${wasm.toFixed(2)} ms (${(js / wasm).toFixed(1)}x); same similarities`);
