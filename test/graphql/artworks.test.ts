import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { createGraphqlApp, type Yoga } from "../../src/graphql/yoga.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { addDescription, makeArtwork, makeCreator, makeGoya } from "../support/factories.js";
import { gql } from "../support/graphql.js";
import { capturingLogger } from "../support/log.js";

let t: TestDb;
let yoga: Yoga;
const ids: Record<string, number> = {};

beforeAll(async () => {
  t = await createTestDb({ countQueries: true });
  yoga = createGraphqlApp({ db: t.db, config: loadConfig({}) });
  const goya = await makeGoya(t.db);
  const other = await makeCreator(t.db, { qid: "Q296", labels: { en: "Claude Monet" } });
  // Inception order: 1790 (Q30), 1797 (Q10 and Q20, QID order), 1800 (Q5), unknown (Q40).
  ids.q20 = (await makeArtwork(t.db, { qid: "Q20", title: "Saturn", inception: "1797-01-01T00:00:00Z", creators: [{ id: goya.id }], description: "A giant eats a man." })).id;
  ids.q10 = (await makeArtwork(t.db, { qid: "Q10", title: "The Sleep of Reason", inception: "1797-01-01T00:00:00Z", creators: [{ id: goya.id }], description: "A man asleep at a desk, owls behind him." })).id;
  ids.q5 = (await makeArtwork(t.db, { qid: "Q5", title: "Maja", inception: "1800-01-01T00:00:00Z", creators: [{ id: goya.id }] })).id;
  ids.q30 = (await makeArtwork(t.db, { qid: "Q30", title: "Workshop piece", inception: "1790-01-01T00:00:00Z", inceptionPrecision: 8, creators: [{ id: goya.id, attribution: "WORKSHOP_OF" }] })).id;
  ids.q40 = (await makeArtwork(t.db, { qid: "Q40", title: "Undated attributed", inception: null, creators: [{ id: goya.id, attribution: "ATTRIBUTED_TO" }], image: false })).id;
  ids.q50 = (await makeArtwork(t.db, { qid: "Q50", title: "Merged away", state: "MERGED", creators: [{ id: goya.id }] })).id;
  await t.db.artwork.update({ where: { id: ids.q50 }, data: { mergedIntoQid: "Q20" } });
  ids.q60 = (await makeArtwork(t.db, { qid: "Q60", title: "Water Lilies", creators: [{ id: other.id }] })).id;
});

afterAll(() => t.close());

