/**
 * npx tsx bench/quality.ts — the cost of the quality signals (src/quality).
 *
 * Builds BENCH_DESCRIPTIONS (20,000) synthetic 150-word descriptions (test/support/bulk.ts's
 * Zipf text) with Wikidata facts (three depicted items with aliases, one a human; the work's P31
 * and P186) and a measured image figure, then times assessQuality over all of them, as
 * `artdesc quality recompute` would, without the database. Targets: under 5 ms per description
 * when writing one, under 60 s for 20,000.
 */
import { assessQuality } from "../src/quality/assess.js";
import type { DepictedItem, LabelledItem, QualityInput } from "../src/quality/types.js";
import { bulkText } from "../test/support/bulk.js";

const COUNT = Number(process.env.BENCH_DESCRIPTIONS ?? 20_000);
const WORDS = Number(process.env.BENCH_WORDS ?? 150);

const depicts: DepictedItem[] = [
  { qid: "Q19707", labels: { en: "donkey", es: "burro" }, aliases: { en: ["ass"], es: ["asno"] }, instanceOf: ["Q729"] },
  { qid: "Q144", labels: { en: "dog", es: "perro" }, aliases: { en: ["domestic dog", "hound"] }, instanceOf: ["Q729"] },
  { qid: "Q9999", labels: { en: "Duchess of Alba" }, aliases: {}, instanceOf: ["Q5"] },
];
const kinds: { instanceOf: LabelledItem[]; materials: LabelledItem[] }[] = [
  { instanceOf: [{ qid: "Q3305213", labels: { en: "painting", es: "pintura" } }], materials: [{ qid: "Q296955", labels: { en: "oil paint" } }] },
  { instanceOf: [{ qid: "Q18218093", labels: { en: "etching", es: "aguafuerte" } }], materials: [{ qid: "Q11472", labels: { en: "paper" } }] },
];

const inputs: QualityInput[] = Array.from({ length: COUNT }, (_, i) => ({
  text: bulkText(i + 1, WORDS),
  language: "en",
  generation: { finishReason: i % 3 ? "eos" : "stop", trimmed: i % 17 === 0, markdownRemoved: i % 23 === 0, targetWords: 150 },
  work: { depicts, ...kinds[i % 2]! },
  image: { chroma: i % 2 ? 3 : 40, tint: { hue: 60, chroma: 12 } },
  languages: ["en", "es"],
}));

// Warm up the JIT on a few, then time all.
for (let i = 0; i < 200; i++) assessQuality(inputs[i % COUNT]!);
const flagCounts = new Map<string, number>();
const t = performance.now();
let slowest = 0;
for (const input of inputs) {
  const s = performance.now();
  const r = assessQuality(input);
  slowest = Math.max(slowest, performance.now() - s);
  for (const f of r.flags) flagCounts.set(f, (flagCounts.get(f) ?? 0) + 1);
}
const total = performance.now() - t;
console.log(`${COUNT} descriptions of ${WORDS} words: ${(total / 1000).toFixed(2)} s in all, ${(total / COUNT).toFixed(3)} ms each, slowest ${slowest.toFixed(2)} ms`);
console.log(`flags raised: ${[...flagCounts].map(([f, n]) => `${f} ${n}`).join(", ")}`);
console.log(`targets: < 5 ms each (${total / COUNT < 5 ? "met" : "MISSED"}), < 60 s for 20,000 (${(total / COUNT) * 20_000 < 60_000 ? "met" : "MISSED"})`);
