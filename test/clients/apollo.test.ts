import { createHash } from "node:crypto";
import { ApolloClient, ApolloLink, CombinedGraphQLErrors, gql, HttpLink, InMemoryCache } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";
import { relayStylePagination } from "@apollo/client/utilities";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type ClientWorld, startClientWorld } from "./fixture.js";

/**
 * Apollo Client in Node, as an app uses it: HttpLink over POST and over GET, the cache's
 * relayStylePagination merging pages fetched with fetchMore, and PersistedQueryLink (automatic
 * persisted queries) from the first request (a miss) to the hash alone.
 */
let world: ClientWorld;
beforeAll(async () => {
  world = await startClientWorld();
});
afterAll(() => world?.close());

/** What each request of a client looked like on the wire. */
interface Sent {
  method: string;
  /** The query text, from the body or the URL; undefined when only the hash was sent. */
  query: string | undefined;
  hash: string | undefined;
  status: number;
}
let sent: Sent[] = [];
beforeEach(() => {
  sent = [];
});

/** Node's fetch, recording every request (the transport any Apollo link ends in). */
const recordingFetch: typeof fetch = async (input, init) => {
  const url = new URL(String(input));
  const method = init?.method ?? "GET";
  const payload = method === "GET" ? Object.fromEntries(url.searchParams) : (JSON.parse(String(init?.body)) as Record<string, unknown>);
  const extensions = typeof payload.extensions === "string" ? JSON.parse(payload.extensions) : payload.extensions;
  const res = await fetch(input, init);
  sent.push({ method, query: (payload.query as string | undefined) || undefined, hash: extensions?.persistedQuery?.sha256Hash, status: res.status });
  return res;
};

const typePolicies = {
  Query: {
    fields: {
      artworksConnection: relayStylePagination(["filter"]),
      search: relayStylePagination(["query", "mode", "filter"]),
      jobs: relayStylePagination(["status"]),
    },
  },
};

function client(link: ApolloLink) {
  return new ApolloClient({ link, cache: new InMemoryCache({ typePolicies }) });
}
const http = (options: { useGETForQueries?: boolean } = {}) => new HttpLink({ uri: world.url, fetch: recordingFetch, ...options });
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

const ARTWORKS = gql`
  query Artworks($after: String) {
    artworksConnection(first: 2, after: $after, filter: { creator: "Goya" }) {
      totalCount
      edges { cursor node { id qid title description } }
      pageInfo { hasNextPage endCursor }
    }
  }
`;

const SEARCH = gql`
  query Search($q: String!, $first: Int, $after: String) {
    search(query: $q, first: $first, after: $after) {
      edges { cursor node { score artwork { id qid } } }
      pageInfo { hasNextPage endCursor }
    }
  }
`;

type Connection = { edges: { node: any }[]; pageInfo: { hasNextPage: boolean; endCursor: string } };

/** Two pages through watchQuery and fetchMore: relayStylePagination merges the second into the first. */
async function twoPages(c: ApolloClient, query: typeof ARTWORKS, variables: Record<string, unknown>, field: string): Promise<Connection> {
  const observable = c.watchQuery({ query, variables });
  const first = await new Promise<Connection>((resolve, reject) => {
    const sub = observable.subscribe({
      next: (r) => {
        if (r.data && !r.loading) {
          sub.unsubscribe();
          resolve((r.data as Record<string, Connection>)[field]!);
        }
      },
      error: reject,
    });
  });
  expect(first.edges).toHaveLength(2);
  expect(first.pageInfo.hasNextPage).toBe(true);
  await observable.fetchMore({ variables: { after: first.pageInfo.endCursor } });
  return (observable.getCurrentResult().data as Record<string, Connection>)[field]!;
}

