import { encodeGlobalID } from "@pothos/plugin-relay";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ClientWorld, post, startClientWorld } from "./fixture.js";

/**
 * `node` and `nodes` as the Relay server specification and every client expect them: an id that
 * names no object is null, whatever is wrong with it, and in `nodes` only its own entry is null.
 */
let world: ClientWorld;
let nodeTypes: string[] = [];
let artworkId: string;
let descriptionId: string;

beforeAll(async () => {
  world = await startClientWorld();
  const types = await post(world.url, { query: `{ __type(name: "Node") { possibleTypes { name } } }` });
  nodeTypes = types.body.data.__type.possibleTypes.map((t: { name: string }) => t.name);
  const first = await post(world.url, { query: `{ artworksConnection(first: 1) { edges { node { id currentDescription { id } } } } }` });
  artworkId = first.body.data.artworksConnection.edges[0].node.id;
  descriptionId = first.body.data.artworksConnection.edges[0].node.currentDescription.id;
});
afterAll(() => world?.close());

const global = (type: string, id: string | number) => Buffer.from(`${type}:${id}`).toString("base64");

const NOT_AN_OBJECT: [string, string][] = [
  ["a missing Artwork row", encodeGlobalID("Artwork", 987_654)],
  ["an unknown type", global("Nope", 1)],
  ["a type that is not a node", global("Creator", 1)],
  ["a type name's wrong case", global("artwork", 1)],
  ["text that is not base64", "garbage"],
  ["base64 of text without a colon", Buffer.from("Artwork").toString("base64")],
  ["a number that is not a row id", global("Artwork", "abc")],
  ["zero", global("Artwork", 0)],
  ["a leading zero", global("Job", "007")],
  ["a number past 32 bits", global("Description", 2 ** 31)],
  ["20 digits", global("Artwork", "99999999999999999999")],
  ["an empty id", ""],
  ["a QID (not a global id)", "Q7001"],
  ["emoji", "🙂"],
];

describe("node(id:)", () => {
  it("the schema's node types are the ones a client can refetch", () => {
    expect(nodeTypes.sort()).toEqual(["Artwork", "Description", "Experiment", "Job", "Review", "SyncRun"]);
  });

  it("answers every node type for an existing row, and null for a missing one, without an error", async () => {
    const found = await post(world.url, { query: `query($id: ID!) { node(id: $id) { __typename id } }`, variables: { id: artworkId } });
    expect(found.body).toEqual({ data: { node: { __typename: "Artwork", id: artworkId } } });
    for (const type of nodeTypes) {
      const r = await post(world.url, { query: `query($id: ID!) { node(id: $id) { id } }`, variables: { id: encodeGlobalID(type, 987_654) } });
      expect(r.status, type).toBe(200);
      expect(r.body, type).toEqual({ data: { node: null } });
    }
  });

  it.each(NOT_AN_OBJECT)("%s is null", async (_name, id) => {
    const r = await post(world.url, { query: `query($id: ID!) { node(id: $id) { id ... on Artwork { qid } } }`, variables: { id } });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ data: { node: null } });
  });
});

describe("nodes(ids:)", () => {
  it("keeps the order of the ids and nulls only the entries that name no object", async () => {
    const ids = [artworkId, encodeGlobalID("Artwork", 987_654), descriptionId, ...NOT_AN_OBJECT.map(([, id]) => id), artworkId];
    const r = await post(world.url, { query: `query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }`, variables: { ids } });
    expect(r.status).toBe(200);
    expect(r.body.errors).toBeUndefined();
    expect(r.body.data.nodes).toEqual([
      { __typename: "Artwork", id: artworkId },
      null,
      { __typename: "Description", id: descriptionId },
      ...NOT_AN_OBJECT.map(() => null),
      { __typename: "Artwork", id: artworkId },
    ]);
  });

  it("an id longer than any of this API's is refused by the input limit before it is decoded", async () => {
    const r = await post(world.url, { query: `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, variables: { ids: [artworkId, "A".repeat(5000)] } });
    expect(r.status).toBe(400);
    expect(r.body.errors?.map((e) => e.extensions?.code)).toEqual(["BAD_USER_INPUT"]);
    expect(r.body.errors?.[0]?.message).toBe("Query.nodes(ids:) takes at most 200 characters (got 5000)");
  });
});
