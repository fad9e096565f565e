import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { imageRoute } from "../../src/api/images.js";
import { loadConfig } from "../../src/config.js";
import { Engine } from "../../src/describe/engine.js";
import { paramsFromConfig } from "../../src/generation/params.js";
import { recordModelDescription } from "../../src/jobs/descriptions.js";
import { localPathFor } from "../../src/sync/images.js";
import { runCli } from "../support/cli.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { makeArtwork } from "../support/factories.js";
import { createTinyModel, type TinyModel } from "../support/models.js";
import { type FaultServer, startFaultServer } from "./remote-worker-faults.js";

/**
 * `artdesc describe --like` on a machine that shares only the database: it reads the image through
 * the same source as the worker (IMAGE_SOURCE_URL), so a description runs again there too, and an
 * image the source cannot give (corrupted, gone) is refused with the reason, exit 3.
 */
let t: TestDb;
let model: TinyModel;
let server: FaultServer;
let apiDir: string;
let localPath: string;
let described: number;

beforeAll(async () => {
  t = await createTestDb();
  model = createTinyModel({ dtype: "fp32" });
  apiDir = join(t.dir, "api-images");
  const config = loadConfig({ IMAGE_DIR: apiDir, DESCRIBE_MAX_NEW_TOKENS: "16", DESCRIBE_NUM_BEAMS: "2" });
  const data = await sharp({ create: { width: 80, height: 60, channels: 3, background: { r: 30, g: 140, b: 90 } } }).jpeg().toBuffer();
  const hash = createHash("sha256").update(data).digest("hex");
  localPath = localPathFor(hash);
  const file = join(apiDir, localPath);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, data);
  const a = await makeArtwork(t.db, { image: { localPath } });
  const image = await t.db.image.findFirstOrThrow({ where: { artworkId: a.id } });
  await t.db.image.update({ where: { id: image.id }, data: { localHash: hash, localBytes: data.length } });
  const engine = await Engine.load({ modelDir: model.dir });
  try {
    const [out] = await engine.describe([{ imagePath: file }], { ...paramsFromConfig(config), targetWords: 0 });
    const job = await t.db.job.create({ data: { artworkId: a.id, imageId: image.id, status: "RUNNING", holder: "test" } });
    described = (await recordModelDescription(t.db, job, "test", { id: image.id }, out!)).description.id;
  } finally {
    await engine.dispose();
  }
  const route = imageRoute(apiDir);
  server = await startFaultServer(
    async (req, res) => {
      if (!(await route(req, res))) res.writeHead(404).end();
    },
    async (name) => readFileSync(join(apiDir, name)),
  );
}, 60_000);
afterAll(async () => {
  await server?.close();
  await t?.close();
  model?.remove();
});

async function like(imageDir: string) {
  const p = runCli(["describe", "--like", String(described), "--model", model.dir], {
    DATABASE_URL: t.url,
    IMAGE_DIR: imageDir,
    IMAGE_SOURCE_URL: server.base,
    HTTP_MAX_RETRIES: "0",
    LOG_LEVEL: "warn",
  });
  const { code } = await p.exit;
  const out = p.output();
  expect(out, "no stack trace").not.toMatch(/^\s+at .+[(:]\d+/m);
  return { code, out };
}

describe("describe --like with IMAGE_SOURCE_URL", { timeout: 60_000 }, () => {
  it("fetches the image from the API, checks it, and runs the description again: the same tokens", async () => {
    const dir = join(t.dir, "like-a");
    const { code, out } = await like(dir);
    expect(out).toMatch(new RegExp(`tokens identical: \\d+ tokens, as description ${described}`));
    expect(code, out).toBe(0);
    expect(existsSync(join(dir, localPath))).toBe(true);
  });

  it("a corrupted answer or a 404: not reproducible, exit 3, with the reason and no local path", async () => {
    for (const [fault, reason] of [
      [{ kind: "corrupt" }, /its image cannot be had: .* from the image source has sha256 .* not the stored/],
      [{ kind: "status", status: 404 }, /its image cannot be had: the image source \(IMAGE_SOURCE_URL\) has no .* \(HTTP 404\)/],
    ] as const) {
      server.clear();
      server.fault(localPath, fault);
      const dir = join(t.dir, `like-${fault.kind}`);
      const { code, out } = await like(dir);
      expect(out).toMatch(reason);
      expect(out).not.toContain(t.dir);
      expect(code, out).toBe(3);
      expect(existsSync(join(dir, localPath))).toBe(false);
    }
  });
});
