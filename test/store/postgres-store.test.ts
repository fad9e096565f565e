import { afterAll, beforeAll, expect, it } from "vitest";
import { ConfigError } from "../../src/config.js";
import {
  closeDb,
  createDb,
  databaseKind,
  type Db,
  isDatabaseUnavailable,
  kindOf,
  openDatabase,
  Prisma,
  probeRead,
  readConnection,
  SqliteOnlyError,
  writeTransaction,
} from "../../src/db.js";
import { addDescription, makeArtwork, makeCreator, makeGoya } from "../support/factories.js";
import { startPostgres, type TestPostgres } from "../support/postgres.js";

let server: TestPostgres;
const open: Db[] = [];
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  for (const db of open) await closeDb(db);
  server?.stop();
});

async function freshDb(): Promise<Db> {
  const { db, applied } = await openDatabase(await server.createDatabase());
  expect(applied.length).toBeGreaterThan(0);
  open.push(db);
  return db;
}

it("chooses the database from the URL: postgresql:// and postgres:// are PostgreSQL, file: is SQLite", () => {
  expect(databaseKind("postgresql://u@db.example/artdesc")).toBe("postgresql");
  expect(databaseKind("postgres://u:p@127.0.0.1:5432/artdesc?sslmode=require")).toBe("postgresql");
  expect(databaseKind("POSTGRESQL://u@h/d")).toBe("postgresql");
  expect(databaseKind("file:./data/artdesc.db")).toBe("sqlite");
  expect(databaseKind("file:/tmp/postgresql://x.db")).toBe("sqlite");
});

it("opens a new database, migrates it and writes and reads artworks through the generated client", async () => {
  const db = await freshDb();
  expect(kindOf(db)).toBe("postgresql");
  const goya = await makeGoya(db);
  const work = await makeArtwork(db, { title: "The Third of May 1808", creators: [{ id: goya.id }], links: [{ property: "P136", qid: "Q134307", label: "portrait" }] });
  await addDescription(db, work.id, "Soldiers aim their rifles at a man in a white shirt.");
  const read = await db.artwork.findUniqueOrThrow({
    where: { qid: work.qid },
    include: { creators: { include: { creator: { include: { labels: true } } } }, images: true, currentDescription: true, links: true },
  });
  expect(read.title).toBe("The Third of May 1808");
  expect(read.creators[0]!.creator.qid).toBe("Q5432");
  expect(read.creators[0]!.creator.labels.map((l) => l.language).sort()).toEqual(["en", "es", "fr"]);
  expect(read.images).toHaveLength(1);
  expect(read.links.map((l) => l.itemQid)).toEqual(["Q134307"]);
  expect(read.currentDescription?.text).toMatch(/white shirt/);
  expect(read.firstSeenAt).toBeInstanceOf(Date);
  // Filters, ordering, counting, grouping and upsert run as on SQLite.
  await makeArtwork(db, { title: "Saturn", creators: [{ id: goya.id }], inception: "1820-01-01T00:00:00Z" });
  const byGoya = await db.artwork.findMany({ where: { creators: { some: { creatorId: goya.id } } }, orderBy: { title: "asc" }, select: { title: true } });
  expect(byGoya.map((a) => a.title)).toEqual(["Saturn", "The Third of May 1808"]);
  expect(await db.artwork.count({ where: { inceptionYear: { gte: 1820 } } })).toBe(1);
  const states = await db.artwork.groupBy({ by: ["state"], _count: { _all: true } });
  expect(states).toEqual([{ state: "ACTIVE", _count: { _all: 2 } }]);
  await db.linkedItem.upsert({ where: { qid: "Q134307" }, create: { qid: "Q134307", label: "x" }, update: { label: "portrait painting" } });
  expect((await db.linkedItem.findUniqueOrThrow({ where: { qid: "Q134307" } })).label).toBe("portrait painting");
});

