import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import Database from "better-sqlite3";
import pg from "pg";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { COPY_EXIT, dbCopyCommand } from "../../src/copy/command.js";
import { COPY_MARKER, copyDatabase } from "../../src/copy/copy.js";
import { closeDb, createDb, openDatabase } from "../../src/db.js";
import { migrate } from "../../src/store/migrate.js";
import { commandIo, ROOT, runCli } from "../support/cli.js";
import { addDescription, makeArtwork, makeGoya } from "../support/factories.js";
import { startPostgres, type TestPostgres } from "../support/postgres.js";

/** `artdesc db copy` against what an operator can get wrong, or an attacker can hand it. */

let server: TestPostgres;
let dir: string;
let sourceUrl: string;

beforeAll(async () => {
  server = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), "artdesc-copy-hostile-"));
  const file = join(dir, "source.db");
  migrate(file);
  sourceUrl = `file:${file}`;
  const db = await createDb(sourceUrl);
  const goya = await makeGoya(db);
  const a = await makeArtwork(db, { qid: "Q1", creators: [{ id: goya.id }] });
  await addDescription(db, a.id, "A small painting.");
  await closeDb(db);
});

afterAll(() => {
  server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `artdesc db copy` as a child process; resolves with its exit code and output. */
async function cli(args: string[], databaseUrl = sourceUrl) {
  const run = runCli(["db", "copy", ...args], { DATABASE_URL: databaseUrl });
  const { code } = await run.exit;
  return { code, output: run.output() };
}

async function inProcess(to: string, databaseUrl = sourceUrl, batch?: number) {
  const io = commandIo();
  const code = await dbCopyCommand(loadConfig({ DATABASE_URL: databaseUrl }), { to, batch }, io);
  return { code, out: io.stdout.text, err: io.stderr.text };
}

describe("a malformed --to", () => {
  it("is refused by the CLI with exit 2 and a clear message, creating nothing", async () => {
    const before = readdirSync(ROOT);
    const results = await Promise.all([
      cli(["--to", "mysql://root:secret@localhost/artdesc"]),
      cli(["--to", "https://example.org/artdesc"]),
      cli(["--to", "file:"]),
      cli(["--to", "postgresql://art:secret@db.example"]),
    ]);
    const help = await cli(["--help"]);
    expect(help.code).toBe(0);
    expect(help.output).toMatch(/IMAGE_DIR must point at the same folder/);
    expect(help.output).toMatch(/3 the target is not empty, or is the source/);
    for (const r of results) {
      expect(r.code, r.output).toBe(COPY_EXIT.usage);
      expect(r.output).toMatch(/--to: /);
      expect(r.output).not.toContain("secret");
      expect(r.output).not.toMatch(/at .*\.ts:\d+/); // no stack trace
    }
    expect(results[0]!.output).toMatch(/"mysql" is not a database artdesc supports/);
    // databaseKind would have taken "mysql://…" for a SQLite file name: nothing was made.
    expect(readdirSync(ROOT)).toEqual(before);
  }, 180_000);

  it.each([
    ["control characters", "file:/tmp/a\nb.db"],
    ["a bare path", "PLAIN"],
    ["an empty string", ""],
    ["no host", "postgresql:///"],
  ])("is refused in-process too: %s", async (_name, to) => {
    const r = await inProcess(to === "PLAIN" ? join(dir, "plain.db") : to);
    expect(r.code).toBe(COPY_EXIT.usage);
    expect(r.err).toMatch(/^--to: /);
    expect(existsSync(join(dir, "plain.db"))).toBe(false);
  });

  it("or a bad --batch, with exit 2", async () => {
    for (const batch of [0, -1, 1.5, 10_001, Number.NaN]) {
      const r = await inProcess(`file:${join(dir, "never.db")}`, sourceUrl, batch);
      expect(r.code, String(batch)).toBe(COPY_EXIT.usage);
      expect(r.err).toMatch(/--batch must be a whole number from 1 to 10000/);
    }
    const r = await cli(["--to", `file:${join(dir, "never.db")}`, "--batch", "lots"]);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/--batch.*positive integer/);
    expect(existsSync(join(dir, "never.db"))).toBe(false);
  }, 120_000);
});

describe("a target that cannot be opened", () => {
  it("is named with its password hidden, exit 2: no server, no socket, no such database, a folder, not SQLite, an unwritable place", async () => {
    const socketDir = new URL(server.url).searchParams.get("host")!;
    const notSqlite = join(dir, "notes.txt");
    writeFileSync(notSqlite, "these are not the tables you are looking for\n".repeat(100));
    mkdirSync(join(dir, "a-folder.db"));
    for (const to of [
      "postgresql://art:secret@127.0.0.1:1/artdesc",
      `postgresql://art:secret@localhost/artdesc?host=${encodeURIComponent(join(dir, "no-socket-here"))}`,
      server.url.replace("/postgres?", "/no_such_database?").replace("postgresql://", "postgresql://nobody:secret@"),
      `file:${join(dir, "a-folder.db")}`,
      `file:${notSqlite}`,
      "file:/proc/artdesc/copy.db",
    ]) {
      const r = await inProcess(to);
      expect(r.code, `${to}\n${r.err}`).toBe(COPY_EXIT.usage);
      expect(r.err).toMatch(/^--to ".*": cannot open the target database: /);
      expect(r.err).not.toContain("secret");
      expect(r.err).not.toContain("DATABASE_URL");
    }
    expect(socketDir).toBeTruthy();
  });

  it("nor can a source that cannot be opened (exit 2, naming DATABASE_URL)", async () => {
    const r = await inProcess(`file:${join(dir, "fine.db")}`, "file:/proc/artdesc/source.db");
    expect(r.code).toBe(COPY_EXIT.usage);
    expect(r.err).toMatch(/DATABASE_URL="file:\/proc\/artdesc\/source.db": cannot open/);
    expect(existsSync(join(dir, "fine.db"))).toBe(false);
  });
});

describe("a target that is not empty", () => {
  it("is refused with exit 3 and left as it was (PostgreSQL and SQLite)", async () => {
    const pgUrl = await server.createDatabase();
    const sqliteUrl = `file:${join(dir, "used.db")}`;
    for (const url of [pgUrl, sqliteUrl]) {
      const { db } = await openDatabase(url);
      await makeArtwork(db, { qid: "Q777", image: false });
      await closeDb(db);
      const r = await cli(["--to", url]);
      expect(r.code, r.output).toBe(COPY_EXIT.refused);
      expect(r.output).toMatch(/refused: the target database is not empty: Artwork has 1 rows/);
      const db2 = await createDb(url);
      expect(await db2.artwork.count()).toBe(1);
      expect(await db2.lease.count({ where: { name: COPY_MARKER } })).toBe(0);
      await closeDb(db2);
    }
  }, 180_000);

  it("is refused with exit 3, before anything is created in it, when it holds another application's tables (PostgreSQL and SQLite)", async () => {
    const pgUrl = await server.createDatabase();
    const client = new pg.Client({ connectionString: pgUrl });
    await client.connect();
    await client.query("CREATE TABLE accounts (id integer PRIMARY KEY, name text); INSERT INTO accounts VALUES (1, 'Ana')");
    await client.end();
    const file = join(dir, "other-app.db");
    const other = new Database(file);
    other.exec("CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO accounts VALUES (1, 'Ana');");
    other.close();
    for (const url of [pgUrl, `file:${file}`]) {
      const r = await inProcess(url);
      expect(r.code, url).toBe(COPY_EXIT.refused);
      expect(r.err).toMatch(/the target database is not empty: it holds tables that are not artdesc's \(accounts\)/);
    }
    const after = new Database(file, { readonly: true });
    expect(after.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).all()).toEqual([{ name: "accounts" }]);
    after.close();
  }, 120_000);

  it("is refused when it is the source itself, however the URL is spelled", async () => {
    const file = sourceUrl.slice("file:".length);
    for (const to of [sourceUrl, `file:${relative(ROOT, file)}`, `file:${file}?connection_limit=1`]) {
      const r = await inProcess(to);
      expect(r.code, to).toBe(COPY_EXIT.refused);
      expect(r.err).toMatch(/refused: the target is the source database itself/);
    }
  });

  it("is refused when it holds another source's interrupted copy", async () => {
    const url = await server.createDatabase();
    const { db } = await openDatabase(url);
    await db.lease.create({ data: { name: COPY_MARKER, holder: "copy-from:someone-else", expiresAt: new Date(Date.now() + 3_600_000) } });
    await db.creator.create({ data: { qid: "Q5" } });
    await closeDb(db);
    const r = await inProcess(url);
    expect(r.code).toBe(COPY_EXIT.refused);
    expect(r.err).toMatch(/an interrupted copy from another database is in it/);
  });
});

describe("a value PostgreSQL cannot hold", () => {
  it("stops the copy with exit 1, naming the row and column, before that batch is written", async () => {
    const file = join(dir, "nul.db");
    migrate(file);
    const db = await createDb(`file:${file}`);
    const a = await makeArtwork(db, { qid: "Q2", image: false });
    const d = await addDescription(db, a.id, "before\u0000after");
    await closeDb(db);
    const url = await server.createDatabase();
    const r = await inProcess(url, `file:${file}`);
    expect(r.code).toBe(COPY_EXIT.failed);
    expect(r.err).toContain(`copy stopped: Description ${d.id}: text contains a NUL character`);
    const target = await createDb(url);
    expect(await target.description.count()).toBe(0);
    await closeDb(target);
  });
});

describe("a source written to between an interrupted copy and its resume", () => {
  it("fails the verification with exit 1, naming the table, and keeps the target marked", async () => {
    const file = join(dir, "changing.db");
    migrate(file);
    const db = await createDb(`file:${file}`);
    const works = [];
    for (let i = 0; i < 4; i++) works.push(await makeArtwork(db, { qid: `Q${300 + i}`, image: false }));
    const url = await server.createDatabase();
    const { db: target } = await openDatabase(url);
    // Interrupted after the first Artwork batch (as a kill or a lost connection would).
    const stop = new Error("interrupted");
    await expect(
      copyDatabase(db, target, {
        batch: 1,
        progress: (line) => {
          if (/^Artwork: 1\/4 rows$/.test(line)) throw stop;
        },
      }),
    ).rejects.toBe(stop);
    await closeDb(target);
    // The copied work changes in the source before the copy is run again.
    await db.artwork.update({ where: { id: works[0]!.id }, data: { title: "Changed after it was copied" } });
    await closeDb(db);
    const r = await inProcess(url, `file:${file}`);
    expect(r.code).toBe(COPY_EXIT.failed);
    expect(r.out).toMatch(/^DIFFERS +Artwork +4 rows, hash [0-9a-f]{16} != [0-9a-f]{16}$/m);
    expect(r.out).toMatch(/^ok +Creator /m);
    expect(r.err).toMatch(/verification failed: .*To start over, drop and recreate the target database/);
    const check = await createDb(url);
    expect(await check.lease.count({ where: { name: COPY_MARKER } })).toBe(1);
    await closeDb(check);
  });
});
