import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { compileDotScan, dotScanSource } from "../../src/embed/dot-scan.build.mjs";
import { encodeVector } from "../../src/embed/store.js";
import { type AsyncEmbeddingSource, type Neighbour, VectorIndex } from "../../src/embed/vector-index.js";

/**
 * The scan's arithmetic written out independently: eight float32 sums (element j to sum j mod 8
 * below the last multiple of 8), paired k with k + 4, the pairs added in order, then the rest;
 * every operation rounded to float32.
 */
function referenceDot(m: Float32Array, q: Float32Array): number {
  const r = Math.fround;
  const sums = [0, 0, 0, 0, 0, 0, 0, 0];
  const n = q.length - (q.length % 8);
  for (let j = 0; j < n; j++) sums[j % 8] = r(sums[j % 8]! + r(m[j]! * q[j]!));
  const pairs = [0, 1, 2, 3].map((k) => r(sums[k]! + sums[k + 4]!));
  let s = r(r(r(pairs[0]! + pairs[1]!) + pairs[2]!) + pairs[3]!);
  for (let j = n; j < q.length; j++) s = r(s + r(m[j]! * q[j]!));
  return s;
}

/** Every accepted row scored and sorted: similarity high to low, then id low to high. */
function bruteForce(rows: Map<number, Float32Array>, q: Float32Array, k: number, accept: (id: number) => boolean): Neighbour[] {
  return [...rows]
    .filter(([id]) => accept(id))
    .map(([artworkId, v]) => ({ artworkId, similarity: referenceDot(v, q) }))
    .sort((a, b) => b.similarity - a.similarity || a.artworkId - b.artworkId)
    .slice(0, k);
}