it("reports a duplicate key as Prisma's known request error P2002, the class the code checks with instanceof", async () => {
  const db = await freshDb();
  await makeCreator(db, { qid: "Q1" });
  const err = await makeCreator(db, { qid: "Q1" }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(Prisma.PrismaClientKnownRequestError);
  expect((err as Prisma.PrismaClientKnownRequestError).code).toBe("P2002");
});

it("rolls a failed transaction back whole", async () => {
  const db = await freshDb();
  const before = await db.creator.count();
  const err = await writeTransaction(db, async (tx) => {
    await tx.creator.create({ data: { qid: "Q77" } });
    throw new Error("abort");
  }).catch((e: unknown) => e);
  expect((err as Error).message).toBe("abort");
  expect(await db.creator.count()).toBe(before);
  await writeTransaction(db, (tx) => tx.creator.create({ data: { qid: "Q77" } }));
  expect(await db.creator.count()).toBe(before + 1);
});

it("makes write transactions take turns, as SQLite's IMMEDIATE transactions do", async () => {
  const db = await freshDb();
  // Each reads how many creators there are and adds the next one. Running side by side without
  // turns, several would read the same count and all but one would fail on the unique qid.
  await Promise.all(
    Array.from({ length: 5 }, () =>
      writeTransaction(db, async (tx) => {
        const n = await tx.creator.count();
        await new Promise((resolve) => setTimeout(resolve, 30));
        return tx.creator.create({ data: { qid: `Q${n + 1}` } });
      }),
    ),
  );
  expect((await db.creator.findMany({ orderBy: { id: "asc" } })).map((c) => c.qid)).toEqual(["Q1", "Q2", "Q3", "Q4", "Q5"]);
});

it("lets a writer wait for its turn past Prisma's default 5 s transaction time (transactionWaits)", async () => {
  const db = await freshDb();
  const slow = writeTransaction(db, async (tx) => {
    await tx.creator.create({ data: { qid: "Q1" } });
    await new Promise((resolve) => setTimeout(resolve, 6_000));
  });
  await new Promise((resolve) => setTimeout(resolve, 100));
  // Its advisory lock waits inside its transaction until the slow one commits.
  await writeTransaction(db, (tx) => tx.creator.create({ data: { qid: "Q2" } }));
  await slow;
  expect(await db.creator.count({ where: { qid: { in: ["Q1", "Q2"] } } })).toBe(2);
}, 30_000);

it("refuses SQLite-only operations on a PostgreSQL client with a typed error", async () => {
  const db = await freshDb();
  expect(() => readConnection(db)).toThrow(SqliteOnlyError);
  // The probes have a PostgreSQL version (test/store/postgres-data-version.test.ts).
  await expect(probeRead(db)).resolves.toBeUndefined();
});

it("turns a URL that leads to no usable database into a ConfigError that names DATABASE_URL and hides the password", async () => {
  const missing = server.url.replace("/postgres?", "/no_such_database?");
  for (const url of [missing, "postgresql://artdesc:s3cret@127.0.0.1:1/artdesc"]) {
    const err = await openDatabase(url).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(String((err as Error).message)).toMatch(/DATABASE_URL=/);
    expect(String((err as Error).message)).not.toMatch(/s3cret/);
  }
});

it("counts a server that went away as unavailable (try again later), and a bad write as not", async () => {
  const db = await freshDb();
  const duplicate = await db.creator.createMany({ data: [{ qid: "Q9" }, { qid: "Q9" }] }).catch((e: unknown) => e);
  expect(isDatabaseUnavailable(duplicate)).toBe(false);
  const other = await startPostgres();
  let gone: Db | null = null;
  try {
    gone = (await openDatabase(await other.createDatabase())).db;
    expect(await gone.creator.count()).toBe(0);
  } finally {
    other.stop();
  }
  // The pooled connection breaks on first use; the next one finds no server.
  for (let i = 0; i < 2; i++) {
    const err = await gone.creator.count().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Prisma.PrismaClientKnownRequestError);
    expect(isDatabaseUnavailable(err)).toBe(true);
  }
  await closeDb(gone);
});

it("creates a working client for a database migrated elsewhere (createDb alone)", async () => {
  const url = await server.createDatabase();
  await closeDb((await openDatabase(url)).db);
  const db = await createDb(url);
  open.push(db);
  expect(await db.job.count()).toBe(0);
});
