import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Config, loadConfig } from "../../src/config.js";
import { setHumanDescription } from "../../src/jobs/descriptions.js";
import { createLogger } from "../../src/log.js";
import { createGraphqlApp, type Yoga } from "../../src/graphql/yoga.js";
import { reviewDescription } from "../../src/review/review.js";
import { replaceableDescription } from "../../src/review/verdict.js";
import { createTestDb, otherWriterFirst, type TestDb } from "../support/db.js";
import { addDescription, makeArtwork } from "../support/factories.js";
import { gql } from "../support/graphql.js";

/**
 * Two people (or a person and a worker) acting on one description at once: a verdict or an edit
 * made against a state that is gone is refused when the caller says what it saw, and otherwise is
 * judged on the state it is written over, never on one read before another commit.
 */

const TOKEN = "conflict-test-token-0123456789";
const AUTH = { authorization: `Bearer ${TOKEN}` };
const log = createLogger("silent");

let t: TestDb;
let config: Config;
let noLadder: Config;
let yoga: Yoga;

beforeAll(async () => {
  t = await createTestDb();
  config = loadConfig({ API_TOKEN: TOKEN, IMAGE_DIR: join(t.dir, "images"), REVIEW_FALLBACK_LADDER: "numBeams=5;numBeams=6" });
  noLadder = loadConfig({ API_TOKEN: TOKEN, IMAGE_DIR: join(t.dir, "images"), REVIEW_FALLBACK_LADDER: "none" });
  yoga = createGraphqlApp({ db: t.db, config, log });
});
afterAll(() => t.close());

const REVIEW = `mutation($id: ID!, $verdict: ReviewVerdict!, $reviewer: String, $expectedState: ReviewState) {
  reviewDescription(id: $id, verdict: $verdict, reviewer: $reviewer, expectedState: $expectedState) {
    __typename ... on Review { verdict fallbackJob { number } } ... on Error { message } ... on ConflictError { changed }
  }
}`;
const SET = `mutation($id: ID!, $text: String!, $replaces: ID) {
  setDescription(id: $id, text: $text, replaces: $replaces) { __typename ... on Description { id } ... on Error { message } ... on ConflictError { changed } }
}`;

/** A model description written by a (finished) job, as the worker leaves it. */
async function modelText(artworkId: number, text: string) {
  const d = await addDescription(t.db, artworkId, text);
  const job = await t.db.job.create({ data: { artworkId, status: "SUCCEEDED" } });
  return t.db.description.update({ where: { id: d.id }, data: { jobId: job.id } });
}

const fallbackJobs = (artworkId: number) => t.db.job.findMany({ where: { artworkId, reason: { startsWith: "fallback" } } });