describe("artworks(creator:)", () => {
  it("answers the literal query", async () => {
    const r = await gql(yoga, `{ artworks(creator: "Goya") { description } }`);
    expect(r.errors).toBeUndefined();
    expect(r.data.artworks).toEqual([
      { description: null }, // Q30, 1790
      { description: "A man asleep at a desk, owls behind him." }, // Q10
      { description: "A giant eats a man." }, // Q20
      { description: null }, // Q5
      { description: null }, // Q40 undated
    ]);
  });

  it.each([
    ["Goya", 5],
    ["goya", 5],
    ["GOYA", 5],
    ["francisco de goya", 5],
    ["jose", 5],
    ["José", 5],
    ["Q5432", 5],
    ["q5432", 5],
    ["monet", 1],
    ["Goy", 0],
    ["de goya francisco", 0],
    ["Q999", 0],
    ["!!!", 0],
  ])("creator %j matches %i works", async (creator, n) => {
    const r = await gql(yoga, `query($c: String) { artworks(creator: $c) { qid } }`, { c: creator });
    expect(r.errors).toBeUndefined();
    expect(r.data.artworks).toHaveLength(n);
  });

  it("orders by inception (unknown last), then QID, and pages with limit/offset", async () => {
    const all = await gql(yoga, `{ artworks(creator: "Q5432") { qid } }`);
    expect(all.data.artworks.map((a: { qid: string }) => a.qid)).toEqual(["Q30", "Q10", "Q20", "Q5", "Q40"]);
    const page = await gql(yoga, `{ artworks(creator: "Q5432", limit: 2, offset: 2) { qid } }`);
    expect(page.data.artworks.map((a: { qid: string }) => a.qid)).toEqual(["Q20", "Q5"]);
  });

  it("narrows by attribution and state", async () => {
    const ws = await gql(yoga, `{ artworks(creator: "Goya", attribution: [WORKSHOP_OF, ATTRIBUTED_TO]) { qid creators { attribution creator { qid } } } }`);
    expect(ws.data.artworks.map((a: { qid: string }) => a.qid)).toEqual(["Q30", "Q40"]);
    expect(ws.data.artworks[0].creators).toEqual([{ attribution: "WORKSHOP_OF", creator: { qid: "Q5432" } }]);
    const merged = await gql(yoga, `{ artworks(creator: "Goya", state: [MERGED]) { qid state mergedIntoQid } }`);
    expect(merged.data.artworks).toEqual([{ qid: "Q50", state: "MERGED", mergedIntoQid: "Q20" }]);
  });

  it("refuses a limit above 500 and a negative offset with clear errors", async () => {
    const r = await gql(yoga, `{ artworks(limit: 501) { qid } }`);
    expect(r.errors?.[0]?.message).toMatch(/limit must be between 0 and 500/);
    expect(r.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    const o = await gql(yoga, `{ artworks(offset: -1) { qid } }`);
    expect(o.errors?.[0]?.message).toMatch(/offset must be 0 or more/);
  });

  it("a cursor the API did not give out is the client's BAD_USER_INPUT naming the argument, and no error in the log", async () => {
    const { lines, log } = capturingLogger("info");
    const app = createGraphqlApp({ db: t.db, config: loadConfig({}), log });
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    const cases: [string, Record<string, unknown>, string][] = [
      [`query($c: String) { artworksConnection(first: 2, after: $c) { edges { cursor } } }`, { c: "x" }, "after"],
      [`query($c: String) { artworksConnection(last: 2, before: $c) { edges { cursor } } }`, { c: b64("GPC:X:1") }, "before"],
      // Decodes, but to a text where the cursor column holds numbers: Prisma refuses the query.
      [`query($c: String) { artworksConnection(first: 2, after: $c) { edges { cursor } } }`, { c: b64("GPC:S:a") }, "after"],
      [`query($c: String) { jobs(first: 2, after: $c) { edges { cursor } } }`, { c: "not-a-cursor" }, "after"],
      // Decode, but to no job id: a text, numbers past 64 bits or not whole, JSON, a date.
      ...["GPC:S:abc", "GPC:N:99999999999999999999999", "GPC:N:9223372036854775808", "GPC:N:1.5", "GPC:N:0", 'GPC:J:{"a":1}', "GPC:D:2020"].map(
        (c): [string, Record<string, unknown>, string] => [`query($c: String) { jobs(first: 2, after: $c) { edges { cursor } } }`, { c: b64(c) }, "after"],
      ),
      [`query($c: String) { jobs(last: 2, before: $c) { edges { cursor } } }`, { c: b64("GPC:N:1e400") }, "before"],
    ];
    for (const [query, variables, argument] of cases) {
      const r = await gql(app, query, variables);
      expect(r.errors?.[0]?.extensions, JSON.stringify(variables)).toMatchObject({ code: "BAD_USER_INPUT", argument });
      expect(r.errors?.[0]?.message).toMatch(/cursor is not one this API gave out/);
      // The field's path and place in the document, as every field error carries them.
      expect(r.errors?.[0]?.path, query).toEqual([query.includes("jobs(") ? "jobs" : "artworksConnection"]);
      expect(r.errors?.[0]?.locations?.length).toBe(1);
    }
    expect(lines.filter((l) => (l.level as number) >= 40).map((l) => [l.msg, (l.err as { message?: string } | undefined)?.message])).toEqual([]);
  });

  it("Pothos's own refusals of paging arguments carry the field's path and locations like ours", async () => {
    for (const args of ["first: -1", "last: -2", "first: 1, last: 1", "after: \"a\", before: \"b\""]) {
      for (const field of ["artworksConnection", "jobs", "syncRunsConnection"]) {
        const r = await gql(yoga, `{ ${field}(${args}) { edges { cursor } } }`);
        expect(r.errors?.[0]?.extensions?.code, `${field}(${args})`).toBe("BAD_USER_INPUT");
        expect(r.errors?.[0]?.path, `${field}(${args})`).toEqual([field]);
        expect(r.errors?.[0]?.locations?.length, `${field}(${args})`).toBe(1);
      }
    }
  });
});

describe("artwork(id:)", () => {
  it("finds by QID and by global id, merged works too", async () => {
    const byQid = await gql(yoga, `{ artwork(id: "Q50") { ... on Artwork { id qid state title wikidataUrl } } }`);
    expect(byQid.data.artwork).toMatchObject({ qid: "Q50", state: "MERGED", wikidataUrl: "https://www.wikidata.org/wiki/Q50" });
    const byGlobal = await gql(yoga, `query($id: ID!) { artwork(id: $id) { ... on Artwork { qid } } }`, { id: byQid.data.artwork.id });
    expect(byGlobal.data.artwork).toEqual({ qid: "Q50" });
    const node = await gql(yoga, `query($id: ID!) { node(id: $id) { ... on Artwork { qid } } }`, { id: byQid.data.artwork.id });
    expect(node.data.node).toEqual({ qid: "Q50" });
  });

  it("gives the Wikidata revision as decimal digits, past GraphQL's 32-bit Int too", async () => {
    await t.db.artwork.update({ where: { id: ids.q60 }, data: { wikidataRevision: 2_400_000_001 } });
    const r = await gql(yoga, `{ a: artwork(id: "Q60") { ... on Artwork { wikidataRevision } } b: artwork(id: "Q40") { ... on Artwork { wikidataRevision } } }`);
    expect(r).toEqual({ data: { a: { wikidataRevision: "2400000001" }, b: { wikidataRevision: null } } });
  });

  it("returns typed errors for unknown and malformed ids", async () => {
    const unknown = await gql(yoga, `{ artwork(id: "Q999999") { __typename ... on NotFoundError { message requestedId } } }`);
    expect(unknown.errors).toBeUndefined();
    expect(unknown.data.artwork).toEqual({ __typename: "NotFoundError", message: 'No artwork with id "Q999999"', requestedId: "Q999999" });
    for (const bad of ["not-an-id", "Q0", "", Buffer.from("Creator:1").toString("base64")]) {
      const r = await gql(yoga, `query($id: ID!) { artwork(id: $id) { __typename ... on Error { message } } }`, { id: bad });
      expect(r.errors).toBeUndefined();
      expect(r.data.artwork.__typename).toBe("InvalidIdError");
    }
  });

  it("exposes the main image, the description history and its generation parameters", async () => {
    await addDescription(t.db, ids.q20, "A giant devours a body in the dark.", "HUMAN");
    const r = await gql(
      yoga,
      `{ artwork(id: "Q20") { ... on Artwork {
          description
          image { fileTitle url licenseShortName isMain }
          images { fileTitle }
          commonsUrl
          descriptions { text source author generation { numBeams maxNewTokens earlyStopping dtypes { module dtype } } outcome { finishReason timings { totalMs } generatedTokenIds } }
          currentDescription { source }
      } } }`,
    );
    expect(r.errors).toBeUndefined();
    const a = r.data.artwork;
    expect(a.description).toBe("A giant devours a body in the dark.");
    expect(a.image).toMatchObject({ fileTitle: "File:Saturn.jpg", isMain: true, licenseShortName: "Public domain" });
    expect(a.image.url).toMatch(/^\/images\/ab\/\d+\.jpg$/);
    // As Commons writes its addresses (descriptionUrl): the namespace's colon kept.
    expect(a.commonsUrl).toBe("https://commons.wikimedia.org/wiki/File:Saturn.jpg");
    expect(a.currentDescription.source).toBe("HUMAN");
    expect(a.descriptions).toHaveLength(2);
    expect(a.descriptions[0]).toMatchObject({ source: "HUMAN", author: "curator", generation: null, outcome: null });
    expect(a.descriptions[1].generation).toMatchObject({ numBeams: 4, maxNewTokens: 256, earlyStopping: "true" });
    expect(a.descriptions[1].generation.dtypes).toContainEqual({ module: "decoder_model_merged", dtype: "fp32" });
    expect(a.descriptions[1].outcome).toEqual({ finishReason: "eos", timings: { totalMs: 10 }, generatedTokenIds: [1, 2, 3] });
  });
});

describe("artworksConnection, creators, stats", () => {
  it("pages a Relay connection with totalCount and filters", async () => {
    const first = await gql(yoga, `{ artworksConnection(first: 2, filter: { creator: "goya" }) { totalCount pageInfo { hasNextPage endCursor } edges { node { qid } } } }`);
    expect(first.errors).toBeUndefined();
    expect(first.data.artworksConnection.totalCount).toBe(5);
    expect(first.data.artworksConnection.edges).toHaveLength(2);
    expect(first.data.artworksConnection.pageInfo.hasNextPage).toBe(true);
    const rest = await gql(yoga, `query($a: String) { artworksConnection(first: 10, after: $a, filter: { creator: "goya" }) { edges { node { qid } } pageInfo { hasNextPage } } }`, {
      a: first.data.artworksConnection.pageInfo.endCursor,
    });
    expect(rest.data.artworksConnection.edges).toHaveLength(3);
    expect(rest.data.artworksConnection.pageInfo.hasNextPage).toBe(false);

    const noImage = await gql(yoga, `{ artworksConnection(filter: { hasImage: false }) { totalCount edges { node { qid } } } }`);
    expect(noImage.data.artworksConnection.edges).toEqual([{ node: { qid: "Q40" } }]);
    const described = await gql(yoga, `{ artworksConnection(filter: { hasDescription: true, creator: "Q5432" }) { totalCount } }`);
    expect(described.data.artworksConnection.totalCount).toBe(2);
    const years = await gql(yoga, `{ artworksConnection(filter: { inceptionFrom: 1795, inceptionTo: 1799 }) { totalCount } }`);
    expect(years.data.artworksConnection.totalCount).toBe(2);
    const tooMany = await gql(yoga, `{ artworksConnection(first: 501) { totalCount } }`);
    expect(tooMany.errors?.[0]?.message).toBe("first must be between 0 and 500 (got 501)");
  });

  it("pages on from a cursor whose work has left the filter since, both ways (no row skipped)", async () => {
    const PAGE = `query($first: Int, $last: Int, $after: String, $before: String) {
      artworksConnection(first: $first, last: $last, after: $after, before: $before, filter: { creator: "goya", hasDescription: false }) {
        pageInfo { startCursor endCursor } edges { node { qid } }
      }
    }`;
    const qids = (r: { data?: { artworksConnection: { edges: { node: { qid: string } }[] } } }) => r.data!.artworksConnection.edges.map((e) => e.node.qid);
    const all = qids(await gql(yoga, PAGE, { first: 10 }));
    expect(all.length).toBeGreaterThanOrEqual(3);
    const describe = async (qid: string) => {
      const work = await t.db.artwork.findUniqueOrThrow({ where: { qid } });
      const d = await t.db.description.create({ data: { artworkId: work.id, text: "Described meanwhile.", source: "HUMAN" } });
      await t.db.artwork.update({ where: { id: work.id }, data: { currentDescriptionId: d.id } });
      return async () => {
        await t.db.artwork.update({ where: { id: work.id }, data: { currentDescriptionId: null } });
        await t.db.description.delete({ where: { id: d.id } });
      };
    };
    // Forward: the first page's work gets a description; the next page still starts at the second.
    const first = await gql(yoga, PAGE, { first: 1 });
    const undoFirst = await describe(all[0]!);
    try {
      expect(qids(await gql(yoga, PAGE, { first: 10, after: first.data.artworksConnection.pageInfo.endCursor }))).toEqual(all.slice(1));
    } finally {
      await undoFirst();
    }
    // Backward: the last page's work gets a description; the page before it still ends at the one before.
    const last = await gql(yoga, PAGE, { last: 1 });
    expect(qids(last)).toEqual(all.slice(-1));
    const undoLast = await describe(all.at(-1)!);
    try {
      expect(qids(await gql(yoga, PAGE, { last: 10, before: last.data.artworksConnection.pageInfo.startCursor }))).toEqual(all.slice(0, -1));
    } finally {
      await undoLast();
    }
  });

  it("lists creators and counts", async () => {
    const r = await gql(yoga, `{ creators { qid label artworkCount labels { language text } } stats { artworks withImage described byCreator { qid artworks withImage described } } }`);
    expect(r.errors).toBeUndefined();
    expect(r.data.creators.map((c: { qid: string }) => c.qid)).toEqual(["Q296", "Q5432"]);
    expect(r.data.creators[1].labels).toContainEqual({ language: "es", text: "Francisco de Goya" });
    expect(r.data.stats.artworks).toBe(6);
    expect(r.data.stats.withImage).toBe(5);
    expect(r.data.stats.described).toBe(2);
    expect(r.data.stats.byCreator).toContainEqual({ qid: "Q5432", artworks: 5, withImage: 4, described: 2 });
  });
});

describe("limits", () => {
  it("refuses operations nested deeper than GRAPHQL_MAX_DEPTH (15) fields, however cheap; fragments add no level", async () => {
    /** `artwork { currentDescription { artwork { … id } } }`: `depth` fields deep, one object per level. */
    const chain = (depth: number, fragments = false) => {
      let inner = "id";
      for (let level = depth - 1; level >= 2; level--) {
        const field = level % 2 === 0 ? "currentDescription" : "artwork";
        inner = fragments ? `${field} { ... on ${field === "artwork" ? "Artwork" : "Description"} { ${inner} } }` : `${field} { ${inner} }`;
      }
      return `{ artwork(id: "Q20") { ... on Artwork { ${inner} } } }`;
    };
    for (const fragments of [false, true]) {
      const fits = await gql(yoga, chain(15, fragments));
      expect(fits.errors).toBeUndefined();
      const deep = await gql(yoga, chain(16, fragments));
      expect(deep.data).toBeUndefined();
      expect(deep.errors).toEqual([
        {
          message: "The operation nests fields 16 deep; at most 15 are allowed (GRAPHQL_MAX_DEPTH). Fragments add no level",
          extensions: { code: "DEPTH_LIMIT" },
        },
      ]);
    }
  });
});

describe("artworks(creator:) before the common era", () => {
  it("orders BC dates by year (500 BC before 100 BC), months within a year, then AD years, unknown last", async () => {
    const phidias = await makeCreator(t.db, { qid: "Q9999", labels: { en: "Old Master of Test" } });
    const make = (qid: string, inception: string | null) => makeArtwork(t.db, { qid, inception, creators: [{ id: phidias.id }] });
    // Made out of order; as text, "-0100-…" sorts before "-0500-…".
    await make("Q74", null);
    await make("Q71", "-0100-01-01T00:00:00Z");
    await make("Q73", "0040-01-01T00:00:00Z");
    await make("Q72", "-0100-06-01T00:00:00Z");
    await make("Q70", "-0500-01-01T00:00:00Z");
    await make("Q75", "1200-01-01T00:00:00Z");
    const r = await gql(yoga, `{ artworks(creator: "Q9999") { qid inceptionYear } }`);
    expect(r.errors).toBeUndefined();
    expect(r.data.artworks).toEqual([
      { qid: "Q70", inceptionYear: -500 },
      { qid: "Q71", inceptionYear: -100 },
      { qid: "Q72", inceptionYear: -100 },
      { qid: "Q73", inceptionYear: 40 },
      { qid: "Q75", inceptionYear: 1200 },
      { qid: "Q74", inceptionYear: null },
    ]);
    const page = await gql(yoga, `{ artworks(creator: "Q9999", limit: 2, offset: 1) { qid } }`);
    expect(page.data.artworks.map((a: { qid: string }) => a.qid)).toEqual(["Q71", "Q72"]);
  });
});
