import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { dbCopyCommand } from "../../src/copy/command.js";
import { hashTable, nextId, schemaPlan } from "../../src/copy/copy.js";
import { closeDb, createDb, type Db } from "../../src/db.js";
import { decodeVector } from "../../src/embed/store.js";
import { searchIndexSize } from "../../src/search/search.js";
import { dataVersion } from "../../src/store/data-version.js";
import { commandIo, runCli } from "../support/cli.js";
import { startPostgres, type TestPostgres } from "../support/postgres.js";
import { buildMirror, countAll, exportJsonl, type Mirror, UNICODE_TEXT } from "./mirror.js";

let server: TestPostgres;
let mirror: Mirror;
let source: Db;
let postgres: Db;
let back: Db;
let postgresUrl: string;
let firstRun: string;
let secondRun: { code: number; out: string; err: string };
const plan = schemaPlan();

beforeAll(async () => {
  [server, mirror] = await Promise.all([startPostgres(), buildMirror()]);
  postgresUrl = await server.createDatabase();
  // SQLite -> PostgreSQL through the CLI, in small batches so every table takes several.
  const cli = runCli(["db", "copy", "--to", postgresUrl, "--batch", "7"], { DATABASE_URL: mirror.url });
  const { code } = await cli.exit;
  firstRun = cli.output();
  if (code !== 0) throw new Error(`db copy exited ${code}:\n${firstRun}`);
  // PostgreSQL -> SQLite in-process, the same command behind the CLI.
  const backUrl = `file:${join(mirror.imageDir, "..", "back.db")}`;
  const io = commandIo();
  const exit = await dbCopyCommand(loadConfig({ DATABASE_URL: postgresUrl }), { to: backUrl }, io);
  secondRun = { code: exit, out: io.stdout.text, err: io.stderr.text };
  [source, postgres, back] = await Promise.all([createDb(mirror.url), createDb(postgresUrl), createDb(backUrl)]);
});

afterAll(async () => {
  for (const db of [source, postgres, back]) if (db) await closeDb(db);
  server?.stop();
  await mirror?.close();
});

describe("db copy SQLite -> PostgreSQL -> SQLite", () => {
  it("reports every copied table as verified, and exits 0 both ways", () => {
    expect(secondRun.code, secondRun.err).toBe(0);
    for (const out of [firstRun, secondRun.out]) {
      for (const t of plan.tables) expect(out).toMatch(new RegExp(`^ok +${t.model} +\\d+ rows, sha256-sum [0-9a-f]{16}$`, "m"));
      expect(out).not.toMatch(/DIFFERS/);
      expect(out).toMatch(/copied and verified/);
    }
    // Progress went to stderr, table by table.
    expect(secondRun.err).toMatch(/^Artwork: \d+\/\d+ rows$/m);
    // The fixture's fresh heartbeat looks like a worker still running on the source.
    expect(firstRun).toMatch(/^warning: a worker \(pid 1 on source-host\) beat \d+ s ago on the source: stop it/m);
  });

  it("gives the same `artdesc export` output on all three stores", async () => {
    const original = await exportJsonl(source);
    expect(original.split("\n").length).toBeGreaterThan(30);
    expect(await exportJsonl(postgres)).toBe(original);
    expect(await exportJsonl(back)).toBe(original);
  });

  it("gives the same row counts and content hashes for every copied table, and copies no lease or heartbeat", async () => {
    const [a, b, c] = await Promise.all([countAll(source), countAll(postgres), countAll(back)]);
    for (const t of plan.tables) {
      expect(b[t.model], t.model).toBe(a[t.model]);
      expect(c[t.model], t.model).toBe(a[t.model]);
      const [ha, hb, hc] = await Promise.all([hashTable(source, t, 100), hashTable(postgres, t, 100), hashTable(back, t, 100)]);
      expect(hb.hex(), t.model).toBe(ha.hex());
      expect(hc.hex(), t.model).toBe(ha.hex());
    }
    // The fixture holds rows of every table the copy knows about (else this test proves less).
    for (const t of plan.tables) expect(a[t.model], t.model).toBeGreaterThan(0);
    expect(a.Lease).toBeGreaterThan(0);
    expect(a.Heartbeat).toBeGreaterThan(0);
    for (const counts of [b, c]) expect([counts.Lease, counts.Heartbeat]).toEqual([0, 0]);
  });

  it("keeps primary keys, text, nulls and the embedding's bytes exactly", async () => {
    const original = await source.description.findMany({ orderBy: { id: "asc" } });
    expect(await back.description.findMany({ orderBy: { id: "asc" } })).toEqual(original);
    expect(await postgres.description.findMany({ orderBy: { id: "asc" } })).toEqual(original);
    expect(original.some((d) => d.text === UNICODE_TEXT)).toBe(true);
    const bare = await back.artwork.findUniqueOrThrow({ where: { qid: "Q99000001" } });
    expect(bare).toEqual(await source.artwork.findUniqueOrThrow({ where: { qid: "Q99000001" } }));
    expect([bare.title, bare.inception, bare.currentDescriptionId, bare.lastSyncedAt]).toEqual([null, null, null, null]);
    const [v0, v2] = await Promise.all([source.artworkEmbedding.findFirstOrThrow(), back.artworkEmbedding.findFirstOrThrow()]);
    expect(Buffer.from(v2.vector).equals(Buffer.from(v0.vector))).toBe(true);
    expect(Array.from(decodeVector(v2.vector))).toEqual(Array.from(decodeVector(v0.vector)));
    const run = await postgres.syncRun.findFirstOrThrow({ include: { failures: true } });
    expect(run.status).toBe("PARTIAL");
    expect(run.failures.length).toBeGreaterThan(0);
  });

  it("leaves a SQLite target's search index full (before any later write) and PostgreSQL's commit counter moved", async () => {
    expect(await searchIndexSize(back)).toBe(await searchIndexSize(source));
    expect(await dataVersion(postgres)).toBeGreaterThan(0);
  });

  it("moves every sequence past every id the source handed out: new rows get fresh ids", async () => {
    for (const t of plan.tables.filter((x) => x.sequence)) {
      const sourceNext = (await nextId(source, t)) ?? 1n;
      expect((await nextId(postgres, t)) ?? 0n, t.model).toBeGreaterThanOrEqual(sourceNext);
      expect((await nextId(back, t)) ?? 0n, t.model).toBeGreaterThanOrEqual(sourceNext);
    }
    const deletedId = Number((await nextId(source, plan.tables.find((t) => t.model === "Artwork")!))!) - 1;
    expect(await source.artwork.findUnique({ where: { id: deletedId } })).toBeNull();
    for (const db of [postgres, back]) {
      const fresh = await db.artwork.create({ data: { qid: `Q98${db === back ? 1 : 2}`, qidNumber: 981 } });
      expect(fresh.id).toBeGreaterThan(deletedId);
      const creator = await db.creator.create({ data: { qid: `Q97${db === back ? 1 : 2}` } });
      expect(creator.id).toBeGreaterThan(0);
      await db.description.create({ data: { artworkId: fresh.id, text: "new", source: "HUMAN" } });
    }
  });

});
