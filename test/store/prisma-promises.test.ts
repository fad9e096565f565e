import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { usePlainPrismaPromises } from "../../src/store/prisma-promises.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { promotedPerCall } from "../support/gc-trace.js";
import { makeArtwork } from "../support/factories.js";

describe("Prisma promises without a getter (the app's clients)", () => {
  let t: TestDb;
  beforeAll(async () => {
    t = await createTestDb();
  });
  afterAll(async () => {
    await t.close();
  });

  it("hold their spec as a plain property, so no old-generation AccessorPair points at a call's result", () => {
    const pending = t.db.artwork.findMany({ take: 1 });
    const spec = Object.getOwnPropertyDescriptor(pending, "spec");
    expect(spec?.get).toBeUndefined();
    expect(spec?.value).toMatchObject({ action: "findMany", model: "Artwork" });
    expect(Object.prototype.toString.call(pending)).toBe("[object PrismaPromise]");
  });

  it("run only when awaited, and once however often they are awaited", async () => {
    const before = await t.db.artwork.count();
    const creating = t.db.artwork.create({ data: { qid: "Q7100001", qidNumber: 7100001, title: "Lazy" } });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await t.db.artwork.count()).toBe(before);
    const [first, second] = [await creating, await creating];
    expect(second).toEqual(first);
    expect(await t.db.artwork.count()).toBe(before + 1);
  });

  it("reject through catch and finally with Prisma's own error", async () => {
    await makeArtwork(t.db, { qid: "Q7100002" });
    let finallyRan = false;
    const err = await t.db.artwork
      .create({ data: { qid: "Q7100002", qidNumber: 7100002, title: "Twice" } })
      .finally(() => (finallyRan = true))
      .catch((e: unknown) => e);
    expect(finallyRan).toBe(true);
    expect(err).toMatchObject({ code: "P2002" });
  });

  it("still make batch transactions: all or nothing", async () => {
    const good = t.db.artwork.create({ data: { qid: "Q7100003", qidNumber: 7100003, title: "Batch" } });
    const duplicate = t.db.artwork.create({ data: { qid: "Q7100003", qidNumber: 7100003, title: "Batch again" } });
    await expect(t.db.$transaction([good, duplicate])).rejects.toMatchObject({ code: "P2002" });
    expect(await t.db.artwork.count({ where: { qid: "Q7100003" } })).toBe(0);
    const [made, counted] = await t.db.$transaction([t.db.artwork.create({ data: { qid: "Q7100004", qidNumber: 7100004, title: "Batch" } }), t.db.artwork.count({ where: { qid: "Q7100004" } })]);
    expect(made.qid).toBe("Q7100004");
    expect(counted).toBe(1);
  });

  it("leave interactive transactions working (Prisma builds their client itself)", async () => {
    await expect(
      t.db.$transaction(async (tx) => {
        await tx.artwork.create({ data: { qid: "Q7100005", qidNumber: 7100005, title: "Interactive" } });
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
    expect(await t.db.artwork.count({ where: { qid: "Q7100005" } })).toBe(0);
  });

  it("refuse a client without the field they replace (a Prisma upgrade that moved it)", () => {
    expect(() => usePlainPrismaPromises({})).toThrow(/written for @prisma\/client 6\.19/);
  });
});

describe.runIf(process.env.TEST_DATABASE !== "postgresql")("what a Prisma read leaves for the collector", () => {
  it("promotes at most 8 kB per findMany of 10 artworks (25.7 kB with Prisma's getter)", () => {
    const { scavenges, bytesPerCall } = promotedPerCall("test/support/prisma-gc-child.ts", 1500);
    expect(scavenges, "too few scavenges to tell").toBeGreaterThanOrEqual(5);
    expect(bytesPerCall).toBeLessThan(8 * 1024);
  }, 60_000);
});
