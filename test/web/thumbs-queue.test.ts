import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, expect, it } from "vitest";
import { localPathFor } from "../../src/sync/images.js";
import { serveThumb, Thumbnails, ThumbnailsBusyError } from "../../src/web/thumbs.js";
import { serveOnFreePort } from "../support/http.js";
import { capturingLogger } from "../support/log.js";

/**
 * Thumbnails are made a few at a time: a request waiting for its turn holds no image (the source is
 * read once it has a slot), and the queue is bounded (503 with Retry-After beyond it, logged at
 * most once a minute).
 */
let dir: string;
let imageDir: string;
/** A 4096 px copy (IMAGE_EDGE's largest): slow enough to hold a slot while the test looks. */
let big: Buffer;
let n = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "artdesc-thumbs-queue-"));
  imageDir = join(dir, "images");
  big = await sharp({ create: { width: 4096, height: 3072, channels: 3, background: "#808080", noise: { type: "gaussian", mean: 128, sigma: 50 } } })
    .jpeg({ quality: 90 })
    .toBuffer();
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A stored copy under a name of its own (the content need not match the name for this). */
function store(): { hash: string; file: string } {
  const hash = (++n).toString(16).padStart(64, "0");
  const file = join(imageDir, localPathFor(hash));
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, big);
  return { hash, file };
}


async function until(what: string, ok: () => boolean): Promise<void> {
  const started = performance.now();
  while (!ok()) {
    if (performance.now() - started > 10_000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

const thumbsIn = (name: string, limits: { concurrent: number; waiting: number }) =>
  new Thumbnails({ IMAGE_DIR: imageDir, THUMB_DIR: join(dir, name) }, capturingLogger().log, limits);

it("a thumbnail waiting for a slot has not read its image yet: it reads it when its turn comes", async () => {
  const thumbs = thumbsIn("waits", { concurrent: 1, waiting: 4 });
  const a = store();
  const b = store();
  const first = thumbs.get(a.hash, 640);
  const second = thumbs.get(b.hash, 640);
  await until("the second thumbnail to wait", () => thumbs.queued === 1);
  // Gone while it waits: had it been read before the wait, the thumbnail would still be made.
  rmSync(b.file);
  expect(await second).toBeNull();
  expect((await first)?.subarray(8, 12).toString()).toBe("WEBP");
}, 60_000);

it("at most `waiting` thumbnails wait; one more is refused at once, the same one asked twice waits once", async () => {
  const thumbs = thumbsIn("cap", { concurrent: 1, waiting: 1 });
  const [a, b, c] = [store(), store(), store()];
  const running = thumbs.get(a.hash, 320);
  const waiting = thumbs.get(b.hash, 320);
  await until("the second thumbnail to wait", () => thumbs.queued === 1);
  const again = thumbs.get(b.hash, 320);
  await expect(thumbs.get(c.hash, 320)).rejects.toBeInstanceOf(ThumbnailsBusyError);
  for (const body of await Promise.all([running, waiting, again])) expect(body?.subarray(8, 12).toString()).toBe("WEBP");
  // The queue drained: the refused one can be made now.
  expect((await thumbs.get(c.hash, 320))?.length).toBeGreaterThan(0);
}, 60_000);

it("over HTTP a full queue answers 503 with Retry-After, and says so in the log once", async () => {
  const { lines, log } = capturingLogger();
  const thumbs = new Thumbnails({ IMAGE_DIR: imageDir, THUMB_DIR: join(dir, "http") }, log, { concurrent: 1, waiting: 1 });
  const { base, close } = await serveOnFreePort(createServer((req, res) => void serveThumb(req, res, thumbs)));
  try {
    const [a, b, c, d] = [store(), store(), store(), store()];
    const made = [a, b].map((s) => fetch(`${base}/thumbs/${s.hash}/160.webp`));
    await until("one thumbnail to be made and one to wait", () => thumbs.queued === 1);
    const [refused, refusedToo] = await Promise.all([c, d].map((s) => fetch(`${base}/thumbs/${s.hash}/160.webp`)));
    expect(refused!.status).toBe(503);
    expect(refused!.headers.get("retry-after")).toMatch(/^[1-9][0-9]*$/);
    expect(refused!.headers.get("cache-control")).toBe("no-store");
    expect(refusedToo!.status).toBe(503);
    for (const r of await Promise.all(made)) expect(r.status).toBe(200);
    // The queue drained: a refused thumbnail is made now.
    expect((await fetch(`${base}/thumbs/${c.hash}/160.webp`)).status).toBe(200);
    await new Promise((r) => setImmediate(r));
    const full = lines.filter((l) => String(l.msg).includes("queue full"));
    expect(full).toHaveLength(1);
    expect(full[0]!.level).toBe(40);
  } finally {
    close();
  }
}, 60_000);
