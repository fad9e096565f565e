import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { enqueueDescribe } from "../../src/jobs/queue.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { makeArtwork } from "../support/factories.js";
import { spawnArtdesc, tinyModelEnv, waitUntil } from "../support/processes.js";

let t: TestDb;
let model: ReturnType<typeof tinyModelEnv>;

beforeAll(async () => {
  t = await createTestDb();
  model = tinyModelEnv();
});
afterAll(async () => {
  await t?.close();
  model?.remove();
});

describe("a worker killed in the middle of a description", () => {
  it("leaves no half row; after a restart the job is retried and writes exactly one description", async () => {
    const env = {
      ...model.env,
      DATABASE_URL: t.url,
      IMAGE_DIR: join(t.dir, "images"),
      HEARTBEAT_INTERVAL_S: "0.3",
      HEARTBEAT_STALE_S: "2",
      LOG_LEVEL: "info",
    };
    const config = loadConfig(env);
    const art = await makeArtwork(t.db);
    const image = await t.db.image.findFirstOrThrow({ where: { artworkId: art.id } });
    const file = join(config.IMAGE_DIR, image.localPath!);
    mkdirSync(dirname(file), { recursive: true });
    await sharp({ create: { width: 200, height: 150, channels: 3, background: { r: 200, g: 120, b: 40 } } }).jpeg().toFile(file);
    // A long generation: at least 1000 of at most 1024 tokens, 8 beams (seconds on the tiny model).
    const { job } = await enqueueDescribe(t.db, config, { artworkId: art.id, imageId: image.id, params: { numBeams: 8, minNewTokens: 1000, maxNewTokens: 1024, targetWords: 0 } });

    const first = spawnArtdesc(["worker"], env);
    const running = await waitUntil("progress in the database", () => t.db.job.findFirst({ where: { id: job.id, progress: { gt: 0 } } }), 120_000, 10);
    first.child.kill("SIGKILL");
    expect(await first.exited).toBe("SIGKILL");
    const afterKill = await t.db.job.findUniqueOrThrow({ where: { id: job.id } });
    expect(running.status).toBe("RUNNING");
    expect(afterKill.status).toBe("RUNNING"); // killed before it could finish
    expect(afterKill.progress).toBeLessThan(1000);
    expect(await t.db.description.count({ where: { artworkId: art.id } })).toBe(0);

    const second = spawnArtdesc(["worker"], env);
    try {
      const done = await waitUntil("the retried job", () => t.db.job.findFirst({ where: { id: job.id, status: { in: ["SUCCEEDED", "FAILED"] } } }), 180_000, 100);
      expect(done, second.output().slice(-3000)).toMatchObject({ status: "SUCCEEDED", attempts: 2 });
      const descriptions = await t.db.description.findMany({ where: { artworkId: art.id } });
      expect(descriptions).toHaveLength(1);
      expect(descriptions[0]).toMatchObject({ jobId: job.id, source: "MODEL", numBeams: 8, minNewTokens: 1000, maxNewTokens: 1024 });
      expect(descriptions[0]!.generatedTokens, descriptions[0]!.finishReason!).toBeGreaterThanOrEqual(1000);
      expect((await t.db.artwork.findUniqueOrThrow({ where: { id: art.id } })).currentDescriptionId).toBe(descriptions[0]!.id);
    } finally {
      expect(await second.stop("SIGTERM")).toBe(0);
    }
  }, 300_000); // its own waits allow 120 s + 180 s on a loaded machine
});
