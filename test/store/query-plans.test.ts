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

  it("compiles a read by a list of ids once per list length, and each copy of the plan reads its own ids", async () => {
    // One at a time, so that the ids ascend with the QIDs.
    const ids: number[] = [];
    for (const qid of ["Q921", "Q922", "Q923", "Q924"]) ids.push((await makeArtwork(t.db, { qid, title: `Ids ${qid}` })).id);
    const [a, b, c, d] = ids as [number, number, number, number];
    const byIds = (ids: number[]) => t.db.artwork.findMany({ where: { id: { in: ids } }, orderBy: { id: "asc" }, select: { qid: true } });
    let rows: unknown;
    expect(await counted(async () => (rows = await byIds([a, b])))).toEqual({ hits: 0, misses: 1 });
    expect(rows).toEqual([{ qid: "Q921" }, { qid: "Q922" }]);
    expect(await counted(async () => (rows = await byIds([d, c])))).toEqual({ hits: 1, misses: 0 });
    expect(rows).toEqual([{ qid: "Q923" }, { qid: "Q924" }]);
    expect(await counted(async () => (rows = await byIds([b, c, d])))).toEqual({ hits: 0, misses: 1 });
    expect(rows).toEqual([{ qid: "Q922" }, { qid: "Q923" }, { qid: "Q924" }]);
    expect(await counted(async () => (rows = await byIds([a, a, d])))).toEqual({ hits: 1, misses: 0 });
    expect(rows).toEqual([{ qid: "Q921" }, { qid: "Q924" }]);
    const notIn = (ids: number[]) => t.db.artwork.findMany({ where: { id: { notIn: ids }, title: { startsWith: "Ids" } }, orderBy: { id: "asc" }, select: { qid: true } });
    await notIn([a]);
    expect(await counted(async () => (rows = await notIn([d])))).toEqual({ hits: 1, misses: 0 });
    expect(rows).toEqual([{ qid: "Q921" }, { qid: "Q922" }, { qid: "Q923" }]);
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

  const byIds = (ids: string) => `{"modelName":"Artwork","action":"findMany","query":{"arguments":{"where":{"id":{"in":[${ids}]}}}}}`;
  /** A compiler whose plans hold each value of an id list as a query argument, as Prisma's do, and (`echo`) outside one as well. */
  function listCompiler(echo: boolean) {
    const compiled: string[] = [];
    class Compiler {
      compile(request: string): unknown {
        compiled.push(request);
        const ids = /"in":\[([^\]]*)\]/.exec(request)?.[1]?.split(",") ?? [];
        return { type: "query", args: { sql: "SELECT ?", args: ids.map(String), ...(echo ? { ids: ids.map(Number) } : {}) } };
      }
    }
    keepQueryPlans(Compiler as QueryCompilerClass);
    return { compiled, compiler: new Compiler() };
  }

  it("compiles an id list's shape once with stand-in values and gives each request a copy with its own values", () => {
    const { compiled, compiler } = listCompiler(false);
    const first = compiler.compile(byIds("5,7")) as { args: { args: string[] } };
    const second = compiler.compile(byIds("9,1")) as { args: { args: string[] } };
    expect(compiled).toHaveLength(1);
    expect(compiled[0]).not.toContain("[5,7]");
    expect(first.args.args).toEqual(["5", "7"]);
    expect(second.args.args).toEqual(["9", "1"]);
    expect(compiler.compile(byIds("5,7"))).toEqual(first);
    expect(compiled).toHaveLength(1);
  });

  it("compiles each request whose plan holds a stand-in anywhere but once in an argument list", () => {
    const { compiled, compiler } = listCompiler(true);
    expect((compiler.compile(byIds("5,7")) as { args: { args: string[] } }).args.args).toEqual(["5", "7"]);
    expect((compiler.compile(byIds("9,1")) as { args: { args: string[] } }).args.args).toEqual(["9", "1"]);
    compiler.compile(byIds("9,1"));
    // The shape once (refused as a template), then each request as it is, the second one kept.
    expect(compiled).toEqual([expect.not.stringContaining("[5,7]"), byIds("5,7"), byIds("9,1")]);
    // A refused shape is no hit: a new request is one compile, nothing kept.
    const before = queryPlanCounts();
    compiler.compile(byIds("3,4"));
    const after = queryPlanCounts();
    expect({ hits: after.hits - before.hits, misses: after.misses - before.misses }).toEqual({ hits: 0, misses: 1 });
  });

  it("refuses a compiler class without a compile method (another Prisma version)", () => {
    expect(() => keepQueryPlans(class {} as unknown as QueryCompilerClass)).toThrow(/no compile method/);
  });
});
