import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import type { DescribeOutput } from "../../src/describe/types.js";
import { paramsFromConfig } from "../../src/generation/params.js";
import { createGraphqlApp, type Yoga } from "../../src/graphql/yoga.js";
import { recordModelDescription, setHumanDescription } from "../../src/jobs/descriptions.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { makeArtwork } from "../support/factories.js";
import { gql } from "../support/graphql.js";
import { scriptedDescriber } from "../support/scripted-describer.js";

/**
 * A description records the Commons file it describes (Description.imageFile), so its history
 * still says which file it was when the sync has removed that image from the work (the Image row is
 * deleted and Description.imageId becomes null).
 */

let t: TestDb;
let yoga: Yoga;
let base: DescribeOutput;
beforeAll(async () => {
  t = await createTestDb();
  yoga = createGraphqlApp({ db: t.db, config: loadConfig({ LOG_LEVEL: "silent" }) });
  const [out] = await scriptedDescriber({ steps: 1, stepMs: 0 }).describe([{ imagePath: "/nowhere.jpg" }], paramsFromConfig(loadConfig({})));
  base = out!;
});
afterAll(async () => {
  await t?.close();
});

const HISTORY = `query($id: ID!) { artwork(id: $id) { ... on Artwork { descriptions { text source imageFile image { fileTitle } } } } }`;

describe("the file a description describes", () => {
  it("is recorded for a model's text and a person's, and kept when the sync removes the image", async () => {
    const art = await makeArtwork(t.db);
    const image = await t.db.image.findFirstOrThrow({ where: { artworkId: art.id } });
    const job = await t.db.job.create({ data: { artworkId: art.id, imageId: image.id, status: "RUNNING", holder: "test" } });
    const { description: model } = await recordModelDescription(t.db, job, "test", { id: image.id }, { ...base, text: "A model's text." });
    const person = await setHumanDescription(t.db, art.id, "A person's text.");
    expect(model).toMatchObject({ imageId: image.id, imageFile: image.fileTitle });
    expect(person).toMatchObject({ imageId: image.id, imageFile: image.fileTitle });

    const before = await gql(yoga, HISTORY, { id: art.qid });
    expect(before.errors).toBeUndefined();
    expect(before.data.artwork.descriptions).toEqual([
      { text: "A person's text.", source: "HUMAN", imageFile: image.fileTitle, image: { fileTitle: image.fileTitle } },
      { text: "A model's text.", source: "MODEL", imageFile: image.fileTitle, image: { fileTitle: image.fileTitle } },
    ]);

    // What the sync does with an image Wikidata no longer lists for the work (src/sync/sync.ts).
    await t.db.image.deleteMany({ where: { id: image.id } });
    const after = await gql(yoga, HISTORY, { id: art.qid });
    expect(after.errors).toBeUndefined();
    expect(after.data.artwork.descriptions.map((d: { imageFile: string; image: unknown }) => [d.imageFile, d.image])).toEqual([
      [image.fileTitle, null],
      [image.fileTitle, null],
    ]);
  });

  it("is null for a person's text on a work without an image", async () => {
    const art = await makeArtwork(t.db, { qid: "Q990002" });
    await t.db.image.deleteMany({ where: { artworkId: art.id } });
    expect(await setHumanDescription(t.db, art.id, "Known from a print.")).toMatchObject({ imageId: null, imageFile: null });
  });
});
