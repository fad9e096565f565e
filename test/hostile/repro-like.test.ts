import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { encodeGlobalID } from "@pothos/plugin-relay";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { Engine } from "../../src/describe/engine.js";
import { paramsFromConfig } from "../../src/generation/params.js";
import { recordModelDescription, setHumanDescription } from "../../src/jobs/descriptions.js";
import { runCli } from "../support/cli.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { makeArtwork } from "../support/factories.js";
import { createTinyModel, type TinyModel } from "../support/models.js";

/**
 * `artdesc describe --like` as a user runs it (a child process): a description written by the
 * real write path is run again and matches; stored tokens that were tampered with are reported as
 * different (exit 1); ids that name no reproducible description are refused (exit 3) with one
 * line and no stack; flags that would change the run are a usage error (exit 2).
 */

let t: TestDb;
let model: TinyModel;
let env: Record<string, string>;
let described: number;
let tampered: number;
let human: number;
let artworkId: number;

beforeAll(async () => {
  t = await createTestDb();
  model = createTinyModel({ dtype: "fp32" });
  env = { DATABASE_URL: t.url, IMAGE_DIR: join(t.dir, "images"), LOG_LEVEL: "warn", DESCRIBE_MAX_NEW_TOKENS: "20", DESCRIBE_NUM_BEAMS: "2" };
  const config = loadConfig(env);
  const a = await makeArtwork(t.db, { title: "A donkey" });
  artworkId = a.id;
  const image = await t.db.image.findFirstOrThrow({ where: { artworkId: a.id } });
  const file = join(config.IMAGE_DIR, image.localPath!);
  mkdirSync(dirname(file), { recursive: true });
  await sharp({ create: { width: 80, height: 60, channels: 3, background: { r: 140, g: 120, b: 90 } } }).jpeg().toFile(file);
  const engine = await Engine.load({ modelDir: model.dir });
  try {
    const params = { ...paramsFromConfig(config), targetWords: 0 };
    const [out] = await engine.describe([{ imagePath: file, context: { title: "A donkey" } }], params);
    for (const tokens of [out!.generatedTokenIds, [...out!.generatedTokenIds.slice(0, 3), 1, 2]]) {
      const job = await t.db.job.create({ data: { artworkId: a.id, imageId: image.id, status: "RUNNING", holder: "test" } });
      const { description } = await recordModelDescription(t.db, job, "test", { id: image.id }, { ...out!, generatedTokenIds: tokens });
      if (tokens === out!.generatedTokenIds) described = description.id;
      else tampered = description.id;
    }
  } finally {
    await engine.dispose();
  }
  human = (await setHumanDescription(t.db, a.id, "A curator's text.")).id;
}, 60_000);
afterAll(async () => {
  await t?.close();
  model?.remove();
});

async function like(args: string[]) {
  const p = runCli(["describe", ...args], env);
  const { code } = await p.exit;
  const out = p.output();
  expect(out, "no stack trace").not.toMatch(/^\s+at .+[(:]\d+/m);
  return { code, out };
}

describe("artdesc describe --like (CLI)", () => {
  it("runs a stored description again: the same tokens, exit 0", async () => {
    const { code, out } = await like(["--like", String(described), "--model", model.dir]);
    expect(out).toMatch(new RegExp(`tokens identical: \\d+ tokens, as description ${described}`));
    expect(code, out).toBe(0);
  });

  it("reports other tokens with where they first differ, exit 1", async () => {
    const { code, out } = await like(["--like", encodeGlobalID("Description", tampered), "--model", model.dir]);
    expect(out).toMatch(new RegExp(`tokens differ from description ${tampered} at token 3: 5 tokens then, \\d+ now`));
    expect(code, out).toBe(1);
  });

  it("refuses what it cannot run again, exit 3, and what is no description id, exit 2 (usage), one line each", async () => {
    const cases: [string, RegExp, number][] = [
      [String(human), /not reproducible: description \d+: it is a person's text/, 3],
      [encodeGlobalID("Artwork", artworkId), /--like "[^"]+": that is not a description id/, 2],
      ["x".repeat(5000), /--like "x{80}…": that is not a description id/, 2],
    ];
    for (const [id, pattern, exit] of cases) {
      const { code, out } = await like(["--like", id, "--model", model.dir]);
      expect(out).toMatch(pattern);
      expect(out.trim().split("\n"), out).toHaveLength(1);
      expect(code, out).toBe(exit);
    }
  });

  it("refuses image files, generation flags or --batch next to --like: usage error, exit 2", async () => {
    // Each takes a process start; the in-process tests (test/describe/like.test.ts) cover more ids.
    for (const extra of [["some.png"], ["--no-clean-markdown"]]) {
      const { code, out } = await like(["--like", String(described), ...extra]);
      expect(out).toMatch(/--like runs a stored description as it was made/);
      expect(code, out).toBe(2);
    }
  });
});
