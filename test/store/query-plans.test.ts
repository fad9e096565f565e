import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keepQueryPlans, queryPlanCounts, type QueryCompilerClass } from "../../src/store/query-plans.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { makeArtwork, makeCreator } from "../support/factories.js";

/** How many read plans were kept and compiled while `run` ran. */
async function counted(run: () => Promise<unknown>): Promise<{ hits: number; misses: number }> {
  const before = queryPlanCounts();
  await run();
  const after = queryPlanCounts();
  return { hits: after.hits - before.hits, misses: after.misses - before.misses };
}

describe("query plans kept for Prisma's client engine (the real compiler of this run's database)", () => {
  let t: TestDb;
  let other: TestDb;
  beforeAll(async () => {
    t = await createTestDb();
    other = await createTestDb();
  });
  afterAll(async () => {
    await t.close();
    await other.close();
  });

  const list = (db: TestDb["db"]) => db.artwork.findMany({ where: { title: { startsWith: "Plan" } }, orderBy: { qidNumber: "asc" }, select: { qid: true, title: true } });

  it("compiles a read once, and the kept plan reads the rows committed since", async () => {
    await makeArtwork(t.db, { qid: "Q901", title: "Plan one" });
    let rows: unknown;
    expect(await counted(async () => (rows = await list(t.db)))).toEqual({ hits: 0, misses: 1 });
    expect(rows).toEqual([{ qid: "Q901", title: "Plan one" }]);

    await makeArtwork(t.db, { qid: "Q902", title: "Plan two" });
    expect(await counted(async () => (rows = await list(t.db)))).toEqual({ hits: 1, misses: 0 });
    expect(rows).toEqual([
      { qid: "Q901", title: "Plan one" },
      { qid: "Q902", title: "Plan two" },
    ]);
  });

  it("compiles another argument value once more, and keeps nothing for writes", async () => {
    const byQid = (qid: string) => t.db.artwork.findUnique({ where: { qid }, select: { title: true } });
    expect(await counted(() => byQid("Q901"))).toEqual({ hits: 0, misses: 1 });
    expect(await counted(() => byQid("Q902"))).toEqual({ hits: 0, misses: 1 });
    expect(await counted(async () => expect(await byQid("Q902")).toEqual({ title: "Plan two" }))).toEqual({ hits: 1, misses: 0 });
    expect(await counted(() => makeCreator(t.db, { qid: "Q903" }))).toEqual({ hits: 0, misses: 0 });
    expect(await counted(() => t.db.artwork.updateMany({ where: { qid: "Q901" }, data: { title: "Plan one, renamed" } }))).toEqual({ hits: 0, misses: 0 });
    expect(await byQid("Q901")).toEqual({ title: "Plan one, renamed" });
  });

  it("keeps plans per client: another database's client compiles the same request itself", async () => {
    await makeArtwork(other.db, { qid: "Q911", title: "Plan elsewhere" });
    let rows: unknown;
    expect(await counted(async () => (rows = await list(other.db)))).toEqual({ hits: 0, misses: 1 });
    expect(rows).toEqual([{ qid: "Q911", title: "Plan elsewhere" }]);
  });
});

describe("keepQueryPlans (on a stand-in compiler, to see each compile)", () => {
  const read = (n: number) => `{"modelName":"Artwork","action":"findMany","query":{"arguments":{"take":${n}}}}`;
  const write = '{"modelName":"Artwork","action":"createOne","query":{"arguments":{"data":{"qid":"Q1"}}}}';
  const raw = '{"action":"queryRaw","query":{"arguments":{"query":"SELECT 1","parameters":"[]"}}}';

  function standIn() {
    const compiled: string[] = [];
    class Compiler {
      compile(request: string): unknown {
        compiled.push(request);
        return { type: "query", args: { sql: request } };
      }
    }
    keepQueryPlans(Compiler as QueryCompilerClass, { maxEntries: 2, maxBytes: 1_000_000 });
    // Patching twice would keep each plan twice over; the second call is a no-op.
    keepQueryPlans(Compiler as QueryCompilerClass, { maxEntries: 2, maxBytes: 1_000_000 });
    return { compiled, compiler: new Compiler() };
  }

  it("returns the kept, frozen plan for a read, and drops the least recently used beyond its bounds", () => {
    const { compiled, compiler } = standIn();
    const first = compiler.compile(read(1)) as { args: { sql: string } };
    expect(Object.isFrozen(first) && Object.isFrozen(first.args)).toBe(true);
    expect(compiler.compile(read(1))).toBe(first);
    compiler.compile(read(2));
    compiler.compile(read(1)); // most recently used: read(2) goes first
    compiler.compile(read(3));
    compiler.compile(read(1));
    compiler.compile(read(2));
    expect(compiled).toEqual([read(1), read(2), read(3), read(2)]);
  });

  it("compiles writes and raw SQL every time, and keeps a separate set per compiler", () => {
    const { compiled, compiler } = standIn();
    compiler.compile(write);
    compiler.compile(write);
    compiler.compile(raw);
    compiler.compile(raw);
    expect(compiled).toEqual([write, write, raw, raw]);
    const second = new (Object.getPrototypeOf(compiler).constructor as new () => typeof compiler)();
    compiler.compile(read(1));
    second.compile(read(1));
    second.compile(read(1));
    expect(compiled.slice(4)).toEqual([read(1), read(1)]);
  });

  it("refuses a compiler class without a compile method (another Prisma version)", () => {
    expect(() => keepQueryPlans(class {} as unknown as QueryCompilerClass)).toThrow(/no compile method/);
  });
});
