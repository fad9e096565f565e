import { parse } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { type ExportRow, writeExport } from "../../src/export/export.js";
import { operationCost } from "../../src/graphql/limits/cost.js";
import { schema } from "../../src/graphql/schema/index.js";
import { COST_OPTIONS, createGraphqlApp, requestLimits, type Yoga } from "../../src/graphql/yoga.js";
import { TextSink } from "../support/cli.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { addDescription, makeArtwork, makeCreator } from "../support/factories.js";
import { gql } from "../support/graphql.js";

const TOKEN = "alt-export-token-0123456789";
const AUTH = { authorization: `Bearer ${TOKEN}` };
const config = loadConfig({ API_TOKEN: TOKEN, REVIEW_FALLBACK_LADDER: "none", ALT_TEXT_MAX_CHARS: "60" });
let t: TestDb;
let yoga: Yoga;

beforeAll(async () => {
  t = await createTestDb();
  yoga = createGraphqlApp({ db: t.db, config });
});
afterAll(() => t.close());

const reject = (id: number) =>
  gql(yoga, `mutation($id: ID!) { reviewDescription(id: $id, verdict: REJECTED) { __typename } }`, { id: String(id) }, AUTH);

async function exported(): Promise<Map<string, ExportRow>> {
  const sink = new TextSink();
  await writeExport(t.db, sink, { format: "jsonl", altTextMaxChars: config.ALT_TEXT_MAX_CHARS });
  const rows = sink.text.trim().split("\n").map((l) => JSON.parse(l) as ExportRow);
  return new Map(rows.map((r) => [r.qid, r]));
}

async function graphqlAltTexts(): Promise<Map<string, string | null>> {
  const r = await gql(yoga, `{ artworks(limit: 100) { qid altText } }`);
  return new Map((r.data.artworks as { qid: string; altText: string | null }[]).map((a) => [a.qid, a.altText]));
}

describe("alt text after a rejection, in GraphQL and in the export", () => {
  it("both give the same text: the current one, else the newest unrejected, else the title-based one", async () => {
    const painter = await makeCreator(t.db, { labels: { en: "Francisco Goya" } });
    const plain = await makeArtwork(t.db, { title: "Plain", creators: [{ id: painter.id }] });
    await addDescription(t.db, plain.id, "A woman with a fan. She smiles at the painter and the light falls on her face.");
    const fallback = await makeArtwork(t.db, { title: "Fallback", creators: [{ id: painter.id }] });
    await addDescription(t.db, fallback.id, "A man sleeps at a desk.");
    await reject((await addDescription(t.db, fallback.id, "A cat paints a wall.")).id);
    const titled = await makeArtwork(t.db, { title: "Saturn", inception: "1820-01-01T00:00:00Z", creators: [{ id: painter.id }] });
    await reject((await addDescription(t.db, titled.id, "A cat.")).id);
    const undescribed = await makeArtwork(t.db, { title: "Nothing yet" });
    const century = await makeArtwork(t.db, { title: "Majas", inception: "1701-01-01T00:00:00Z", inceptionPrecision: 7, creators: [{ id: painter.id }] });
    await reject((await addDescription(t.db, century.id, "A dog.")).id);

    const want = new Map<string, string | null>([
      [plain.qid, "A woman with a fan."],
      [fallback.qid, "A man sleeps at a desk."],
      [titled.qid, "Saturn by Francisco Goya, 1820"],
      [undescribed.qid, null],
      // The date at Wikidata's precision, not the year it is filed under (1701).
      [century.qid, "Majas by Francisco Goya, 18th century"],
    ]);
    const rows = await exported();
    const api = await graphqlAltTexts();
    for (const [qid, text] of want) {
      expect(rows.get(qid)?.altText, qid).toBe(text);
      expect(api.get(qid), qid).toBe(text);
    }
    // The export still says which text is current.
    expect(rows.get(fallback.qid)?.description).toBe("A cat paints a wall.");
  });

  it("a list of artworks whose texts are rejected loads its alt texts in a fixed number of queries", async () => {
    const counting = await createTestDb({ countQueries: true });
    try {
      const app = createGraphqlApp({ db: counting.db, config });
      const count = async (n: number) => {
        for (let i = 0; i < n; i++) {
          const a = await makeArtwork(counting.db);
          await addDescription(counting.db, a.id, `Kept ${i}.`);
          const d = await addDescription(counting.db, a.id, `Rejected ${i}.`);
          await counting.db.description.update({ where: { id: d.id }, data: { reviewState: "REJECTED" } });
        }
        counting.queries.length = 0;
        const r = await gql(app, `{ artworks(limit: 500) { qid altText } }`);
        expect(r.errors).toBeUndefined();
        expect((r.data.artworks as { altText: string }[]).every((a) => a.altText.startsWith("Kept"))).toBe(true);
        return counting.queries.filter((q) => /^\s*SELECT/i.test(q)).length;
      };
      const few = await count(3);
      const many = await count(60);
      expect(many - few).toBeLessThanOrEqual(2);
    } finally {
      await counting.close();
    }
  });
});

/** The README's review section: each query runs under the default limits and answers without errors. */
const README_EXAMPLES = [
  `mutation { reviewDescription(id: "42", verdict: REJECTED, note: "The animal is a donkey, not a cat.") {
  ... on Review { verdict reviewer createdAt fallbackStep fallbackJob { number status reason requestedParams } }
  ... on Error { message }
} }`,
  `query { reviewQueue(first: 20, filter: { flag: DEPICTS_MISSING }) {
  ... on QueryReviewQueueConnection {
    edges { cursor node { id text quality { flags risk } artwork { qid title review { state needsPerson fallbackStep fallbackSteps } } } }
    pageInfo { hasNextPage endCursor }
  }
} }`,
  `query { artwork(id: "Q5432") { ... on Artwork { altText review { state reviewedBy needsPerson fallbackStep fallbackSteps fallbackJob { status reason } } } } }`,
  `query { stats { quality {
  current { descriptions assessed byFlag { flag count } byReviewState { state count } }
  byModel { modelId params descriptions byFlag { flag count } byReviewState { state count } }
} } }`,
];

describe("the README's review examples", () => {
  it("are within the default limits and run", async () => {
    const limits = requestLimits(config);
    for (const doc of README_EXAMPLES) {
      const cost = operationCost(schema, parse(doc), { ...COST_OPTIONS });
      expect(cost.problems).toEqual([]);
      expect(cost.cost).toBeLessThanOrEqual(limits.maxCost);
      expect(cost.rows).toBeLessThanOrEqual(limits.maxRows);
      const r = await gql(yoga, doc, {}, AUTH);
      expect(r.errors, doc.slice(0, 60)).toBeUndefined();
    }
  });
});
