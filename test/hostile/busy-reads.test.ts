import { type ChildProcess, spawn } from "node:child_process";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { closeDb, createDb, type Db, probeWrite, writeTransaction } from "../../src/db.js";
import { createHttpApp } from "../../src/server.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { makeArtwork } from "../support/factories.js";
import { serveOnFreePort } from "../support/http.js";

/**
 * Reads while something writes: in this process (a sync's transaction in `artdesc start`) and in
 * another (`artdesc sync` next to `start`). Reads must not wait for the writer, and waiting for
 * another process's write lock must not freeze the event loop.
 */
let t: TestDb;
let base: string;
let close: () => void;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  t = await createTestDb();
  await makeArtwork(t.db, { qid: "Q7001", title: "Committed title" });
  const { server } = createHttpApp({ db: t.db, config: loadConfig({ IMAGE_DIR: `${t.dir}/images` }) });
  ({ base, close } = await serveOnFreePort(server));
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  close();
  await t.close();
});

const sleep = (ms: number) => new Promise<"timeout">((r) => setTimeout(() => r("timeout"), ms));

async function graphqlTitles(): Promise<{ ms: number; titles: string[] }> {
  const started = performance.now();
  const res = await fetch(`${base}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query: "{ artworks(limit: 50) { title } }" }),
    signal: AbortSignal.timeout(10_000),
  });
  const body = (await res.json()) as { data: { artworks: { title: string }[] } };
  return { ms: performance.now() - started, titles: body.data.artworks.map((a) => a.title) };
}

/** A transaction of this client that has written and stays open until `release()`. */
function holdTransaction(db: Db): { release: () => void; begun: Promise<void>; done: Promise<unknown> } {
  let release!: () => void;
  const hang = new Promise<void>((r) => (release = r));
  let started!: () => void;
  const begun = new Promise<void>((r) => (started = r));
  const done = db.$transaction(
    async (tx) => {
      await tx.artwork.updateMany({ where: { qid: "Q7001" }, data: { title: "Uncommitted title" } });
      started();
      await hang;
      throw new Error("rolled back on purpose");
    },
    { timeout: 60_000, maxWait: 60_000 },
  ).catch((err: unknown) => err);
  return { release, begun, done };
}

/** Records the longest pause between ticks of a 10 ms timer: how long the event loop was blocked. */
function loopWatch(): { stop: () => number } {
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 10);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(longest, performance.now() - last);
    },
  };
}

/** Another process that takes SQLite's write lock (BEGIN IMMEDIATE) and holds it for `holdMs`. */
async function holdWriteLockElsewhere(file: string, holdMs: number): Promise<{ released: Promise<void>; child: ChildProcess }> {
  const script = `
    const Database = require("better-sqlite3");
    const db = new Database(process.argv[1]);
    db.exec("BEGIN IMMEDIATE");
    db.prepare("UPDATE Artwork SET title = title WHERE 0").run();
    process.stdout.write("locked\\n");
    setTimeout(() => { db.exec("COMMIT"); db.close(); process.stdout.write("released\\n"); }, Number(process.argv[2]));`;
  const child = spawn(process.execPath, ["-e", script, file, String(holdMs)], { stdio: ["ignore", "pipe", "inherit"] });
  cleanups.push(() => child.exitCode === null && child.kill());
  let out = "";
  let onReleased!: () => void;
  const released = new Promise<void>((r) => (onReleased = r));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (d) => {
      out += d;
      if (out.includes("locked")) resolve();
      if (out.includes("released")) onReleased();
    });
    child.once("exit", (code) => (out.includes("locked") ? onReleased() : reject(new Error(`lock holder exited with ${code}`))));
  });
  return { released, child };
}

it("a GraphQL read answers while this process holds a write transaction open, and sees only committed data", async () => {
  const held = holdTransaction(t.db);
  cleanups.push(async () => {
    held.release();
    await held.done;
  });
  await held.begun;
  for (let i = 0; i < 3; i++) {
    const r = await graphqlTitles();
    expect(r.ms).toBeLessThan(2_000);
    expect(r.titles).toContain("Committed title");
    expect(r.titles).not.toContain("Uncommitted title");
  }
  // Prisma reads of every shape, not only the GraphQL one.
  const [one, many, count, raw] = await Promise.race([
    Promise.all([
      t.db.artwork.findUnique({ where: { qid: "Q7001" }, select: { title: true } }),
      t.db.artwork.findMany({ include: { creators: true, images: true } }),
      t.db.artwork.count(),
      t.db.$queryRaw<{ title: string }[]>`SELECT title FROM Artwork WHERE qid = 'Q7001'`,
    ]),
    sleep(2_000),
  ]) as [{ title: string }, unknown[], number, { title: string }[]];
  expect(one.title).toBe("Committed title");
  expect(many.length).toBe(count);
  expect(raw[0]!.title).toBe("Committed title");
});

it("without the separate reader the same read would wait for the transaction (what the reader prevents)", async () => {
  const db = await createDb(t.url, { separateReader: false });
  cleanups.push(() => closeDb(db));
  const held = holdTransaction(db);
  cleanups.push(async () => {
    held.release();
    await held.done;
  });
  await held.begun;
  const read = db.artwork.findUnique({ where: { qid: "Q7001" }, select: { title: true } });
  expect(await Promise.race([read, sleep(500)])).toBe("timeout");
  held.release();
  expect((await read)!.title).toBe("Committed title");
});

it("reads see every write this process has made (read-your-writes), right after it returns", async () => {
  const { db } = t;
  for (let i = 0; i < 30; i++) {
    const a = await makeArtwork(db, { qid: `Q71${String(i).padStart(2, "0")}` });
    expect(await db.artwork.findUnique({ where: { id: a.id }, select: { id: true } })).toEqual({ id: a.id });
    await db.artwork.update({ where: { id: a.id }, data: { title: `Retitled ${i}` } });
    expect((await db.artwork.findUniqueOrThrow({ where: { id: a.id } })).title).toBe(`Retitled ${i}`);
    await writeTransaction(db, (tx) => tx.artwork.update({ where: { id: a.id }, data: { title: `In a transaction ${i}` } }));
    expect((await graphqlTitles()).titles).toContain(`In a transaction ${i}`);
    await db.artwork.delete({ where: { id: a.id } });
    expect(await db.artwork.findUnique({ where: { id: a.id } })).toBeNull();
  }
});

it("statements that write stay on the writer: INSERT … RETURNING, a WITH that inserts, and reads inside a transaction", async () => {
  const { db } = t;
  const [inserted] = await db.$queryRaw<{ id: number }[]>`INSERT INTO Creator (qid, label, updatedAt) VALUES ('Q7201', 'Returning', ${new Date()}) RETURNING id`;
  expect(inserted!.id).toBeGreaterThan(0);
  const [viaWith] = await db.$queryRawUnsafe<{ id: number }[]>(
    "WITH v(q) AS (SELECT 'Q7202') INSERT INTO Creator (qid, label, updatedAt) SELECT q, 'With', ? FROM v RETURNING id",
    new Date(),
  );
  expect(viaWith!.id).toBeGreaterThan(inserted!.id);
  expect(await db.creator.count({ where: { qid: { in: ["Q7201", "Q7202"] } } })).toBe(2);
  // A read inside a transaction sees that transaction's own uncommitted write.
  const seen = await db.$transaction(async (tx) => {
    await tx.creator.update({ where: { qid: "Q7201" }, data: { label: "Changed inside" } });
    return (await tx.creator.findUniqueOrThrow({ where: { qid: "Q7201" } })).label;
  });
  expect(seen).toBe("Changed inside");
  // Bad SQL still reports SQLite's error.
  await expect(db.$queryRawUnsafe("SELECT no_such_column FROM Creator")).rejects.toThrow(/no_such_column/);
});

it("while another process holds the write lock, reads answer and writes wait without blocking the event loop", async () => {
  const { db } = t;
  const HOLD_MS = 1_500;
  const { released } = await holdWriteLockElsewhere(t.file, HOLD_MS);
  const watch = loopWatch();
  const started = performance.now();
  const since = () => performance.now() - started;

  // Reads: at once, over HTTP and through Prisma.
  const read = await graphqlTitles();
  expect(read.ms).toBeLessThan(1_000);
  // probeWrite (/ready) reports "busy" within its limit without blocking.
  expect(await probeWrite(db, 200)).toBe("busy");
  expect(since()).toBeLessThan(HOLD_MS);

  // Writes of every kind wait for the lock and then succeed.
  const writes = Promise.all([
    db.artwork.updateMany({ where: { qid: "Q7001" }, data: { title: "Committed title" } }).then(() => since()),
    makeArtwork(db, { qid: "Q7301" }).then(() => since()),
    writeTransaction(db, (tx) => tx.artwork.count()).then(() => since()),
  ]);
  const [w1, w2, w3] = await writes;
  await released;
  const longestPause = watch.stop();
  // They did wait for the other process (so the lock was really held) ...
  expect(Math.min(w1, w2, w3)).toBeGreaterThan(HOLD_MS * 0.6);
  // ... and the event loop kept turning: a 10 ms timer never stalled for anything like the hold.
  // (Before, SQLite's busy handler slept on this thread for the whole 1.5 s.)
  expect(longestPause).toBeLessThan(HOLD_MS / 3);
  expect(await db.artwork.count({ where: { qid: "Q7301" } })).toBe(1);
});

it("a write gives up after busyTimeoutMs when another process keeps the lock, and the loop stays free meanwhile", async () => {
  const db = await createDb(t.url, { busyTimeoutMs: 300 });
  cleanups.push(() => closeDb(db));
  const { released } = await holdWriteLockElsewhere(t.file, 1_500);
  const watch = loopWatch();
  const started = performance.now();
  await expect(db.artwork.updateMany({ data: { title: "never" } })).rejects.toThrow();
  const failedAfter = performance.now() - started;
  expect(failedAfter).toBeGreaterThanOrEqual(250);
  expect(failedAfter).toBeLessThan(1_200);
  expect(watch.stop()).toBeLessThan(250);
  await released;
  expect(await db.artwork.count({ where: { title: "never" } })).toBe(0);
});
