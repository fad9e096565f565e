import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { describeFiles } from "../../src/describe/command.js";
import { ImageInputError, readImage } from "../../src/describe/engine.js";
import { createGraphqlApp } from "../../src/graphql/yoga.js";
import { createLogger } from "../../src/log.js";
import { dimensionProblem, ImageRejectedError, localPathFor, normalizeImage } from "../../src/sync/images.js";
import { runSync } from "../../src/sync/sync.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { gql } from "../support/graphql.js";
import { createTinyModel, type TinyModel } from "../support/models.js";
import { decompressionBomb, GOYA } from "../support/wikidata-world/goya.js";
import { startWikidataWorld, type WikidataWorld, WorldModel } from "../support/wikidata-world/index.js";

/**
 * Images no model can use, as Commons could serve them and as a user could hand them to
 * `artdesc describe`: each is refused with a typed error that says what is wrong with it.
 */

const png = (width: number, height: number) => sharp({ create: { width, height, channels: 3, background: { r: 120, g: 60, b: 30 } } }).png().toBuffer();

interface BadImage {
  name: string;
  file: string;
  bytes: () => Promise<Buffer>;
  reason: RegExp;
}

const BAD: BadImage[] = [
  { name: "1×60000 PNG", file: "Strip tall.png", bytes: () => png(1, 60000), reason: /^image is 1×60000 px: aspect ratio too extreme \(max 1:100\)$/ },
  { name: "60000×1 PNG", file: "Strip wide.png", bytes: () => png(60000, 1), reason: /^image is 60000×1 px: aspect ratio too extreme \(max 1:100\)$/ },
  { name: "0-byte file", file: "Empty.jpg", bytes: async () => Buffer.alloc(0), reason: /^the file is empty \(0 bytes\)$/ },
  {
    name: "truncated PNG",
    file: "Cut.png",
    bytes: async () => {
      const whole = await sharp({ create: { width: 300, height: 300, channels: 3, background: "#000", noise: { type: "gaussian", mean: 128, sigma: 60 } } }).png().toBuffer();
      return whole.subarray(0, Math.floor(whole.length / 2));
    },
    reason: /^png data is truncated or corrupt \(300×300 px header\)$/,
  },
  { name: "text file named .jpg", file: "Notes.jpg", bytes: async () => Buffer.from("these are my notes, not a picture\n"), reason: /^not an image in a supported format/ },
  { name: "decompression bomb", file: "Bomb.png", bytes: async () => decompressionBomb().bytes, reason: /^image is 30000×30000 px: over the pixel limit/ },
];

let world: WikidataWorld;
let files: Map<string, Buffer>;

beforeAll(async () => {
  const model = new WorldModel();
  model.items.set(GOYA, { en: "Francisco Goya" });
  files = new Map();
  for (const [i, b] of BAD.entries()) {
    const bytes = await b.bytes();
    files.set(b.name, bytes);
    model.setFile(`File:${b.file}`, { bytes, mime: b.file.endsWith(".png") ? "image/png" : "image/jpeg", width: 1, height: 1 });
    model.addWork({ qid: `Q97000${i + 1}`, labels: { en: b.name }, creators: [{ value: GOYA }], images: [{ file: b.file }] });
  }
  const fine = await sharp({ create: { width: 320, height: 240, channels: 3, background: { r: 20, g: 120, b: 220 } } }).jpeg().toBuffer();
  model.setFile("File:Fine.jpg", { bytes: fine, mime: "image/jpeg", width: 320, height: 240 });
  model.addWork({ qid: "Q970100", labels: { en: "Fine" }, creators: [{ value: GOYA }], images: [{ file: "Fine.jpg" }] });
  world = await startWikidataWorld({ model });
});
afterAll(() => world?.stop());

describe("a sync meets images no model can use", () => {
  let t: TestDb;
  let imageDir: string;
  beforeAll(async () => {
    t = await createTestDb();
    imageDir = mkdtempSync(join(tmpdir(), "artdesc-images-"));
  });
  afterAll(async () => {
    await t.close();
    rmSync(imageDir, { recursive: true, force: true });
  });

  it("records one normalise failure per bad file saying what is wrong; the good one is stored; the next run fetches again only those that may have been a bad transfer", async () => {
    const config = loadConfig({ ...world.env, DATABASE_URL: t.url, IMAGE_DIR: imageDir });
    const r = await runSync({ db: t.db, config, log: createLogger("silent") });
    expect(r).toMatchObject({ status: "PARTIAL", created: BAD.length + 1, imagesDownloaded: 1, failed: BAD.length });
    const failures = await t.db.syncFailure.findMany({ where: { syncRunId: r.runId } });
    for (const b of BAD) {
      const f = failures.find((x) => x.fileTitle === `File:${b.file}`);
      expect(f, b.name).toMatchObject({ stage: "normalise", itemQid: expect.stringMatching(/^Q\d+$/) });
      expect(f!.reason, b.name).toMatch(b.reason);
    }
    const before = world.requests.length;
    const again = await runSync({ db: t.db, config, log: createLogger("silent") });
    // Refused by their header (size, aspect ratio): remembered, not fetched again until Commons has a
    // new upload. Empty, cut off or not an image: what a bad transfer also gives, so tried again.
    const transfer = BAD.filter((b) => !/aspect ratio|pixel limit/.test(b.reason.source));
    expect(again).toMatchObject({ status: "PARTIAL", failed: transfer.length });
    const fetched = world.requests.slice(before).filter((q) => q.target === "image").map((q) => decodeURIComponent(q.path));
    expect(fetched).toHaveLength(transfer.length);
    for (const b of transfer) expect(fetched.some((p) => p.includes(b.file)), b.name).toBe(true);
  });

  it.each(BAD.map((b) => [b.name, b] as const))("normalizeImage on a %s: ImageRejectedError with its problem", async (_n, b) => {
    const err = await normalizeImage(files.get(b.name)!, 256).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageRejectedError);
    expect((err as Error).message).toMatch(b.reason);
  });

  it("dimensionProblem is pure: limits at the edges", () => {
    expect(dimensionProblem(100, 10_000)).toBeNull();
    expect(dimensionProblem(100, 10_001)?.problem).toBe("aspect-ratio");
    expect(dimensionProblem(1, 1)).toBeNull();
    expect(dimensionProblem(10_000, 10_000)).toBeNull();
    expect(dimensionProblem(10_001, 10_000)?.problem).toBe("too-many-pixels");
    expect(dimensionProblem(0, 10)?.problem).toBe("corrupt");
  });
});