describe("HttpLink", () => {
  it("POST: a query, and relayStylePagination merging two pages of artworksConnection", async () => {
    const c = client(http());
    const merged = await twoPages(c, ARTWORKS, {}, "artworksConnection");
    expect(merged.edges.map((e) => e.node.qid)).toEqual(world.active.slice(0, 4));
    expect(merged.pageInfo.hasNextPage).toBe(true);
    expect(sent.map((s) => [s.method, s.status])).toEqual([
      ["POST", 200],
      ["POST", 200],
    ]);
    // Normalised by id: the artwork is one cache entry, whatever query brought it.
    expect(c.cache.identify(merged.edges[0]!.node)).toBe(`Artwork:${merged.edges[0]!.node.id}`);
  });

  it("GET: the same pages of search over query strings", async () => {
    const c = client(http({ useGETForQueries: true }));
    const merged = await twoPages(c, SEARCH, { q: "donkey", first: 2 }, "search");
    expect(merged.edges.map((e) => e.node.artwork.qid).sort()).toEqual([...world.donkeys].sort());
    expect(merged.pageInfo.hasNextPage).toBe(false);
    expect(sent.map((s) => [s.method, s.status])).toEqual([
      ["GET", 200],
      ["GET", 200],
    ]);
  });

  it("the README's type policy keeps searches of different modes apart in the cache", async () => {
    const c = client(http());
    const MODED = gql`
      query Moded($q: String!, $mode: SearchMode) {
        search(query: $q, mode: $mode, first: 2) { mode edges { cursor node { artwork { id qid } } } pageInfo { hasNextPage endCursor } }
      }
    `;
    const text = await c.query({ query: MODED, variables: { q: "donkey", mode: "TEXT" } });
    expect((text.data as { search: { mode: string } }).search.mode).toBe("TEXT");
    // Another mode is another list: asked of the server (here it has no embedding model), not answered with TEXT's hits.
    const semantic = await c.query({ query: MODED, variables: { q: "donkey", mode: "SEMANTIC" }, errorPolicy: "all" });
    expect(sent).toHaveLength(2);
    expect(semantic.error).toBeDefined();
  });

  it("bad input reaches Apollo as a GraphQL error with its code and argument", async () => {
    const c = client(http());
    const r = await c.query({ query: SEARCH, variables: { q: "donkey", first: 101 }, errorPolicy: "all" });
    expect(CombinedGraphQLErrors.is(r.error)).toBe(true);
    const [error] = (r.error as CombinedGraphQLErrors).errors;
    expect(error).toMatchObject({ message: "first must be between 0 and 100 (got 101)", extensions: { code: "BAD_USER_INPUT", argument: "first" } });
  });
});

describe("PersistedQueryLink (automatic persisted queries)", () => {
  /** A query no other test sends, so the server has not stored it yet. */
  const fresh = (name: string) => gql`
    query ${name} { artworksConnection(first: 3) { edges { node { id qid } } } }
  `;

  it.each([
    ["POST", false],
    ["GET for hashed queries", true],
  ])("%s: the first request misses, sends the query once, then the hash alone is enough", async (_name, useGETForHashedQueries) => {
    const query = fresh(useGETForHashedQueries ? "PersistedGet" : "PersistedPost");
    const link = () => new PersistedQueryLink({ sha256, useGETForHashedQueries }).concat(http());
    const first = await client(link()).query<{ artworksConnection: Connection }>({ query });
    expect(first.data?.artworksConnection.edges.map((e: { node: { qid: string } }) => e.node.qid)).toEqual(world.active.slice(0, 3));
    const method = useGETForHashedQueries ? "GET" : "POST";
    const hash = sent[0]!.hash;
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(sent).toEqual([
      { method, query: undefined, hash, status: 404 },
      // PersistedQueryLink sends the query with its hash by POST, whatever it hashed with.
      { method: "POST", query: expect.stringContaining("artworksConnection"), hash, status: 200 },
    ]);

    sent = [];
    // Another client (another browser): the hash alone, answered at once.
    const second = await client(link()).query({ query });
    expect(second.data).toEqual(first.data);
    expect(sent).toEqual([{ method, query: undefined, hash, status: 200 }]);
  });
});
