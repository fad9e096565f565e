import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { closeDb, createDb, type Db, writeTransaction } from "../../src/db.js";
import { createHttpApp } from "../../src/server.js";
import { migrate } from "../../src/store/migrate.js";
import { TransactionClosedError } from "../../src/store/sqlite-adapter.js";
import { makeArtwork } from "../support/factories.js";
import { serveOnFreePort } from "../support/http.js";
import { waitUntil } from "../support/processes.js";

/** A writer that never finishes: a transaction whose callback hangs while holding the connection. */
const TOKEN = "store-helper-token-0123456789";
const LIMIT_MS = 800;
let dir: string;
let db: Db;
let base: string;
let close: () => void;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "artdesc-store-stuck-"));
  const file = join(dir, "a.db");
  migrate(file);
  db = await createDb(`file:${file}`, { busyTimeoutMs: LIMIT_MS });
  await makeArtwork(db, { qid: "Q4242" });
  const { server } = createHttpApp({ db, config: loadConfig({ IMAGE_DIR: join(dir, "images"), API_TOKEN: TOKEN }) });
  ({ base, close } = await serveOnFreePort(server));
});
afterAll(async () => {
  close();
  await closeDb(db);
  rmSync(dir, { recursive: true, force: true });
});

async function timed(path: string) {
  const started = performance.now();
  const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(5_000) });
  return { ms: performance.now() - started, status: res.status, body: (await res.json()) as Record<string, string> };
}

async function setDescription(text: string) {
  const res = await fetch(`${base}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ query: `mutation($t: String!) { setDescription(id: "Q4242", text: $t) { __typename } }`, variables: { t: text } }),
    signal: AbortSignal.timeout(10_000),
  });
  return (await res.json()) as { data?: { setDescription: { __typename: string } }; errors?: unknown[] };
}

it("/health and /ready tell a stuck writer from a healthy one, fast; the stuck transaction is ended and writes resume", async () => {
  expect((await timed("/health")).body).toEqual({ status: "ok", database: "ok" });
  let release!: () => void;
  const hang = new Promise<void>((r) => (release = r));
  const stuck = db.$transaction(
    async (tx) => {
      await tx.artwork.count();
      await hang;
      await tx.artwork.updateMany({ data: { title: "written by a stuck transaction" } });
    },
    { timeout: 60_000, maxWait: 60_000 },
  );
  try {
    // Held, but not yet past the limit: healthy, and readiness says the writer is busy.
    const early = await timed("/ready");
    expect(early.status).toBe(200);
    expect(early.body.writer).toBe("busy");

    const sick = await waitUntil("/health to report the stuck writer", async () => {
      const r = await timed("/health");
      return r.status === 503 ? r : null;
    }, 5_000, 50);
    expect(sick.body.status).toBe("error");
    expect(sick.body.writer).toMatch(/^stuck/);
    expect(sick.ms).toBeLessThan(1_000);
    const notReady = await timed("/ready");
    expect(notReady.status).toBe(503);
    expect(notReady.ms).toBeLessThan(1_000);

    // A write that waits for it gives up after the limit, with an error rather than a hang, and
    // ends the stuck transaction; the next write goes through.
    const waited = await setDescription("Waited too long.");
    expect(waited.errors?.length).toBeGreaterThan(0);
    const ok = await setDescription("Next one.");
    expect(ok.data?.setDescription.__typename).toBe("Description");
    expect((await timed("/health")).status).toBe(200);
    expect((await timed("/ready")).status).toBe(200);

  } finally {
    release();
  }
  // The stuck transaction learns it was ended; nothing it does afterwards is written.
  await expect(stuck).rejects.toBeInstanceOf(TransactionClosedError);
  expect(await db.artwork.count({ where: { title: "written by a stuck transaction" } })).toBe(0);
}, 30_000);

it("statements outside a transaction never run inside someone else's open transaction", async () => {
  let release!: () => void;
  const hang = new Promise<void>((r) => (release = r));
  const tx = writeTransaction(db, async (t) => {
    await t.artwork.updateMany({ where: { qid: "Q4242" }, data: { title: "inside" } });
    await hang;
    throw new Error("roll back");
  });
  await new Promise((r) => setTimeout(r, 50));
  // Before: this plain write ran on the shared connection inside the open transaction and was
  // rolled back with it, after its caller had been told it succeeded.
  const plain = db.artwork.create({ data: { qid: "Q4244", qidNumber: 4244, title: "plain", titles: "{}", lastSyncedAt: new Date() } });
  release();
  await expect(tx).rejects.toThrow("roll back");
  await plain;
  expect(await db.artwork.count({ where: { qid: "Q4244" } })).toBe(1);
  expect(await db.artwork.count({ where: { title: "inside" } })).toBe(0);
});

it("/health stays under a second while clients flood the API", async () => {
  const flood = [
    ...Array.from({ length: 40 }, () => fetch(`${base}/ready`).then((r) => r.text())),
    ...Array.from({ length: 20 }, (_, i) => setDescription(`Flood ${i}.`)),
    ...Array.from({ length: 20 }, () =>
      fetch(`${base}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: "{ artworks(limit: 50) { qid title } }" }) }).then((r) => r.text()),
    ),
  ];
  for (let i = 0; i < 5; i++) {
    const r = await timed("/health");
    expect(r.status).toBe(200);
    expect(r.ms).toBeLessThan(1_000);
  }
  await Promise.all(flood);
});

it("a transaction left open on the connection (a stray BEGIN) is rolled back before the next one starts", async () => {
  await db.$executeRawUnsafe("BEGIN");
  await db.$executeRawUnsafe(`UPDATE "Artwork" SET "title" = 'stray' WHERE "qid" = 'Q4242'`);
  // Before: "cannot start a transaction within a transaction", for every later transaction.
  await writeTransaction(db, (tx) => tx.artwork.updateMany({ where: { qid: "Q4242" }, data: { title: "clean" } }));
  expect((await db.artwork.findUniqueOrThrow({ where: { qid: "Q4242" } })).title).toBe("clean");
});
