import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { createGraphqlApp, type Yoga } from "../../src/graphql/yoga.js";
import { createMetricsRegistry, metricsRoute } from "../../src/ops/metrics.js";

/** How long a reading answers scrapes here (the default, METRICS_REUSE_MS, is 10 s). */
const REUSE_MS = 300;
import { createHttpApp } from "../../src/server.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { addDescription, makeArtwork } from "../support/factories.js";
import { gql } from "../support/graphql.js";
import { serveOnFreePort } from "../support/http.js";

const TOKEN = "stats-test-token-0123456789";
let t: TestDb;
let yoga: Yoga;
let base: string;
let close: () => void;

beforeAll(async () => {
  t = await createTestDb();
  const config = loadConfig({ API_TOKEN: TOKEN, REVIEW_FALLBACK_LADDER: "none" });
  yoga = createGraphqlApp({ db: t.db, config });
  const { server } = createHttpApp({ db: t.db, config }, [metricsRoute(createMetricsRegistry(t.db, { defaultMetrics: false }), REUSE_MS)]);
  ({ base, close } = await serveOnFreePort(server));
});
afterAll(async () => {
  close();
  await t.close();
});

const review = (id: number, verdict: string) =>
  gql(yoga, `mutation($id: ID!, $v: ReviewVerdict!) { reviewDescription(id: $id, verdict: $v) { __typename } }`, { id: String(id), v: verdict }, { authorization: `Bearer ${TOKEN}` });

const STATS = `{ stats { quality {
  current { descriptions assessed byFlag { flag count } byReviewState { state count } }
  byModel { modelId modelRevision dtypes { module dtype } params descriptions assessed byFlag { flag count } byReviewState { state count } }
} } }`;

const asMap = <K extends string>(list: ({ count: number } & Record<string, unknown>)[], key: K) => Object.fromEntries(list.map((e) => [e[key], e.count]));

async function flagged(artworkId: number, text: string, flags: string, o: { numBeams?: number; source?: "MODEL" | "HUMAN"; modelRevision?: string; cleanMarkdown?: boolean } = {}) {
  const d = await addDescription(t.db, artworkId, text, o.source ?? "MODEL");
  const extra = { ...(o.numBeams ? { numBeams: o.numBeams } : {}), ...(o.modelRevision ? { modelRevision: o.modelRevision } : {}), ...(o.cleanMarkdown !== undefined ? { cleanMarkdown: o.cleanMarkdown } : {}) };
  return t.db.description.update({ where: { id: d.id }, data: { qualityFlags: flags, qualityRisk: flags ? 0.7 : 0.1, ...extra } });
}

