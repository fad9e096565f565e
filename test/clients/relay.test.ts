import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { encodeGlobalID } from "@pothos/plugin-relay";
import { buildSchema, parse } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { operationCost } from "../../src/graphql/limits/cost.js";
import { COST_OPTIONS, requestLimits } from "../../src/graphql/yoga.js";
import { type ClientWorld, liveSchemaSdl, post, startClientWorld } from "./fixture.js";

/**
 * relay-compiler (the Rust binary of the npm package, offline) compiles an app's fragments and
 * queries against the schema the server serves, with @refetchable and @connection on every
 * list a Relay app pages; then the operations it generated run against the server, page after
 * page, as Relay's runtime would send them.
 */
const require = createRequire(import.meta.url);
const relayCompiler = require("relay-compiler") as string | null;

const DOCUMENTS = [
  `
  fragment ArtworkCard_artwork on Artwork @refetchable(queryName: "ArtworkCardRefetchQuery") {
    id qid title description altText
    image { url }
    creators { attribution creator { qid label } }
  }
  `,
  `
  fragment ArtworkHistory_artwork on Artwork
  @argumentDefinitions(count: { type: "Int", defaultValue: 2 }, cursor: { type: "String" })
  @refetchable(queryName: "ArtworkHistoryPaginationQuery") {
    descriptionsConnection(first: $count, after: $cursor) @connection(key: "ArtworkHistory_descriptionsConnection") {
      edges { node { id text source createdAt } }
    }
  }
  `,
  `
  fragment ArtworksPage_query on Query
  @argumentDefinitions(count: { type: "Int", defaultValue: 2 }, cursor: { type: "String" })
  @refetchable(queryName: "ArtworksPagePaginationQuery") {
    artworksConnection(first: $count, after: $cursor, filter: { creator: "Goya" }) @connection(key: "ArtworksPage_artworksConnection", filters: []) {
      totalCount
      edges { node { id ...ArtworkCard_artwork } }
    }
  }
  `,
  `
  fragment SearchPage_query on Query
  @argumentDefinitions(query: { type: "String!" }, count: { type: "Int", defaultValue: 2 }, cursor: { type: "String" })
  @refetchable(queryName: "SearchPagePaginationQuery") {
    search(query: $query, first: $count, after: $cursor) @connection(key: "SearchPage_search") {
      totalCount
      edges { node { score snippet artwork { id ...ArtworkCard_artwork } } }
    }
  }
  `,
  `
  fragment JobsPage_query on Query
  @argumentDefinitions(count: { type: "Int", defaultValue: 2 }, cursor: { type: "String" })
  @refetchable(queryName: "JobsPagePaginationQuery") {
    jobs(first: $count, after: $cursor, status: [QUEUED]) @connection(key: "JobsPage_jobs") {
      edges { node { id number status artwork { id ...ArtworkCard_artwork } } }
    }
  }
  `,
  `
  fragment ReviewPage_query on Query
  @argumentDefinitions(count: { type: "Int", defaultValue: 2 }, cursor: { type: "String" })
  @refetchable(queryName: "ReviewPagePaginationQuery") {
    reviewQueue(first: $count, after: $cursor) @connection(key: "ReviewPage_reviewQueue") {
      edges { node { id text reviewState artwork { id ...ArtworkCard_artwork } } }
    }
  }
  `,
  `
  fragment SyncPage_query on Query
  @argumentDefinitions(count: { type: "Int", defaultValue: 2 }, cursor: { type: "String" })
  @refetchable(queryName: "SyncPagePaginationQuery") {
    syncRunsConnection(first: $count, after: $cursor) @connection(key: "SyncPage_syncRunsConnection") {
      edges { node { id number status seen created } }
    }
  }
  `,
  `
  query HomeQuery($q: String!) {
    ...ArtworksPage_query
    ...SearchPage_query @arguments(query: $q)
    ...JobsPage_query
    ...ReviewPage_query
    ...SyncPage_query
  }
  `,
  `
  query ArtworkQuery($id: ID!) {
    node(id: $id) { id ...ArtworkCard_artwork @alias ...ArtworkHistory_artwork @alias }
  }
  `,
];
/** The app's source file: each document in a graphql tagged template, where relay-compiler looks for them. */
const APP = DOCUMENTS.map((d) => `graphql\`${d}\`;`).join("\n");

/** What a compiled operation artifact holds (relay-runtime's ConcreteRequest, the parts used here). */
interface RequestArtifact {
  kind: "Request";
  params: { name: string; operationKind: string; text: string };
}