describe("reviewDescription with expectedState", () => {
  it("refuses a verdict when another came first, records nothing, and says who gave it", async () => {
    const a = await makeArtwork(t.db);
    const d = await modelText(a.id, "A dog sleeps.");
    const first = await gql(yoga, REVIEW, { id: String(d.id), verdict: "APPROVED", reviewer: "Ana", expectedState: "UNREVIEWED" }, AUTH);
    expect(first.data.reviewDescription.__typename).toBe("Review");
    // Bea saw the same unreviewed text in her queue and rejects it after Ana approved it.
    const second = await gql(yoga, REVIEW, { id: String(d.id), verdict: "REJECTED", reviewer: "Bea", expectedState: "UNREVIEWED" }, AUTH);
    expect(second.data.reviewDescription).toMatchObject({ __typename: "ConflictError", message: expect.stringMatching(/reviewed meanwhile: it is now APPROVED \(by Ana\), not UNREVIEWED/) });
    const global = second.data.reviewDescription.changed as string;
    expect(Buffer.from(global, "base64").toString()).toBe(`Description:${d.id}`);
    expect(await t.db.review.count({ where: { descriptionId: d.id } })).toBe(1);
    expect((await t.db.description.findUniqueOrThrow({ where: { id: d.id } })).reviewState).toBe("APPROVED");
    expect(await fallbackJobs(a.id)).toEqual([]);
    // Named with what she now sees, her verdict stands.
    const third = await gql(yoga, REVIEW, { id: String(d.id), verdict: "REJECTED", reviewer: "Bea", expectedState: "APPROVED" }, AUTH);
    expect(third.data.reviewDescription).toMatchObject({ __typename: "Review", verdict: "REJECTED", fallbackJob: { number: expect.any(Number) } });
  });

  it("with expectCurrent, refuses a verdict on a text another replaced meanwhile (a job that finished while the reviewer read), and records nothing", async () => {
    const a = await makeArtwork(t.db);
    const seen = await modelText(a.id, "A dog sleeps.");
    const CURRENT = `mutation($id: ID!, $verdict: ReviewVerdict!) { reviewDescription(id: $id, verdict: $verdict, expectedState: UNREVIEWED, expectCurrent: true) {
      __typename ... on Error { message } ... on ConflictError { changed } } }`;
    const newer = await modelText(a.id, "A dog sleeps by a fire.");
    const r = await gql(yoga, CURRENT, { id: String(seen.id), verdict: "REJECTED" }, AUTH);
    expect(r.data.reviewDescription).toMatchObject({
      __typename: "ConflictError",
      message: `Description ${seen.id} is no longer the work's current text: description ${newer.id} replaced it meanwhile. Nothing was recorded; read the new text and give your verdict on it.`,
    });
    expect(Buffer.from(r.data.reviewDescription.changed as string, "base64").toString()).toBe(`Artwork:${a.id}`);
    expect(await t.db.review.count({ where: { descriptionId: { in: [seen.id, newer.id] } } })).toBe(0);
    expect(await fallbackJobs(a.id)).toEqual([]);
    // On the text that is current, it stands.
    expect((await gql(yoga, CURRENT, { id: String(newer.id), verdict: "APPROVED" }, AUTH)).data.reviewDescription.__typename).toBe("Review");
  });

  it("without expectedState a verdict is recorded over whatever is there", async () => {
    const a = await makeArtwork(t.db);
    const d = await modelText(a.id, "A cat.");
    await gql(yoga, REVIEW, { id: String(d.id), verdict: "NEEDS_WORK" }, AUTH);
    const r = await gql(yoga, REVIEW, { id: String(d.id), verdict: "APPROVED" }, AUTH);
    expect(r.data.reviewDescription.__typename).toBe("Review");
  });

  it("refuses a value that is not a review state: unknown, empty, lower case, huge", async () => {
    const a = await makeArtwork(t.db);
    const d = await modelText(a.id, "A horse.");
    for (const bad of ["MAYBE", "", "approved", "X".repeat(100_000)]) {
      const r = await gql(yoga, REVIEW, { id: String(d.id), verdict: "APPROVED", expectedState: bad }, AUTH);
      expect(r.errors?.[0]?.message, bad.slice(0, 20)).toMatch(/ReviewState/);
    }
    expect(await t.db.review.count({ where: { descriptionId: d.id } })).toBe(0);
  });
});

describe("two rejections of one text", () => {
  it("start one attempt: the second reuses the first one's job while it runs", async () => {
    const a = await makeArtwork(t.db);
    const d = await modelText(a.id, "A dog.");
    const first = await reviewDescription(t.db, config, { descriptionId: d.id, verdict: "REJECTED", note: null, reviewer: "Ana" });
    expect(first.effect).toMatchObject({ kind: "fallback", step: 1 });
    await t.db.job.update({ where: { id: first.review.fallbackJobId! }, data: { status: "RUNNING", holder: "a worker", startedAt: new Date() } });
    const second = await reviewDescription(t.db, config, { descriptionId: d.id, verdict: "REJECTED", note: null, reviewer: "Bea" });
    expect(second.review.fallbackJobId).toBe(first.review.fallbackJobId);
    expect(await fallbackJobs(a.id)).toHaveLength(1);
  });
});

describe("a verdict and another writer", () => {
  it("a rejection after a person's text came in is a record only: the work is not flagged for a person", async () => {
    const a = await makeArtwork(t.db);
    const d = await modelText(a.id, "Model text.");
    const r = await reviewDescription(
      otherWriterFirst(t.db, () => setHumanDescription(t.db, a.id, "A person's text.")),
      noLadder,
      { descriptionId: d.id, verdict: "REJECTED", note: null, reviewer: "Ana" },
    );
    expect(r.effect.kind).toBe("record");
    const work = await t.db.artwork.findUniqueOrThrow({ where: { id: a.id }, select: { needsPerson: true, currentDescription: { select: { source: true } } } });
    expect(work).toEqual({ needsPerson: false, currentDescription: { source: "HUMAN" } });
  });

  it("an approval after a model's new text became current settles nothing", async () => {
    const a = await makeArtwork(t.db);
    const d1 = await modelText(a.id, "First text.");
    await t.db.artwork.update({ where: { id: a.id }, data: { needsPerson: true } });
    // What recordModelDescription does: the new text becomes current unless the current one is kept.
    const replace = async () => {
      const d2 = await t.db.description.create({ data: { artworkId: a.id, text: "Second text.", source: "MODEL" } });
      await t.db.artwork.updateMany({ where: { id: a.id, OR: [{ currentDescriptionId: null }, { currentDescription: replaceableDescription }] }, data: { currentDescriptionId: d2.id } });
      return d2;
    };
    const r = await reviewDescription(otherWriterFirst(t.db, replace), config, { descriptionId: d1.id, verdict: "APPROVED", note: null, reviewer: "Ana" });
    expect(r.effect.kind).toBe("record");
    const work = await t.db.artwork.findUniqueOrThrow({ where: { id: a.id }, select: { needsPerson: true, currentDescriptionId: true } });
    expect(work.needsPerson).toBe(true);
    expect(work.currentDescriptionId).not.toBe(d1.id);
  });

  it("a rejection racing a person's text, both started at once, never leaves the work flagged under the person's text", async () => {
    for (let i = 0; i < 8; i++) {
      const a = await makeArtwork(t.db);
      const d = await modelText(a.id, `Model text ${i}.`);
      const reject = () => reviewDescription(t.db, noLadder, { descriptionId: d.id, verdict: "REJECTED", note: null, reviewer: "Ana" });
      const write = () => setHumanDescription(t.db, a.id, `A person's text ${i}.`);
      await (i % 2 ? Promise.all([reject(), write()]) : Promise.all([write(), reject()]));
      const work = await t.db.artwork.findUniqueOrThrow({ where: { id: a.id }, select: { needsPerson: true, currentDescription: { select: { source: true } } } });
      expect(work, `round ${i}`).toEqual({ needsPerson: false, currentDescription: { source: "HUMAN" } });
    }
  });
});

