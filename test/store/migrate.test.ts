import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, expect, it } from "vitest";
import { migrate } from "../../src/store/migrate.js";

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