describe("quality stats and metrics", () => {
  it("count flags and review states of current texts, and every text by model and parameter set", async () => {
    const a = await makeArtwork(t.db);
    const b = await makeArtwork(t.db);
    const c = await makeArtwork(t.db);
    const gone = await makeArtwork(t.db, { state: "DELETED" });
    const replaced = await flagged(a.id, "Old text.", "REPETITION,TOO_LONG");
    await review(replaced.id, "REJECTED");
    const da = await flagged(a.id, "A text.", "DEPICTS_MISSING,MEDIUM_CONFLICT", { numBeams: 8 });
    const db = await flagged(b.id, "B text.", "DEPICTS_MISSING");
    await review(db.id, "APPROVED");
    await flagged(c.id, "C text by a person.", "", { source: "HUMAN" });
    await flagged(gone.id, "Gone text.", "DEPICTS_MISSING");
    // An older, unassessed person's text: counted by model (people), never as current.
    await t.db.description.create({ data: { artworkId: c.id, text: "Unassessed old person text.", source: "HUMAN" } });
    await review(da.id, "NEEDS_WORK");

    const s = (await gql(yoga, STATS)).data.stats.quality;
    expect(s.current.descriptions).toBe(3);
    expect(s.current.assessed).toBe(3);
    expect(asMap(s.current.byFlag, "flag")).toMatchObject({ DEPICTS_MISSING: 2, MEDIUM_CONFLICT: 1, REPETITION: 0, TOO_LONG: 0, TRUNCATED: 0 });
    expect(asMap(s.current.byReviewState, "state")).toEqual({ UNREVIEWED: 1, APPROVED: 1, REJECTED: 0, NEEDS_WORK: 1 });

    const groups = s.byModel.map((g: { modelId: string | null; params: string | null; descriptions: number; assessed: number }) => ({ ...g }));
    const defaults = groups.find((g: { params: string | null }) => g.params === "");
    const beams8 = groups.find((g: { params: string | null }) => g.params === "numBeams=8");
    const people = groups.find((g: { modelId: string | null }) => g.modelId === null);
    expect(defaults).toMatchObject({ modelId: "HuggingFaceTB/SmolVLM-500M-Instruct", descriptions: 2, assessed: 2 });
    expect(asMap(defaults.byFlag, "flag")).toMatchObject({ REPETITION: 1, TOO_LONG: 1, DEPICTS_MISSING: 1 });
    expect(asMap(defaults.byReviewState, "state")).toEqual({ UNREVIEWED: 0, APPROVED: 1, REJECTED: 1, NEEDS_WORK: 0 });
    expect(beams8).toMatchObject({ descriptions: 1 });
    expect(asMap(beams8.byReviewState, "state")).toMatchObject({ NEEDS_WORK: 1 });
    expect(people).toMatchObject({ params: null, descriptions: 2, assessed: 1, modelRevision: null, dtypes: [] });
    expect(groups).toHaveLength(3);

    // Another revision of the same model with the same parameters, and the cleanup off: other settings.
    const d = await makeArtwork(t.db);
    const rev = await flagged(d.id, "Another revision's text.", "", { modelRevision: "r2" });
    await flagged(d.id, "Raw text.", "", { cleanMarkdown: false });
    // The cleanup recorded as on (the default) is the same setting as a row from before it was recorded.
    await flagged(d.id, "Cleaned text.", "", { cleanMarkdown: true });
    const regrouped = (await gql(yoga, STATS)).data.stats.quality.byModel as { modelRevision: string | null; params: string | null; descriptions: number }[];
    expect(regrouped).toHaveLength(5);
    expect(regrouped.find((g) => g.params === "" && g.modelRevision === "main")).toMatchObject({ descriptions: 3 });
    expect(regrouped.find((g) => g.modelRevision === "r2")).toMatchObject({ params: "", descriptions: 1 });
    expect(regrouped.find((g) => g.params === "cleanMarkdown=false")).toMatchObject({ descriptions: 1 });
    expect(rev.modelRevision).toBe("r2");

    const text = await (await fetch(`${base}/metrics`)).text();
    const value = (series: string) => Number(text.split("\n").find((l) => l.startsWith(`${series} `))?.slice(series.length + 1));
    expect(text).toContain("# TYPE artdesc_description_flags_total counter");
    expect(value('artdesc_description_flags_total{flag="DEPICTS_MISSING"}')).toBe(2);
    expect(value('artdesc_description_flags_total{flag="MEDIUM_CONFLICT"}')).toBe(1);
    expect(value('artdesc_description_flags_total{flag="REPETITION"}')).toBe(0);
    expect(value('artdesc_description_flags_total{flag="COLOUR_ON_MONOCHROME"}')).toBe(0);
    expect(value('artdesc_reviews_total{verdict="REJECTED"}')).toBe(1);
    expect(value('artdesc_reviews_total{verdict="APPROVED"}')).toBe(1);
    expect(value('artdesc_reviews_total{verdict="NEEDS_WORK"}')).toBe(1);

    // Counted from the database at the next reading (one per reuse time at most): a verdict from another process shows.
    await review(da.id, "APPROVED");
    await new Promise((r) => setTimeout(r, REUSE_MS + 50));
    const again = await (await fetch(`${base}/metrics`)).text();
    expect(again).toContain('artdesc_reviews_total{verdict="APPROVED"} 2');
  });
});