describe("describing an image no model can use", () => {
  let model: TinyModel;
  let dir: string;
  beforeAll(() => {
    model = createTinyModel({ dtype: "fp32" });
    dir = mkdtempSync(join(tmpdir(), "artdesc-describe-"));
    for (const b of BAD) writeFileSync(join(dir, b.file), files.get(b.name)!);
  });
  afterAll(() => {
    model?.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each(BAD.map((b) => [b.name, b] as const))("preprocessing a %s: ImageInputError that says what is wrong", async (_n, b) => {
    const path = join(dir, b.file);
    const err = await readImage(path, 512).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageInputError);
    expect((err as ImageInputError).path).toBe(path);
    const prefix = `Cannot use image ${path}: `;
    expect((err as Error).message.startsWith(prefix)).toBe(true);
    expect((err as Error).message.slice(prefix.length)).toMatch(b.reason);
  });

  it("artdesc describe reports each bad file with its reason and still describes the good one", async () => {
    const good = join(dir, "good.png");
    await sharp({ create: { width: 70, height: 50, channels: 3, background: { r: 10, g: 120, b: 200 } } }).png().toFile(good);
    const out: string[] = [];
    const err: string[] = [];
    const paths = BAD.map((b) => join(dir, b.file));
    const failures = await describeFiles(loadConfig({}), [...paths, good], { model: model.dir, params: { numBeams: 1, maxNewTokens: 16 }, batch: 1, json: true }, {
      out: (l) => out.push(l),
      err: (l) => err.push(l),
    });
    expect(failures).toBe(BAD.length);
    expect(out.map((l) => (JSON.parse(l) as { file: string }).file)).toEqual([good]);
    const text = err.join("\n");
    expect(text).not.toMatch(/Expected positive integer/);
    for (const b of BAD) expect(text).toContain(`Cannot use image ${join(dir, b.file)}: `);
    expect(text).toMatch(/1×60000 px: aspect ratio too extreme/);
  });
});

describe("failure reasons name no local path", () => {
  it("an unexpected file-system error is stored as its class and code; the log has the path", async () => {
    const t = await createTestDb();
    const imageDir = mkdtempSync(join(tmpdir(), "artdesc-images-"));
    try {
      // A folder where the good image's file will go: the rename fails with EISDIR, naming the path.
      const fine = await normalizeImage(world.model.files.get("File:Fine.jpg")!.bytes, 256);
      mkdirSync(join(imageDir, localPathFor(fine.hash)), { recursive: true });
      let logged = "";
      const sink = new Writable({ write: (c: Buffer, _e, cb) => ((logged += c.toString()), cb()) });
      const config = loadConfig({ ...world.env, DATABASE_URL: t.url, IMAGE_DIR: imageDir });
      const r = await runSync({ db: t.db, config, log: pino({ level: "warn" }, sink) });
      expect(r.failed).toBe(BAD.length + 1);

      const yoga = createGraphqlApp({ db: t.db, config });
      const res = await gql(yoga, `{ syncRuns { error failures { stage fileTitle reason } } }`);
      expect(res.errors).toBeUndefined();
      const failures = res.data.syncRuns[0].failures as { fileTitle: string; reason: string }[];
      expect(failures.find((f) => f.fileTitle === "File:Fine.jpg")!.reason).toBe("unexpected Error (EISDIR); the service log has the details");
      for (const f of failures) {
        expect(f.reason).not.toContain(imageDir);
        expect(f.reason).not.toMatch(/\/(tmp|work|home|data|root|var)\//);
        expect(f.reason).not.toMatch(/\n\s+at /);
      }
      // The operator still finds the path and the stack in the service log.
      expect(logged).toContain(imageDir);
      expect(logged).toContain("EISDIR");
    } finally {
      await t.close();
      rmSync(imageDir, { recursive: true, force: true });
    }
  });
});