describe("setDescription with replaces", () => {
  it("refuses an edit of a text that is no longer current, and saves nothing", async () => {
    const a = await makeArtwork(t.db);
    const d1 = await modelText(a.id, "The first text.");
    const ana = await gql(yoga, SET, { id: a.qid, text: "Ana's text.", replaces: String(d1.id) }, AUTH);
    expect(ana.errors).toBeUndefined();
    expect(ana.data.setDescription.__typename).toBe("Description");
    // Bea edited the same first text in another tab.
    const before = await t.db.description.count({ where: { artworkId: a.id } });
    const bea = await gql(yoga, SET, { id: a.qid, text: "Bea's text.", replaces: String(d1.id) }, AUTH);
    expect(bea.data.setDescription).toMatchObject({ __typename: "ConflictError", message: expect.stringMatching(/changed while it was being edited/) });
    expect(Buffer.from(bea.data.setDescription.changed as string, "base64").toString()).toBe(`Artwork:${a.id}`);
    expect(await t.db.description.count({ where: { artworkId: a.id } })).toBe(before);
    const work = await t.db.artwork.findUniqueOrThrow({ where: { id: a.id }, include: { currentDescription: true } });
    expect(work.currentDescription?.text).toBe("Ana's text.");
    // Without replaces (an API client that does not say), the text replaces whatever is current.
    const plain = await gql(yoga, SET, { id: a.qid, text: "Bea's text." }, AUTH);
    expect(plain.data.setDescription.__typename).toBe("Description");
  });

  it("replaces \"none\": the first text of a work not described yet, refused when another text came first", async () => {
    const a = await makeArtwork(t.db);
    const ana = await gql(yoga, SET, { id: a.qid, text: "Ana's first text.", replaces: "none" }, AUTH);
    expect(ana.data.setDescription.__typename).toBe("Description");
    // Ben opened the page when it said "Not described yet", and saves after Ana.
    const ben = await gql(yoga, SET, { id: a.qid, text: "Ben's first text.", replaces: "none" }, AUTH);
    expect(ben.data.setDescription).toMatchObject({ __typename: "ConflictError", message: expect.stringMatching(/it is now description \d+, not none/) });
    const work = await t.db.artwork.findUniqueOrThrow({ where: { id: a.id }, include: { currentDescription: true } });
    expect(work.currentDescription?.text).toBe("Ana's first text.");
    expect(await t.db.description.count({ where: { artworkId: a.id } })).toBe(1);
  });

  it("refuses a replaces that is not a description id: malformed, empty, zero, another type's id, huge", async () => {
    const a = await makeArtwork(t.db);
    const otherType = Buffer.from("Job:1").toString("base64");
    for (const bad of ["not-an-id", "", "0", otherType, "9".repeat(100_000)]) {
      const r = await gql(yoga, SET, { id: a.qid, text: "Text.", replaces: bad }, AUTH);
      expect(r.data.setDescription, bad.slice(0, 20)).toMatchObject({ __typename: "InvalidIdError", message: expect.stringContaining("not a valid id") });
    }
    // A description id that is not the current one (none is) is a conflict, not a bad id.
    const unknown = await gql(yoga, SET, { id: a.qid, text: "Text.", replaces: "999999" }, AUTH);
    expect(unknown.data.setDescription.__typename).toBe("ConflictError");
    expect(await t.db.description.count({ where: { artworkId: a.id } })).toBe(0);
  });
});
