import { createHash } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type Config, loadConfig } from "../../src/config.js";
import { readImage } from "../../src/describe/engine.js";
import type { Describer } from "../../src/describe/types.js";
import { createGraphqlApp, type Yoga } from "../../src/graphql/yoga.js";
import { enqueueDescribe } from "../../src/jobs/queue.js";
import { type DescribeWorker, startWorker } from "../../src/jobs/worker.js";
import { createLogger } from "../../src/log.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { makeArtwork } from "../support/factories.js";
import { gql } from "../support/graphql.js";
import { scriptedDescriber } from "../support/scripted-describer.js";

/**
 * Anyone can read `Job.error` over GraphQL: a describe job that fails on a broken image, a missing
 * file or an unexpected error says what went wrong without the server's local paths. The
 * describer reads each image with the engine's own readImage (the check the real model runs
 * first), then generates with the scripted double.
 */
let t: TestDb;
let config: Config;
let yoga: Yoga;
let worker: DescribeWorker | null = null;
const log = createLogger("silent");
let failWith: Error | null = null;

function imageReadingDescriber(): Describer {
  const scripted = scriptedDescriber();
  return {
    ...scripted,
    async describe(inputs, params, options) {
      for (const input of inputs) await readImage(input.imagePath, 512);
      if (failWith) throw failWith;
      return scripted.describe(inputs, params, options);
    },
  };
}

beforeAll(async () => {
  t = await createTestDb();
  config = loadConfig({ IMAGE_DIR: join(t.dir, "images"), HEARTBEAT_INTERVAL_S: "0.2", HEARTBEAT_STALE_S: "5" });
  yoga = createGraphqlApp({ db: t.db, config, log });
  worker = await startWorker({ db: t.db, config, log, openDescriber: async () => imageReadingDescriber(), pollMs: 20, progressEveryMs: 20 });
});
afterAll(async () => {
  await worker?.stop();
  await t.close();
});
beforeEach(() => {
  failWith = null;
});

/** An artwork whose main image file holds `content` (null: no file at all); its job's error as GraphQL shows it. */
/** The sha256 and size the sync records for a stored copy. */
const recorded = (bytes: Buffer | string) => ({ localHash: createHash("sha256").update(bytes).digest("hex"), localBytes: Buffer.byteLength(bytes) });

async function jobErrorFor(
  content: Buffer | string | null,
  stored: { localHash: string; localBytes: number } | null = null,
): Promise<{ status: string; error: string | null; file: string; imageId: number }> {
  const a = await makeArtwork(t.db);
  const image = stored
    ? await t.db.image.update({ where: { id: (await t.db.image.findFirstOrThrow({ where: { artworkId: a.id } })).id }, data: stored })
    : await t.db.image.findFirstOrThrow({ where: { artworkId: a.id } });
  const file = join(config.IMAGE_DIR, image.localPath!);
  mkdirSync(dirname(file), { recursive: true });
  if (content === null) rmSync(file, { force: true });
  else writeFileSync(file, content);
  const { job } = await enqueueDescribe(t.db, config, { artworkId: a.id, imageId: image.id, params: { maxNewTokens: 16 }, reason: "test", requestedBy: "tester" });
  for (const until = Date.now() + 15_000; Date.now() < until; await new Promise((r) => setTimeout(r, 30))) {
    const r = await gql(yoga, `query($id: ID!) { job(id: $id) { ... on Job { status error } } }`, { id: String(job.id) });
    const j = r.data?.job as { status: string; error: string | null } | undefined;
    // An unexpected failure is retried later: the job waits QUEUED with the attempt's error.
    if (j && (j.status === "FAILED" || j.status === "SUCCEEDED" || (j.status === "QUEUED" && j.error))) return { ...j, file: image.localPath!, imageId: image.id };
  }
  throw new Error("the job did not finish");
}

function expectNoLocalPath(error: string | null) {
  expect(error).toBeTruthy();
  expect(error).not.toContain(t.dir);
  expect(error).not.toContain(config.IMAGE_DIR);
  expect(error).not.toMatch(/(^|[\s'"(])\/(tmp|home|work|var|root)\//);
}

describe("Job.error names no local path", () => {
  it.each([
    ["a file that is not an image", "not an image at all"],
    ["an empty file", ""],
    ["a truncated JPEG", async () => (await sharp({ create: { width: 64, height: 64, channels: 3, background: "#c33" } }).jpeg().toBuffer()).subarray(0, 200)],
  ] as const)("%s: the job fails with the image's name relative to IMAGE_DIR and the problem", async (_name, make) => {
    const content = typeof make === "function" ? await make() : make;
    // The sync stored a readable JPEG; the file holds something else now.
    const good = await sharp({ create: { width: 8, height: 8, channels: 3, background: "#39c" } }).jpeg().toBuffer();
    const { status, error, file, imageId } = await jobErrorFor(content, recorded(good));
    expect(status).toBe("FAILED");
    expectNoLocalPath(error);
    expect(error).toMatch(new RegExp(`^Cannot use image ${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: .+`));
    // The copy was damaged since it was stored: its row lets go of it, and the next sync fetches it again.
    expect(await t.db.image.findUniqueOrThrow({ where: { id: imageId } })).toMatchObject({ localPath: null, localSourceSha1: null });
  });

  it("a missing image file: named relative to IMAGE_DIR", async () => {
    const { status, error, file, imageId } = await jobErrorFor(null);
    expect(status).toBe("FAILED");
    expectNoLocalPath(error);
    expect(error).toBe(`image file ${file} is missing from IMAGE_DIR (the next sync downloads it again)`);
    // The sync finds a missing copy itself (one stat a file): a worker whose IMAGE_DIR is not mounted
    // must not clear good rows.
    expect((await t.db.image.findUniqueOrThrow({ where: { id: imageId } })).localPath).toBe(file);
  });

  it("an image the engine refuses as it was stored: the job fails, and the copy is kept (a new download would be the same)", async () => {
    const { status, imageId, file } = await jobErrorFor("not an image at all", recorded("not an image at all"));
    expect(status).toBe("FAILED");
    expect((await t.db.image.findUniqueOrThrow({ where: { id: imageId } })).localPath).toBe(file);
  });

  it("an unexpected error whose message names a path: only its class and code", async () => {
    failWith = Object.assign(new Error(`EACCES: permission denied, open '${join(t.dir, "models", "secret.onnx")}'`), { code: "EACCES" });
    const { status, error } = await jobErrorFor(await sharp({ create: { width: 32, height: 32, channels: 3, background: "#3c3" } }).png().toBuffer());
    expect(["FAILED", "QUEUED"]).toContain(status);
    expectNoLocalPath(error);
    expect(error).toBe("unexpected Error (EACCES); the service log has the details");
  });
});
