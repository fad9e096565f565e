import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Config, loadConfig } from "../../src/config.js";
import { createGraphqlApp } from "../../src/graphql/yoga.js";
import { createLogger } from "../../src/log.js";
import { runSync } from "../../src/sync/sync.js";
import type { TestDb } from "../support/db.js";
import { openSyncTestWorld, type SyncTestWorld } from "../support/sync-world.js";
import { gql } from "../support/graphql.js";
import { type WikidataWorld, WorldModel } from "../support/wikidata-world/index.js";

// Wikidata gives many names once, as the "mul" label (for every language): a creator or a work
// with only that label must still get its name and title.
const ESTEVE = "Q950099";
let world: WikidataWorld;
let t: TestDb;
let config: Config;
let imageDir: string;
let opened: SyncTestWorld;

beforeAll(async () => {
  const model = new WorldModel();
  model.items.set(ESTEVE, { mul: "Joan Esteve" });
  model.items.set("Q3305213", { en: "painting", mul: "pintura" });
  model.addWork({ qid: "Q950021", labels: { mul: "Retaule de sant Jordi" }, creators: [{ value: ESTEVE }], links: { P31: ["Q3305213"] } });
  model.addWork({ qid: "Q950022", labels: { mul: "Retaule", es: "Retablo", ca: "Retaule català" }, creators: [{ value: ESTEVE }] });
  opened = await openSyncTestWorld({ model });
  ({ world, t, imageDir } = opened);
  config = loadConfig({ ...world.env, SYNC_CREATORS: ESTEVE, DATABASE_URL: t.url, IMAGE_DIR: imageDir });
  await runSync({ db: t.db, config, log: createLogger("silent") });
});
afterAll(() => opened?.close());

describe("labels given only in mul", () => {
  it("name the creator and title the work, after the SYNC_LANGUAGES ones", async () => {
    const creator = await t.db.creator.findUniqueOrThrow({ where: { qid: ESTEVE }, include: { labels: true } });
    expect(creator.label).toBe("Joan Esteve");
    expect(creator.labels.map((l) => [l.language, l.label])).toEqual([["mul", "Joan Esteve"]]);
    const only = await t.db.artwork.findUniqueOrThrow({ where: { qid: "Q950021" } });
    expect(only.title).toBe("Retaule de sant Jordi");
    // A language asked for comes first; a label in a language not asked for stays out.
    const both = await t.db.artwork.findUniqueOrThrow({ where: { qid: "Q950022" } });
    expect(both.title).toBe("Retablo");
    expect(JSON.parse(both.titles)).toEqual({ es: "Retablo", mul: "Retaule" });
    expect((await t.db.linkedItem.findUniqueOrThrow({ where: { qid: "Q3305213" } })).label).toBe("painting");
  });

  it("find the creator's works by the mul name", async () => {
    const yoga = createGraphqlApp({ db: t.db, config });
    const r = await gql(yoga, `{ artworks(creator: "Esteve") { qid title } }`);
    expect(r.data.artworks).toEqual(expect.arrayContaining([{ qid: "Q950021", title: "Retaule de sant Jordi" }, { qid: "Q950022", title: "Retablo" }]));
  });
});