let world: ClientWorld;
let dir: string;
const operations = new Map<string, string>();
let compilerOutput = "";

beforeAll(async () => {
  world = await startClientWorld();
  dir = mkdtempSync(join(tmpdir(), "artdesc-relay-"));
  mkdirSync(join(dir, "src"));
  mkdirSync(join(dir, "__generated__"));
  writeFileSync(join(dir, "schema.graphql"), await liveSchemaSdl(world.url));
  writeFileSync(join(dir, "src", "app.js"), APP);
  writeFileSync(
    join(dir, "relay.config.json"),
    JSON.stringify({ src: "./src", schema: "./schema.graphql", language: "javascript", jsModuleFormat: "commonjs", eagerEsModules: false, artifactDirectory: "./__generated__" }),
  );
  if (!relayCompiler) throw new Error(`relay-compiler has no binary for ${process.platform} ${process.arch}`);
  const { stdout, stderr } = await promisify(execFile)(relayCompiler, ["relay.config.json"], { cwd: dir, timeout: 60_000 });
  compilerOutput = stdout + stderr;
  for (const file of readdirSync(join(dir, "__generated__"))) {
    const artifact = require(join(dir, "__generated__", file)) as RequestArtifact | { kind: string };
    if (artifact.kind === "Request") operations.set((artifact as RequestArtifact).params.name, (artifact as RequestArtifact).params.text);
  }
});
afterAll(async () => {
  await world?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs a generated operation as Relay's network layer would: POST, JSON, graphql-response+json. */
async function run(name: string, variables: Record<string, unknown>) {
  const query = operations.get(name);
  if (!query) throw new Error(`relay-compiler generated no operation ${name}`);
  const r = await post(world.url, { query, variables });
  expect(r.body.errors, name).toBeUndefined();
  expect(r.status).toBe(200);
  return r.body.data;
}

type Page<N> = { edges: { cursor: string; node: N }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } };

/** Every node of a connection, paged forward with its generated pagination query from the first page's end. */
async function pageThrough<N>(first: Page<N>, paginationQuery: string, variables: Record<string, unknown>, pick: (data: any) => Page<N>): Promise<N[]> {
  const nodes = first.edges.map((e) => e.node);
  let page = first;
  for (let i = 0; page.pageInfo.hasNextPage && i < 20; i++) {
    expect(page.edges.length).toBe(2);
    page = pick(await run(paginationQuery, { ...variables, count: 2, cursor: page.pageInfo.endCursor }));
    nodes.push(...page.edges.map((e) => e.node));
  }
  expect(page.pageInfo.hasNextPage).toBe(false);
  return nodes;
}

describe("relay-compiler", () => {
  it("compiles @connection on search, artworksConnection, jobs, reviewQueue, syncRunsConnection and Artwork.descriptionsConnection, and a refetchable Artwork fragment", () => {
    expect(compilerOutput).toMatch(/Compilation completed/);
    expect([...operations.keys()].sort()).toEqual([
      "ArtworkCardRefetchQuery",
      "ArtworkHistoryPaginationQuery",
      "ArtworkQuery",
      "ArtworksPagePaginationQuery",
      "HomeQuery",
      "JobsPagePaginationQuery",
      "ReviewPagePaginationQuery",
      "SearchPagePaginationQuery",
      "SyncPagePaginationQuery",
    ]);
    // The refetch query of a Node fragment goes through node(id:).
    expect(operations.get("ArtworkCardRefetchQuery")).toMatch(/node\(id: \$id\)/);
  });

  it("refuses @connection on a field that returns a union, as it refused search's result union", async () => {
    const union = `type Query { search(first: Int, after: String): SearchResult! }
      union SearchResult = SearchConnection | Problem
      type Problem { message: String! }
      type SearchConnection { edges: [Edge!]! pageInfo: PageInfo! }
      type Edge { cursor: String! node: Hit! }
      type Hit { score: Float! }
      type PageInfo { hasNextPage: Boolean! hasPreviousPage: Boolean! startCursor: String endCursor: String }`;
    buildSchema(union);
    const other = mkdtempSync(join(tmpdir(), "artdesc-relay-union-"));
    try {
      mkdirSync(join(other, "src"));
      mkdirSync(join(other, "__generated__"));
      writeFileSync(join(other, "schema.graphql"), union);
      writeFileSync(
        join(other, "src", "app.js"),
        'graphql`fragment S_query on Query @refetchable(queryName: "SQuery") { search(first: 2) @connection(key: "S_search") { ... on SearchConnection { edges { node { score } } } } }`;',
      );
      writeFileSync(join(other, "relay.config.json"), JSON.stringify({ src: "./src", schema: "./schema.graphql", language: "javascript", artifactDirectory: "./__generated__" }));
      const failed = await promisify(execFile)(relayCompiler!, ["relay.config.json"], { cwd: other, timeout: 60_000 }).then(
        () => null,
        (err: { stdout: string; stderr: string }) => err.stdout + err.stderr,
      );
      expect(failed).toMatch(/@connection used on invalid field 'search'/);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it("every generated operation is well within the default depth, cost and row limits", async () => {
    const limits = requestLimits(world.config);
    const schema = buildSchema(await liveSchemaSdl(world.url));
    for (const [name, text] of operations) {
      const variables = { q: "donkey", query: "donkey", id: encodeGlobalID("Artwork", 1), count: 2 };
      const cost = operationCost(schema, parse(text), { ...COST_OPTIONS, variables });
      expect(cost.depth, `${name} is ${cost.depth} fields deep`).toBeLessThanOrEqual(limits.maxDepth - 5);
      expect(cost.cost, name).toBeLessThanOrEqual(limits.maxCost);
      expect(cost.rows, name).toBeLessThanOrEqual(limits.maxRows);
    }
  });
});

describe("the generated operations against the server", () => {
  it("the home query answers the first page of every connection, and each pagination query pages to the end", async () => {
    const home = await run("HomeQuery", { q: "donkey" });

    expect(home.artworksConnection.totalCount).toBe(world.active.length);
    const artworks = await pageThrough(home.artworksConnection, "ArtworksPagePaginationQuery", {}, (d) => d.artworksConnection);
    expect(artworks.map((a: any) => a.qid)).toEqual(world.active);
    expect(artworks[0]).toMatchObject({ __typename: "Artwork", title: "Capricho 1", description: "A donkey reads a book at a desk." });

    expect(home.search.totalCount).toBe(world.donkeys.length);
    const hits = await pageThrough(home.search, "SearchPagePaginationQuery", { query: "donkey" }, (d) => d.search);
    expect(hits.map((h: any) => h.artwork.qid).sort()).toEqual([...world.donkeys].sort());
    expect(hits.every((h: any) => typeof h.score === "number" && /<mark>donkey<\/mark>/i.test(h.snippet))).toBe(true);

    const jobs = await pageThrough(home.jobs, "JobsPagePaginationQuery", {}, (d) => d.jobs);
    expect(jobs.map((j: any) => j.number)).toEqual(world.jobs);

    const queue = await pageThrough(home.reviewQueue, "ReviewPagePaginationQuery", {}, (d) => d.reviewQueue);
    expect(queue).toHaveLength(world.active.length);
    expect(new Set(queue.map((d: any) => d.artwork.qid))).toEqual(new Set(world.active));

    const runs = await pageThrough(home.syncRunsConnection, "SyncPagePaginationQuery", {}, (d) => d.syncRunsConnection);
    expect(runs.map((r: any) => r.number)).toEqual(world.syncRuns);
    // Relay's store keys records by id: a string, the run's global id.
    expect(runs.map((r: any) => r.id)).toEqual(world.syncRuns.map((n) => encodeGlobalID("SyncRun", String(n))));
  });

  it("the node query, the refetch query and the history pagination query load an artwork by its global id", async () => {
    const all = await run("ArtworksPagePaginationQuery", { count: 10 });
    const id = all.artworksConnection.edges.find((e: any) => e.node.qid === world.history.qid).node.id as string;

    const viaNode = await run("ArtworkQuery", { id });
    expect(viaNode.node).toMatchObject({ __typename: "Artwork", id, qid: world.history.qid });
    expect(viaNode.node.descriptionsConnection.edges.map((e: any) => e.node.text)).toEqual(world.history.texts.slice(0, 2));

    const refetched = await run("ArtworkCardRefetchQuery", { id });
    expect(refetched.node).toMatchObject({ id, qid: world.history.qid, title: "Capricho 5" });

    const history = await pageThrough(viaNode.node.descriptionsConnection, "ArtworkHistoryPaginationQuery", { id }, (d) => d.node.descriptionsConnection);
    expect(history.map((d: any) => d.text)).toEqual(world.history.texts);

    // A Relay store refetching a record that is gone gets null, not an error.
    expect((await run("ArtworkCardRefetchQuery", { id: encodeGlobalID("Artwork", 987_654) })).node).toBeNull();
  });
});
