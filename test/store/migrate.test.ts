import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, expect, it } from "vitest";
import { ForeignKeyViolationError, MIGRATIONS_DIR, migrate, NewerDatabaseError } from "../../src/store/migrate.js";

const dir = mkdtempSync(join(tmpdir(), "artdesc-migrate-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it("applies every migration once, in WAL mode, and agrees with prisma migrate", () => {
  const file = join(dir, "a.db");
  const first = migrate(file);
  expect(first.applied.length).toBe(first.total);
  expect(migrate(file).applied).toEqual([]);
  const db = new Database(file, { readonly: true });
  expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
  const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all().map((r) => (r as { name: string }).name);
  expect(tables).toEqual(expect.arrayContaining(["Artwork", "Image", "Description", "Job", "SyncRun", "Lease", "Heartbeat"]));
  db.close();
  // Prisma's own CLI sees the database as up to date: same table, same checksums.
  const out = execFileSync("npx", ["prisma", "migrate", "status"], { env: { ...process.env, DATABASE_URL: `file:${file}` }, encoding: "utf8" });
  expect(out).toMatch(/Database schema is up to date/);
});

it("refuses a migration that was edited after it was applied", () => {
  const file = join(dir, "b.db");
  migrate(file);
  const db = new Database(file);
  db.prepare(`UPDATE "_prisma_migrations" SET checksum = 'x'`).run();
  db.close();
  expect(() => migrate(file)).toThrow(/was changed after it was applied/);
});

it("refuses a database that a newer artdesc migrated, applying nothing and naming what it does not know (the CLI exits 2)", () => {
  const file = join(dir, "newer.db");
  migrate(file);
  const db = new Database(file);
  const add = db.prepare(`INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, rolled_back_at, applied_steps_count) VALUES (?, 'x', ?, ?, ?, 1)`);
  // One rolled back does not count; one still running (no finished_at) neither.
  add.run("r", "2026-01-01", "20991231000000_rolled_back", "2026-01-01");
  add.run("s", null, "20991231000001_unfinished", null);
  db.close();
  expect(migrate(file).applied).toEqual([]);
  const db2 = new Database(file);
  db2.prepare(`INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, applied_steps_count) VALUES ('f', 'x', '2026-01-01', '20991231000002_future', 1)`).run();
  db2.close();
  expect(() => migrate(file)).toThrow(NewerDatabaseError);
  expect(() => migrate(file)).toThrow(/migrated by a newer artdesc \(migration 20991231000002_future is not in this version\).*restore the backup/);
  const cli = spawnSync(process.execPath, ["bin/artdesc.js", "migrate"], { env: { ...process.env, DATABASE_URL: `file:${file}` }, encoding: "utf8" });
  expect(cli.status).toBe(2);
  expect(cli.stderr).toMatch(/20991231000002_future is not in this version/);
});

it("artdesc migrate (npm run setup) says a DATABASE_URL that names no usable database as every command does: exit 2", () => {
  const folder = join(dir, "a-folder");
  mkdirSync(folder);
  const notADatabase = join(dir, "goya.csv");
  writeFileSync(notADatabase, "qid,title\nQ1,x\n".repeat(100));
  for (const [file, reason] of [[folder, "SQLITE_CANTOPEN"], [notADatabase, "SQLITE_NOTADB"]] as const) {
    const cli = spawnSync(process.execPath, ["bin/artdesc.js", "migrate"], { env: { ...process.env, DATABASE_URL: `file:${file}` }, encoding: "utf8" });
    expect(cli.status, file).toBe(2);
    expect(cli.stderr).toContain(`DATABASE_URL="file:${file}": cannot open ${file} as a SQLite database (${reason}`);
  }
});

/** A copy of the committed migrations before `name` (which is left out), to build an older store. */
function migrationsBefore(name: string): string {
  const before = join(dir, `before-${name}`);
  mkdirSync(before);
  for (const m of readdirSync(MIGRATIONS_DIR)) if (m < name) cpSync(join(MIGRATIONS_DIR, m), join(before, m), { recursive: true });
  return before;
}

