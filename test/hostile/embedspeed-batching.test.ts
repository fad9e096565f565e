import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Config, loadConfig } from "../../src/config.js";
import { synthEmbedModel } from "../../src/describe/models/embed-synth.js";
import { meaningSource, openEmbedder } from "../../src/embed/embedder.js";
import { embedMissing } from "../../src/embed/jobs.js";
import { createGraphqlApp, type Yoga } from "../../src/graphql/yoga.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { makeArtwork } from "../support/factories.js";
import { gql } from "../support/graphql.js";

/**
 * Many people searching by meaning at once: their queries wait for the API's embedding thread and
 * go to it together (QueryEmbedder batches them). Each person must still get the answer to their
 * own query, whatever it shared a run with: long queries, odd scripts, the same text twice.
 * Through GraphQL (yoga.fetch) on the semantic test model (embed-tiny), real thread and tokenizer.
 */

const MODEL_ID = "artdesc/synth-embed-tiny";
let t: TestDb;
let modelDir: string;
let config: Config;
let yoga: Yoga;

const SEARCH = `query($q: String!, $mode: SearchMode) { search(query: $q, mode: $mode, first: 3) { edges { node { matchedBy similarity artwork { qid } } } } }`;
type Answer = { qids: string[]; similarity: number | null; error?: string };

async function search(q: string, mode = "SEMANTIC"): Promise<Answer> {
  const r = await gql(yoga, SEARCH, { q, mode });
  if (r.errors) return { qids: [], similarity: null, error: r.errors.map((e) => e.message).join("; ") };
  const edges = r.data.search.edges as { node: { similarity: number | null; artwork: { qid: string } } }[];
  return { qids: edges.map((e) => e.node.artwork.qid), similarity: edges[0]?.node.similarity ?? null };
}

// Each query's meaning has one work; none shares a word with it.
const EXPECTED: [string, string][] = [
  ["hound", "Q301"],
  ["perro", "Q301"],
  ["firing squad", "Q302"],
  ["fusilamiento", "Q302"],
  ["ocean waves", "Q303"],
  ["caballo", "Q304"],
  ["mujer", "Q305"],
  ["calavera", "Q306"],
  ["catedral", "Q307"],
  ["reina", "Q308"],
  ["manzana", "Q309"],
  ["ninos", "Q310"],
];

beforeAll(async () => {
  t = await createTestDb();
  modelDir = mkdtempSync(join(tmpdir(), "artdesc-embedspeed-"));
  synthEmbedModel({ preset: "embed-tiny", outDir: join(modelDir, MODEL_ID) });
  config = loadConfig({ MODEL_DIR: modelDir, EMBED_MODEL_ID: MODEL_ID, GRAPHQL_RESPONSE_CACHE: "false" });
  yoga = createGraphqlApp({ db: t.db, config });
  const works: [string, string][] = [
    ["Q301", "A dog sleeps."],
    ["Q302", "Soldiers with rifles; an execution."],
    ["Q303", "The sea and its shore."],
    ["Q304", "A horse and its rider."],
    ["Q305", "A lady in a dress."],
    ["Q306", "A skull, death."],
    ["Q307", "A chapel, an altar."],
    ["Q308", "A king on a throne."],
    ["Q309", "Bread and grapes."],
    ["Q310", "A boy and a girl."],
  ];
  for (const [qid, description] of works) await makeArtwork(t.db, { qid, title: qid, description });
  const embedder = await openEmbedder(config);
  try {
    expect(await embedMissing(t.db, embedder, 4)).toEqual({ embedded: works.length, unchanged: 0 });
  } finally {
    await embedder.close();
  }
  await meaningSource(config).warm();
}, 60_000);

afterAll(async () => {
  await meaningSource(config).close();
  await t?.close();
  rmSync(modelDir, { recursive: true, force: true });
});

describe("a burst of searches by meaning, embedded together", () => {
  it("answers each query by its own meaning, in any order and mode", async () => {
    const asked = [...EXPECTED, ...[...EXPECTED].reverse()].map(([q, qid], i) => ({ q, qid, mode: i % 2 ? "HYBRID" : "SEMANTIC" }));
    const answers = await Promise.all(asked.map((a) => search(a.q, a.mode)));
    answers.forEach((a, i) => {
      expect(a.error, asked[i]!.q).toBeUndefined();
      expect(a.qids[0], `${asked[i]!.q} (${asked[i]!.mode})`).toBe(asked[i]!.qid);
    });
  });

  it("keeps short queries right when the longest queries the API takes (500 characters) arrive with them", async () => {
    // At most 32 words (MAX_QUERY_WORDS): long words make them long.
    const word = (i: number) => String.fromCharCode(97 + (i % 26)).repeat(14) + String.fromCharCode(97 + ((i * 7) % 26));
    const long = [
      Array.from({ length: 31 }, (_, i) => word(i)).join(" ") + " dog",
      "zyxw".repeat(125),
      `${"a".repeat(498)} z`,
      Array.from({ length: 30 }, (_, i) => word(i + 5)).join(" ") + " skull calavera",
    ];
    for (const q of long) expect(q.length).toBeGreaterThanOrEqual(490);
    const asked = [long[0]!, ...EXPECTED.slice(0, 4).map(([q]) => q), long[1]!, long[2]!, ...EXPECTED.slice(4, 8).map(([q]) => q), long[3]!];
    const answers = await Promise.all(asked.map((q) => search(q)));
    for (const [i, q] of asked.entries()) expect(answers[i]!.error, q.slice(0, 20)).toBeUndefined();
    for (const [q, qid] of EXPECTED.slice(0, 8)) expect(answers[asked.indexOf(q)]!.qids[0], q).toBe(qid);
    // A query the model reads nothing of (an unknown script: a zero vector) is similar to nothing: no hit, never NaN.
    for (const a of answers) expect(a.similarity === null ? a.qids.length === 0 : Number.isFinite(a.similarity), JSON.stringify(a)).toBe(true);
  });

  it("answers odd scripts, emoji, control characters and the same text many times at once", async () => {
    const odd = ["ß🐕‍🦺 perro", "\u202ereina\u202c", "猫と犬", "кошка", "\u0000\u0007 catedral", "  ", "hound", "hound", "hound", "🙂".repeat(100)];
    const answers = await Promise.all(odd.map((q) => search(q)));
    // A query with no searchable word is refused as bad input before it reaches the model. One the
    // model reads nothing of (unknown script: a zero vector) is similar to nothing: no hit, never NaN.
    for (const [i, a] of answers.entries()) {
      if (a.error) expect(a.error, odd[i]).toMatch(/^The search query/);
      else expect(a.similarity === null ? a.qids.length === 0 : Number.isFinite(a.similarity), odd[i]).toBe(true);
    }
    expect(answers[2]).toEqual({ qids: [], similarity: null });
    expect(answers[5]!.error).toBeDefined();
    expect(answers[0]!.qids[0]).toBe("Q301");
    expect(answers[1]!.qids[0]).toBe("Q308");
    expect(answers[4]!.qids[0]).toBe("Q307");
    for (const i of [6, 7, 8]) expect(answers[i]!).toEqual(answers[6]!);
    expect(answers[6]!.qids[0]).toBe("Q301");
  });
});
