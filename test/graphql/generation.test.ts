import { join } from "node:path";
import { type GraphQLInputObjectType, type GraphQLObjectType } from "graphql";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { GENERATION_DEFAULTS, type NumberSpec, PARAM_NAMES, PARAMS, rangeDescription } from "../../src/generation/params.js";
import { schema } from "../../src/graphql/schema/index.js";
import { createGraphqlApp, type Yoga } from "../../src/graphql/yoga.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { addDescription, makeArtwork, writePlaceholderImages } from "../support/factories.js";
import { gql } from "../support/graphql.js";

const TOKEN = "test-token-0123456789abcdef";
const AUTH = { authorization: `Bearer ${TOKEN}` };
let t: TestDb;
let yoga: Yoga;

beforeAll(async () => {
  t = await createTestDb();
  const imageDir = join(t.dir, "images");
  yoga = createGraphqlApp({ db: t.db, config: loadConfig({ API_TOKEN: TOKEN, IMAGE_DIR: imageDir }) });
  await makeArtwork(t.db, { qid: "Q201" });
  await writePlaceholderImages(t.db, imageDir);
});
afterAll(() => t.close());
beforeEach(async () => {
  await t.db.job.deleteMany();
});

const ALL = PARAM_NAMES.join(" ");
const REGENERATE = `mutation($params: GenerationParamsInput) {
  regenerateDescription(id: "Q201", params: $params) {
    __typename
    ... on ParameterOutOfRangeError { field message }
    ... on Job { requestedParams params { ${ALL} } }
  }
}`;

describe("the GraphQL types come from the table", () => {
  it("GenerationParamsInput and GenerationSettings have one field per parameter", () => {
    const input = schema.getType("GenerationParamsInput") as GraphQLInputObjectType;
    const output = schema.getType("GenerationSettings") as GraphQLObjectType;
    expect(Object.keys(input.getFields())).toEqual(PARAM_NAMES);
    // And earlyStoppingMode, earlyStopping as the input takes it.
    expect(Object.keys(output.getFields())).toEqual([...PARAM_NAMES, "earlyStoppingMode"]);
    // A stored description's parameters name every one too, so they can be sent back as they are.
    const stored = schema.getType("GenerationParameters") as GraphQLObjectType;
    expect(PARAM_NAMES.filter((n) => !(n in stored.getFields()))).toEqual([]);
    for (const name of PARAM_NAMES) {
      expect(input.getFields()[name]!.description ?? null).toBe(rangeDescription(PARAMS[name]));
      expect(String(input.getFields()[name]!.type)).not.toMatch(/!$/);
    }
  });

  it("generationDefaults lists every configured default", async () => {
    const r = await gql(yoga, `{ generationDefaults { params { ${ALL} } } }`);
    expect(r.errors).toBeUndefined();
    expect(r.data.generationDefaults.params).toEqual({ ...GENERATION_DEFAULTS, earlyStopping: "true" });
  });

  it("settings read back with earlyStopping: earlyStoppingMode are a GenerationParamsInput as they are", async () => {
    const asInput = PARAM_NAMES.map((n) => (n === "earlyStopping" ? "earlyStopping: earlyStoppingMode" : n)).join(" ");
    const defaults = (await gql(yoga, `{ generationDefaults { params { ${asInput} } } }`)).data.generationDefaults.params;
    expect(defaults.earlyStopping).toBe("TRUE");
    const queued = await gql(yoga, REGENERATE, { params: { ...defaults, earlyStopping: "NEVER" } }, AUTH);
    expect(queued.errors).toBeUndefined();
    expect(queued.data.regenerateDescription.params.earlyStopping).toBe("never");
    const job = await gql(yoga, `{ jobs(first: 1) { edges { node { params { ${asInput} } } } } }`);
    const again = await gql(yoga, REGENERATE, { params: job.data.jobs.edges[0].node.params }, AUTH);
    expect(again.errors).toBeUndefined();
    expect(again.data.regenerateDescription.requestedParams).toEqual(queued.data.regenerateDescription.requestedParams);
    // A stored description's parameters too; a person's text has none.
    const art = await t.db.artwork.findFirstOrThrow({ where: { qid: "Q201" } });
    await addDescription(t.db, art.id, "A model text.");
    await addDescription(t.db, art.id, "A person's text.", "HUMAN");
    const history = await gql(yoga, `{ artwork(id: "Q201") { ... on Artwork { descriptions { source generation { earlyStopping earlyStoppingMode } } } } }`);
    expect(history.data.artwork.descriptions.map((d: { source: string; generation: unknown }) => [d.source, d.generation])).toEqual(
      expect.arrayContaining([["MODEL", { earlyStopping: "true", earlyStoppingMode: "TRUE" }], ["HUMAN", null]]),
    );
  });
});

describe("regenerateDescription checks every parameter against the table", () => {
  const numeric = PARAM_NAMES.filter((n) => PARAMS[n].kind === "int" || PARAMS[n].kind === "float").map((n) => [n, PARAMS[n] as NumberSpec] as const);

  it.each(numeric)("%s: one beyond each bound is a ParameterOutOfRangeError naming it; nothing is queued", async (name, spec) => {
    for (const bad of [spec.min - 1, spec.max + 1]) {
      const r = await gql(yoga, REGENERATE, { params: { [name]: bad } }, AUTH);
      expect(r.errors).toBeUndefined();
      expect(r.data.regenerateDescription).toMatchObject({ __typename: "ParameterOutOfRangeError", field: name });
      expect(r.data.regenerateDescription.message).toContain(`between ${spec.min} and ${spec.max} (got ${bad})`);
    }
    if (spec.kind === "int") {
      // A fraction is refused by GraphQL's Int itself, before the resolver.
      const r = await gql(yoga, REGENERATE, { params: { [name]: spec.min + 0.5 } }, AUTH);
      expect(r.errors?.[0]?.message).toMatch(/Int/);
    }
    expect(await t.db.job.count()).toBe(0);
  });

  it.each([
    ["   ", /must not be empty/],
    ["x".repeat(2001), /at most 2000 characters/],
    ["Describe\u0007 it", /control characters/],
  ])("a prompt %#: ParameterOutOfRangeError", async (prompt, problem) => {
    const r = await gql(yoga, REGENERATE, { params: { prompt } }, AUTH);
    expect(r.data.regenerateDescription).toMatchObject({ __typename: "ParameterOutOfRangeError", field: "prompt" });
    expect(r.data.regenerateDescription.message).toMatch(problem);
    expect(await t.db.job.count()).toBe(0);
  });

  it("queues the extremes of every range, and every parameter comes back as asked", async () => {
    const params = {
      prompt: "Name the colours.",
      numBeams: 8,
      maxNewTokens: 1024,
      minNewTokens: 1024,
      targetWords: 1000,
      lengthPenalty: -10,
      earlyStopping: "NEVER",
      noRepeatNgramSize: 20,
      repetitionPenalty: 0.5,
      imageSplitting: true,
      cleanMarkdown: false,
    };
    const r = await gql(yoga, REGENERATE, { params }, AUTH);
    expect(r.errors).toBeUndefined();
    expect(r.data.regenerateDescription.__typename).toBe("Job");
    expect(r.data.regenerateDescription.params).toEqual({ ...params, earlyStopping: "never" });
    expect(r.data.regenerateDescription.requestedParams).toEqual({ ...params, earlyStopping: "never" });
  });
});