it("widens wikidataRevision and bytes to BIGINT keeping every row, its relations, ids and search index", () => {
  const file = join(dir, "widen.db");
  migrate(file, migrationsBefore("20261205100000_bigint_revision_and_bytes"));
  const db = new Database(file);
  // SQLite's INTEGER held 64 bits before too: a revision past 2^31 was already storable here.
  db.exec(`
    INSERT INTO "Artwork" (id, qid, qidNumber, title, titles, wikidataRevision, updatedAt) VALUES
      (1, 'Q1', 1, 'Sunflowers', '{"en":"Sunflowers"}', 2147483647, 0),
      (2, 'Q2', 2, 'Irises', '{"en":"Irises"}', 2400000001, 0),
      (3, 'Q3', 3, 'Gone', '{}', NULL, 0);
    DELETE FROM "Artwork" WHERE id = 3;
    INSERT INTO "Image" (id, artworkId, fileTitle, bytes, updatedAt) VALUES (1, 1, 'File:a.jpg', 1234567, 0), (2, 2, 'File:b.tif', 3000000000, 0);
    INSERT INTO "Creator" (id, qid, label, updatedAt) VALUES (1, 'Q5582', 'Vincent van Gogh', 0);
    INSERT INTO "CreatorLabel" (creatorId, language, label, normalized) VALUES (1, 'en', 'Vincent van Gogh', 'vincent van gogh');
    INSERT INTO "ArtworkCreator" (artworkId, creatorId) VALUES (1, 1), (2, 1);
    INSERT INTO "Job" (id, artworkId, imageId, updatedAt) VALUES (1, 1, 1, 0);
    INSERT INTO "Description" (id, artworkId, imageId, jobId, text, source) VALUES (1, 1, 1, 1, 'yellow flowers in a vase', 'MODEL');
    UPDATE "Artwork" SET currentDescriptionId = 1 WHERE id = 1;
    INSERT INTO "ArtworkEmbedding" (artworkId, modelId, descriptionId, textHash, dims, vector) VALUES (1, 'm', 1, 'h', 1, x'00000000');
  `);
  db.close();

  expect(migrate(file).applied[0]).toBe("20261205100000_bigint_revision_and_bytes");
  const after = new Database(file);
  after.defaultSafeIntegers(true);
  const col = (table: string, name: string) =>
    (after.pragma(`table_info("${table}")`) as { name: string; type: string }[]).find((c) => c.name === name)?.type;
  expect([col("Artwork", "wikidataRevision"), col("Image", "bytes")]).toEqual(["BIGINT", "BIGINT"]);
  expect(after.prepare(`SELECT id, wikidataRevision FROM "Artwork" ORDER BY id`).all()).toEqual([
    { id: 1n, wikidataRevision: 2147483647n },
    { id: 2n, wikidataRevision: 2400000001n },
  ]);
  expect(after.prepare(`SELECT id, artworkId, bytes FROM "Image" ORDER BY id`).all()).toEqual([
    { id: 1n, artworkId: 1n, bytes: 1234567n },
    { id: 2n, artworkId: 2n, bytes: 3000000000n },
  ]);
  // Nothing that points at the rebuilt tables was cascaded away or cut loose.
  const count = (table: string) => Number((after.prepare(`SELECT count(*) AS n FROM "${table}"`).get() as { n: bigint }).n);
  expect(["ArtworkCreator", "Job", "Description", "ArtworkEmbedding"].map(count)).toEqual([2, 1, 1, 1]);
  expect(after.prepare(`SELECT imageId FROM "Description"`).get()).toEqual({ imageId: 1n });
  expect(after.prepare(`SELECT imageId FROM "Job"`).get()).toEqual({ imageId: 1n });
  expect(after.prepare(`SELECT currentDescriptionId FROM "Artwork" WHERE id = 1`).get()).toEqual({ currentDescriptionId: 1n });
  expect(after.pragma("foreign_key_check")).toEqual([]);
  // AUTOINCREMENT goes on after the deleted artwork 3 instead of reusing its id.
  after.prepare(`INSERT INTO "Artwork" (qid, qidNumber, updatedAt) VALUES ('Q4', 4, 0)`).run();
  expect(after.prepare(`SELECT id FROM "Artwork" WHERE qid = 'Q4'`).get()).toEqual({ id: 4n });
  // The full-text index still answers, and the triggers on the new Artwork table keep it current.
  const matches = (q: string) => after.prepare(`SELECT rowid AS id FROM artwork_fts WHERE artwork_fts MATCH ? ORDER BY rowid`).all(q);
  expect(matches("flowers")).toEqual([{ id: 1n }]);
  after.prepare(`UPDATE "Artwork" SET title = 'Starry Night', titles = '{"en":"Starry Night"}' WHERE id = 2`).run();
  expect(matches("starry")).toEqual([{ id: 2n }]);
  expect(matches("irises")).toEqual([]);
  after.close();
});

it("records the file of every description whose image is still there (Description.imageFile)", () => {
  const file = join(dir, "image-file.db");
  migrate(file, migrationsBefore("20261205180000_description_image_file"));
  const db = new Database(file);
  db.exec(`
    INSERT INTO "Artwork" (id, qid, qidNumber, title, titles, updatedAt) VALUES (1, 'Q1', 1, 'Sunflowers', '{}', 0);
    INSERT INTO "Image" (id, artworkId, fileTitle, updatedAt) VALUES (1, 1, 'File:a.jpg', 0);
    INSERT INTO "Description" (id, artworkId, imageId, text, source) VALUES (1, 1, 1, 'with its image', 'MODEL'), (2, 1, NULL, 'image gone', 'HUMAN');
  `);
  db.close();
  expect(migrate(file).applied[0]).toBe("20261205180000_description_image_file");
  const after = new Database(file);
  expect(after.prepare(`SELECT id, imageFile FROM "Description" ORDER BY id`).all()).toEqual([
    { id: 1, imageFile: "File:a.jpg" },
    { id: 2, imageFile: null },
  ]);
  after.close();
});

it("rolls back a migration that leaves rows pointing at missing rows", () => {
  const file = join(dir, "fk.db");
  const migrations = join(dir, "fk-migrations");
  cpSync(MIGRATIONS_DIR, migrations, { recursive: true });
  migrate(file, migrations);
  const db = new Database(file);
  db.exec(`INSERT INTO "Artwork" (id, qid, qidNumber, updatedAt) VALUES (1, 'Q1', 1, 0);
    INSERT INTO "Image" (artworkId, fileTitle, updatedAt) VALUES (1, 'File:a.jpg', 0);`);
  db.close();
  mkdirSync(join(migrations, "29990101000000_bad"));
  writeFileSync(join(migrations, "29990101000000_bad", "migration.sql"), `DELETE FROM "Artwork";\n`);
  const err = (() => {
    try {
      migrate(file, migrations);
    } catch (e) {
      return e;
    }
  })();
  expect(err).toBeInstanceOf(ForeignKeyViolationError);
  const after = new Database(file, { readonly: true });
  expect(after.prepare(`SELECT count(*) AS n FROM "Artwork"`).get()).toEqual({ n: 1 });
  expect(after.prepare(`SELECT count(*) AS n FROM "_prisma_migrations" WHERE migration_name = '29990101000000_bad'`).get()).toEqual({ n: 0 });
  after.close();
});