function random(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function unitVector(dims: number, next: () => number): Float32Array {
  const v = Float32Array.from({ length: dims }, () => next() * 2 - 1);
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

/** An index filled from rows in memory, the way PostgreSQL fills it. */
async function indexOf(rows: Map<number, Float32Array>, dims: number): Promise<VectorIndex> {
  const index = new VectorIndex(null, "m");
  await index.refreshFrom(source(rows, dims));
  return index;
}

function source(rows: Map<number, Float32Array>, dims: number): AsyncEmbeddingSource {
  return {
    state: async () => ({ count: rows.size, newest: `v${rows.size}` }),
    rows: async () => [...rows].map(([artworkId, v]) => ({ artworkId, dims, vector: encodeVector(v) })),
  };
}

describe("dot-scan WebAssembly module", () => {
  it("is dot-scan.wat compiled (run npm run build:wasm after editing the text)", async () => {
    const committed = await readFile(new URL("../../src/embed/dot-scan-wasm.ts", import.meta.url), "utf8");
    expect(committed).toBe(dotScanSource(await compileDotScan()));
  });
});

describe("VectorIndex.nearest", () => {
  for (const dims of [1, 3, 4, 5, 7, 8, 9, 15, 384, 385]) {
    it(`gives exactly the brute-force ranking and similarities bit for bit (${dims} dimensions)`, async () => {
      const next = random(dims);
      const rows = new Map<number, Float32Array>();
      // Ids out of order, and past 1,024 rows so that the memory grows while loading.
      for (let i = 0; i < 2_500; i++) rows.set(((i * 7919) % 10_007) + 1, unitVector(dims, next));
      const index = await indexOf(rows, dims);
      for (let t = 0; t < 5; t++) {
        const q = unitVector(dims, next);
        const accept = t % 2 === 0 ? () => true : (id: number) => id % 3 !== 0;
        const got = index.nearest(q, 1 + t * 40, accept);
        const want = bruteForce(rows, q, 1 + t * 40, accept);
        expect(got.map((n) => n.artworkId)).toEqual(want.map((n) => n.artworkId));
        got.forEach((n, i) => expect(Object.is(n.similarity, want[i]!.similarity)).toBe(true));
        // similarity() is the same number the scan gave.
        for (const n of got) expect(Object.is(index.similarity(q, n.artworkId), n.similarity)).toBe(true);
      }
    });
  }

  it("asks the filter about k times when most works pass, and stays exact when few do", async () => {
    const next = random(7);
    const rows = new Map<number, Float32Array>();
    for (let i = 1; i <= 5_000; i++) rows.set(i, unitVector(32, next));
    const index = await indexOf(rows, 32);
    const q = unitVector(32, next);
    let asked = 0;
    const most = (id: number) => (asked++, id % 10 !== 0);
    expect(index.nearest(q, 100, most)).toEqual(bruteForce(rows, q, 100, (id) => id % 10 !== 0));
    expect(asked).toBeLessThanOrEqual(200);
    for (const few of [(id: number) => id % 97 === 0, (id: number) => id === 4_321, () => false]) {
      expect(index.nearest(q, 100, few)).toEqual(bruteForce(rows, q, 100, few));
    }
  });

  it("asks acceptAmong once, of the best 2k, and falls back to accept only when too few of those pass", async () => {
    const next = random(11);
    const rows = new Map<number, Float32Array>();
    for (let i = 1; i <= 5_000; i++) rows.set(i, unitVector(32, next));
    const index = await indexOf(rows, 32);
    const q = unitVector(32, next);
    const lists: number[][] = [];
    let asked = 0;
    const amongBy = (pass: (id: number) => boolean) => (ids: readonly number[]) => (lists.push([...ids]), new Set(ids.filter(pass)));
    const counted = (pass: (id: number) => boolean) => (id: number) => (asked++, pass(id));
    const most = (id: number) => id % 10 !== 0;
    expect(index.nearest(q, 100, counted(most), amongBy(most))).toEqual(bruteForce(rows, q, 100, most));
    expect(asked).toBe(0);
    expect(lists).toHaveLength(1);
    // The best 200 by the exact scan, best first.
    expect(lists[0]).toEqual(bruteForce(rows, q, 200, () => true).map((n) => n.artworkId));
    for (const few of [(id: number) => id % 97 === 0, () => false]) {
      lists.length = 0;
      expect(index.nearest(q, 100, counted(few), amongBy(few))).toEqual(bruteForce(rows, q, 100, few));
      expect(lists).toHaveLength(1);
      expect(asked).toBeGreaterThan(0);
    }
  });

  it("orders equal similarities by id, and keeps zero vectors at zero", async () => {
    const dims = 6;
    const same = unitVector(dims, random(1));
    const rows = new Map<number, Float32Array>([
      [40, same],
      [7, same],
      [19, same],
      [3, new Float32Array(dims)],
      [5, same.map((x) => -x)],
    ]);
    const index = await indexOf(rows, dims);
    const got = index.nearest(same, 5, () => true);
    expect(got.map((n) => n.artworkId)).toEqual([7, 19, 40, 3, 5]);
    expect(got[0]!.similarity).toBe(referenceDot(same, same));
    expect(Object.is(got[3]!.similarity, 0)).toBe(true);
    expect(got[4]!.similarity).toBe(-got[0]!.similarity);
  });

  it("stays exact as rows are added and replaced between searches, and after a reload with other dimensions", async () => {
    const next = random(99);
    const rows = new Map<number, Float32Array>();
    const src = source(rows, 16);
    const index = new VectorIndex(null, "m");
    for (const round of [10, 700, 3_000]) {
      while (rows.size < round) rows.set(rows.size + 1, unitVector(16, next));
      rows.set(1, unitVector(16, next));
      await index.refreshFrom(src);
      const q = unitVector(16, next);
      expect(index.nearest(q, 25, () => true)).toEqual(bruteForce(rows, q, 25, () => true));
    }
    // The same model name now holds fewer, 40-dimensional vectors: the index reloads whole.
    const wide = new Map<number, Float32Array>();
    for (let i = 1; i <= 2_000; i++) wide.set(i, unitVector(40, next));
    await index.refreshFrom({ state: async () => ({ count: wide.size, newest: "other" }), rows: async () => [...wide].map(([artworkId, v]) => ({ artworkId, dims: 40, vector: encodeVector(v) })) });
    const q = unitVector(40, next);
    expect(index.nearest(q, 25, () => true)).toEqual(bruteForce(wide, q, 25, () => true));
    expect(index.nearest(unitVector(16, next), 25, () => true)).toEqual([]);
  });

  it("scores only a few rows exactly past the int8 prefilter, and still gives the exact answer for crowded, equal and unnormalised vectors", async () => {
    const next = random(2026);
    for (const dims of [384, 20]) {
      // Spread: random unit vectors. The prefilter rules out almost every row.
      const spread = new Map<number, Float32Array>();
      for (let i = 1; i <= 20_000; i++) spread.set(i, unitVector(dims, next));
      const index = await indexOf(spread, dims);
      const q = unitVector(dims, next);
      expect(index.nearest(q, 50, () => true)).toEqual(bruteForce(spread, q, 50, () => true));
      expect(index.lastExactRows).toBeLessThan(dims === 384 ? 400 : 2_000);
      expect(index.lastExactRows).toBeGreaterThanOrEqual(100);

      // Crowded: every vector within a hair of one direction (cosines above 0.999, as near-duplicate
      // texts give), exact duplicates among them, and lengths other than 1.
      const base = unitVector(dims, next);
      const crowded = new Map<number, Float32Array>();
      for (let i = 1; i <= 3_000; i++) {
        const v = i % 7 === 0 ? crowded.get(i - 1)! : base.map((x) => x + (next() - 0.5) * 1e-3);
        crowded.set(i, i % 11 === 0 ? v.map((x) => x * 3) : v);
      }
      const near = await indexOf(crowded, dims);
      for (const k of [1, 10, 100]) {
        const query = base.map((x) => x + (next() - 0.5) * 1e-3);
        const got = near.nearest(query, k, () => true);
        const want = bruteForce(crowded, query, k, () => true);
        expect(got.map((n) => n.artworkId)).toEqual(want.map((n) => n.artworkId));
        got.forEach((n, i) => expect(Object.is(n.similarity, want[i]!.similarity)).toBe(true));
      }
    }
  });

  it("finds nothing in an empty index or for k < 1", async () => {
    const index = await indexOf(new Map(), 8);
    expect(index.nearest(new Float32Array(8), 10, () => true)).toEqual([]);
    const full = await indexOf(new Map([[1, unitVector(8, random(3))]]), 8);
    expect(full.nearest(unitVector(8, random(4)), 0, () => true)).toEqual([]);
  });
});
