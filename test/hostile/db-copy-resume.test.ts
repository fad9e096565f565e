import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COPY_MARKER, hashTable, schemaPlan } from "../../src/copy/copy.js";
import { closeDb, createDb, type Db } from "../../src/db.js";
import { migrate } from "../../src/store/migrate.js";
import { insertBulkArtworks } from "../support/bulk.js";
import { runCli } from "../support/cli.js";
import { makeGoya } from "../support/factories.js";
import { startPostgres, type TestPostgres } from "../support/postgres.js";
import { countAll, exportJsonl } from "../copy/mirror.js";

/**
 * `artdesc db copy` killed (SIGKILL) in the middle of a table, then run again with the same
 * arguments: it continues where it stopped and the result is the same as an uninterrupted copy.
 * Both directions: SQLite -> PostgreSQL, then that PostgreSQL -> a new SQLite file.
 */

const WORKS = 1000;
const BATCH = "10";
let server: TestPostgres;
let dir: string;
let sourceUrl: string;
let postgresUrl: string;
const plan = schemaPlan();

beforeAll(async () => {
  server = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), "artdesc-copy-resume-"));
  const file = join(dir, "source.db");
  migrate(file);
  insertBulkArtworks(file, WORKS);
  sourceUrl = `file:${file}`;
  const db = await createDb(sourceUrl);
  const goya = await makeGoya(db);
  await db.artworkCreator.createMany({ data: Array.from({ length: WORKS }, (_, i) => ({ artworkId: i + 1, creatorId: goya.id })) });
  await closeDb(db);
  postgresUrl = await server.createDatabase();
});

afterAll(() => {
  server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Starts the copy, SIGKILLs it once it has copied part of the Artwork table, and returns what the target holds then. */
async function killMidTable(from: string, to: string): Promise<{ artworks: number; marker: number }> {
  const run = runCli(["db", "copy", "--to", to, "--batch", BATCH], { DATABASE_URL: from });
  await run.waitFor(new RegExp(`^Artwork: [1-9]\\d*/${WORKS} rows$`), 120_000);
  run.child.kill("SIGKILL");
  const { signal } = await run.exit;
  expect(signal).toBe("SIGKILL");
  const target = await createDb(to);
  try {
    return { artworks: await target.artwork.count(), marker: await target.lease.count({ where: { name: COPY_MARKER } }) };
  } finally {
    await closeDb(target);
  }
}

async function expectSameStores(a: Db, b: Db): Promise<void> {
  const [ca, cb] = await Promise.all([countAll(a), countAll(b)]);
  for (const t of plan.tables) {
    expect(cb[t.model], t.model).toBe(ca[t.model]);
    const [ha, hb] = await Promise.all([hashTable(a, t, 500), hashTable(b, t, 500)]);
    expect(hb.hex(), t.model).toBe(ha.hex());
  }
  expect(await exportJsonl(b)).toBe(await exportJsonl(a));
}

describe("db copy killed mid-table and run again", () => {
  it.each([
    ["SQLite -> PostgreSQL", () => [sourceUrl, postgresUrl] as const],
    ["PostgreSQL -> SQLite", () => [postgresUrl, `file:${join(dir, "back.db")}`] as const],
  ])("%s continues where it stopped, with no duplicate and the same result", async (_name, urls) => {
    const [from, to] = urls();
    const killed = await killMidTable(from, to);
    // Killed inside the Artwork table: some of it is there, in whole batches (each one a transaction).
    expect(killed.artworks).toBeGreaterThan(0);
    expect(killed.artworks).toBeLessThan(WORKS);
    expect(killed.artworks % Number(BATCH)).toBe(0);
    expect(killed.marker).toBe(1);
    // Half a mirror looks whole to everything else (every work without its description): nothing
    // but the copy opens it.
    const early = runCli(["export", "--format", "jsonl"], { DATABASE_URL: to });
    const refused = await early.exit;
    expect(refused.code, early.output()).toBe(2);
    expect(early.output()).toMatch(/this database is the target of an artdesc db copy that did not finish/);

    const again = runCli(["db", "copy", "--to", to, "--batch", BATCH], { DATABASE_URL: from });
    const { code } = await again.exit;
    const output = again.output();
    expect(code, output).toBe(0);
    expect(output).toMatch(/resuming an interrupted copy into this target/);
    expect(output).toMatch(new RegExp(`^Artwork: ${WORKS} rows in the source; ${WORKS - killed.artworks} copied now, ${killed.artworks} were already there$`, "m"));
    expect(output).toMatch(/copied and verified: .* \(resumed\)/);

    const [a, b] = await Promise.all([createDb(from), createDb(to)]);
    try {
      await expectSameStores(a, b);
      expect(await b.lease.count()).toBe(0);
      // A third run finds a full target without its marker: it refuses, it does not copy twice.
      const third = runCli(["db", "copy", "--to", to], { DATABASE_URL: from });
      expect((await third.exit).code).toBe(3);
      expect(await b.artwork.count()).toBe(WORKS);
    } finally {
      await closeDb(a);
      await closeDb(b);
    }
    // Four CLI processes and two full verifications on a shared machine.
  }, 300_000);
});
