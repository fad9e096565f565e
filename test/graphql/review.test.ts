import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type Config, loadConfig } from "../../src/config.js";
import { setHumanDescription } from "../../src/jobs/descriptions.js";
import { cancelJob, describeAfterSync, failJob, queueAfterSync, requeueStale } from "../../src/jobs/queue.js";
import { startWorker } from "../../src/jobs/worker.js";
import { createLogger } from "../../src/log.js";
import { createGraphqlApp, type Yoga } from "../../src/graphql/yoga.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { addDescription, makeArtwork, makeCreator, writePlaceholderImages } from "../support/factories.js";
import { type GqlResult, gql } from "../support/graphql.js";
import { scriptedDescriber } from "../support/scripted-describer.js";

const TOKEN = "review-test-token-0123456789";
const AUTH = { authorization: `Bearer ${TOKEN}` };
const LADDER = "numBeams=5;numBeams=6,repetitionPenalty=1.3;numBeams=7,noRepeatNgramSize=3";
const log = createLogger("silent");

let t: TestDb;
let config: Config;
let yoga: Yoga;

beforeAll(async () => {
  t = await createTestDb();
  config = loadConfig({
    API_TOKEN: TOKEN,
    API_TOKEN_NAME: "Curator Ana",
    IMAGE_DIR: join(t.dir, "images"),
    REVIEW_FALLBACK_LADDER: LADDER,
    HEARTBEAT_INTERVAL_S: "0.2",
  });
  yoga = createGraphqlApp({ db: t.db, config, log });
});
afterAll(() => t.close());

const REVIEW = `mutation($id: ID!, $verdict: ReviewVerdict!, $note: String, $reviewer: String) {
  reviewDescription(id: $id, verdict: $verdict, note: $note, reviewer: $reviewer) {
    __typename
    ... on Review { id verdict note reviewer createdAt fallbackStep exhausted
      fallbackJob { number status reason requestedBy requestedParams priority }
      description { id reviewState reviewedBy reviewedAt } }
    ... on Error { message }
    ... on InvalidInputError { field }
  }
}`;

const review = (id: string | number, verdict: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = AUTH) =>
  gql(yoga, REVIEW, { id: String(id), verdict, ...extra }, headers);

const ARTWORK_REVIEW = `query($id: ID!) { artwork(id: $id) { ... on Artwork {
  altText currentDescription { id text source reviewState }
  review { state reviewedBy needsPerson fallbackStep fallbackSteps fallbackJob { number status reason } }
} } }`;
const artworkReview = async (qid: string) => (await gql(yoga, ARTWORK_REVIEW, { id: qid })).data.artwork;

/** Runs a real worker (with the scripted engine) until no job is queued or running. */
async function drainQueue() {
  await writePlaceholderImages(t.db, config.IMAGE_DIR);
  const w = await startWorker({ db: t.db, config, log, openDescriber: async () => scriptedDescriber({ steps: 2, stepMs: 1 }), pollMs: 10, progressEveryMs: 10 });
  try {
    const until = Date.now() + 20_000;
    while ((await t.db.job.count({ where: { status: { in: ["QUEUED", "RUNNING"] } } })) > 0) {
      if (Date.now() > until) throw new Error("queue did not drain");
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await w.stop();
  }
}

describe("reviewDescription", () => {
  it("needs the bearer token: no token, a wrong one, or none configured changes nothing", async () => {
    const a = await makeArtwork(t.db);
    const d = await addDescription(t.db, a.id, "A dog sleeps.");
    const attempts: Record<string, string>[] = [{}, { authorization: "Bearer wrong-token-wrong-token" }, { authorization: TOKEN }];
    for (const headers of attempts) {
      const r = await review(d.id, "APPROVED", {}, headers);
      expect(r.data.reviewDescription.__typename).toBe("UnauthorizedError");
    }
    const closed = createGraphqlApp({ db: t.db, config: loadConfig({ IMAGE_DIR: config.IMAGE_DIR }), log });
    const r = await gql(closed, REVIEW, { id: String(d.id), verdict: "APPROVED" }, AUTH);
    expect(r.data.reviewDescription.__typename).toBe("UnauthorizedError");
    expect(await t.db.review.count({ where: { descriptionId: d.id } })).toBe(0);
    expect((await t.db.description.findUniqueOrThrow({ where: { id: d.id } })).reviewState).toBeNull();
  });

  it("records the reviewer (API_TOKEN_NAME, or the reviewer argument) and the time; accepts the global id and the number", async () => {
    const a = await makeArtwork(t.db);
    const d = await addDescription(t.db, a.id, "A man rides a horse.");
    const before = Date.now();
    const first = (await review(d.id, "NEEDS_WORK", { note: "  Horse colour?\r\nCheck.  " })).data.reviewDescription;
    expect(first).toMatchObject({ __typename: "Review", verdict: "NEEDS_WORK", note: "Horse colour?\nCheck.", reviewer: "Curator Ana", fallbackJob: null });
    expect(Date.parse(first.createdAt)).toBeGreaterThanOrEqual(before - 5);
    expect(first.description.reviewState).toBe("NEEDS_WORK");
    expect(first.description.reviewedBy).toBe("Curator Ana");
    const second = (await review(first.description.id, "APPROVED", { reviewer: "Luis" })).data.reviewDescription;
    expect(second).toMatchObject({ verdict: "APPROVED", reviewer: "Luis", note: null });
    const history = await gql(yoga, `query($id: ID!) { node(id: $id) { ... on Description { reviewState reviews { verdict reviewer } } } }`, { id: first.description.id });
    expect(history.data.node).toEqual({ reviewState: "APPROVED", reviews: [{ verdict: "APPROVED", reviewer: "Luis" }, { verdict: "NEEDS_WORK", reviewer: "Curator Ana" }] });
  });

  it("answers typed errors for an unknown description, a malformed id, a bad note or reviewer", async () => {
    const a = await makeArtwork(t.db);
    const d = await addDescription(t.db, a.id, "A quiet street.");
    expect((await review(999_999, "APPROVED")).data.reviewDescription).toMatchObject({ __typename: "NotFoundError" });
    for (const id of ["abc", "0", "-1", "1.5", "99999999999", "Q5432", Buffer.from("Job:1").toString("base64"), "x".repeat(5000)]) {
      expect((await review(id, "APPROVED")).data.reviewDescription.__typename, id.slice(0, 20)).toBe("InvalidIdError");
    }
    const badNotes = ["x".repeat(2001), "bell\u0007", "\uD800 lone", "   "];
    for (const note of badNotes.slice(0, 3)) {
      expect((await review(d.id, "APPROVED", { note })).data.reviewDescription).toMatchObject({ __typename: "InvalidInputError", field: "note" });
    }
    // A blank note is no note.
    expect((await review(d.id, "NEEDS_WORK", { note: badNotes[3] })).data.reviewDescription).toMatchObject({ __typename: "Review", note: null });
    for (const reviewer of ["two\nlines", "y".repeat(201), "\u202Eevil"]) {
      expect((await review(d.id, "APPROVED", { reviewer })).data.reviewDescription).toMatchObject({ __typename: "InvalidInputError", field: "reviewer" });
    }
    const badVerdict = await review(d.id, "MAYBE");
    expect(badVerdict.errors?.[0]?.message).toMatch(/ReviewVerdict/);
    expect(await t.db.review.count({ where: { descriptionId: d.id, verdict: "APPROVED" } })).toBe(0);
  });
});

describe("the fallback ladder", () => {
  it("a rejected current model text is described again with step 1, 2, 3 of the ladder, then the work needs a person", async () => {
    const a = await makeArtwork(t.db, { title: "The Donkey" });
    let current = await addDescription(t.db, a.id, "A red oil painting of a cat.");
    const expected = [{ numBeams: 5 }, { numBeams: 6, repetitionPenalty: 1.3 }, { numBeams: 7, noRepeatNgramSize: 3 }];
    for (const [i, params] of expected.entries()) {
      const step = i + 1;
      const r = (await review(current.id, "REJECTED", { note: `wrong animal ${step}` })).data.reviewDescription;
      expect(r).toMatchObject({ verdict: "REJECTED", fallbackStep: step, exhausted: false });
      expect(r.fallbackJob).toMatchObject({ status: "QUEUED", reason: `fallback ${step}/3 after rejection`, requestedBy: "Curator Ana", requestedParams: params, priority: 100 });
      // While the job waits, the artwork says so.
      expect((await artworkReview(a.qid)).review).toMatchObject({
        state: "REJECTED",
        needsPerson: false,
        fallbackStep: step,
        fallbackSteps: 3,
        fallbackJob: { number: r.fallbackJob.number, status: "QUEUED", reason: `fallback ${step}/3 after rejection` },
      });
      // Rejecting again before it ran queues nothing new.
      const again = (await review(current.id, "REJECTED")).data.reviewDescription;
      expect(again.fallbackJob.number).toBe(r.fallbackJob.number);
      await drainQueue();
      const job = await t.db.job.findUniqueOrThrow({ where: { id: r.fallbackJob.number }, include: { result: true } });
      expect(job.status).toBe("SUCCEEDED");
      // The new text was made with the step's parameters and replaced the rejected one.
      expect(job.result).toMatchObject({ numBeams: params.numBeams, repetitionPenalty: params.repetitionPenalty ?? 1, noRepeatNgramSize: params.noRepeatNgramSize ?? 0 });
      const after = await artworkReview(a.qid);
      expect(Number(Buffer.from(after.currentDescription.id, "base64").toString().split(":")[1])).toBe(job.result!.id);
      expect(after.review).toMatchObject({ state: "UNREVIEWED", fallbackStep: step, needsPerson: false, fallbackJob: { status: "SUCCEEDED" } });
      current = job.result!;
    }
    const last = (await review(current.id, "REJECTED")).data.reviewDescription;
    expect(last).toMatchObject({ fallbackStep: null, fallbackJob: null, exhausted: true });
    expect(await t.db.job.count({ where: { artworkId: a.id, status: "QUEUED" } })).toBe(0);
    expect((await artworkReview(a.qid)).review).toMatchObject({ state: "REJECTED", needsPerson: true, fallbackStep: 3, fallbackSteps: 3 });

    // A person's text settles it.
    const set = await gql(yoga, `mutation($id: ID!) { setDescription(id: $id, text: "A grey donkey reads a book.") { ... on Description { id } } }`, { id: a.qid }, AUTH);
    expect(set.data.setDescription.id).toBeTruthy();
    expect((await artworkReview(a.qid)).review).toMatchObject({ state: "UNREVIEWED", needsPerson: false, fallbackStep: null });
  });

  it("approving the current text clears needsPerson; an empty ladder marks the work at the first rejection", async () => {
    const none = createGraphqlApp({ db: t.db, config: { ...config, REVIEW_FALLBACK_LADDER: [] }, log });
    const a = await makeArtwork(t.db);
    const d = await addDescription(t.db, a.id, "A blurry text.");
    const r = await gql(none, REVIEW, { id: String(d.id), verdict: "REJECTED" }, AUTH);
    expect(r.data.reviewDescription).toMatchObject({ exhausted: true, fallbackJob: null });
    expect((await artworkReview(a.qid)).review).toMatchObject({ needsPerson: true, fallbackSteps: 3 });
    await review(d.id, "APPROVED");
    expect((await artworkReview(a.qid)).review).toMatchObject({ state: "APPROVED", needsPerson: false, fallbackStep: null });
  });

  it("a new model text that is not a ladder step's (a regenerate) starts the review afresh: no longer needs a person, and its rejection is step 1", async () => {
    const none = createGraphqlApp({ db: t.db, config: { ...config, REVIEW_FALLBACK_LADDER: [] }, log });
    const a = await makeArtwork(t.db);
    const d = await addDescription(t.db, a.id, "A blurry text.");
    await gql(none, REVIEW, { id: String(d.id), verdict: "REJECTED" }, AUTH);
    expect((await artworkReview(a.qid)).review).toMatchObject({ needsPerson: true });
    const regen = `mutation($id: ID!) { regenerateDescription(id: $id) { ... on Job { number } } }`;
    const job = (await gql(yoga, regen, { id: a.qid }, AUTH)).data.regenerateDescription.number;
    await drainQueue();
    const made = await t.db.job.findUniqueOrThrow({ where: { id: job }, include: { result: true } });
    expect((await t.db.artwork.findUniqueOrThrow({ where: { id: a.id } })).currentDescriptionId).toBe(made.result!.id);
    expect((await artworkReview(a.qid)).review).toMatchObject({ state: "UNREVIEWED", needsPerson: false, fallbackStep: null });
    expect((await review(made.result!.id, "REJECTED")).data.reviewDescription).toMatchObject({ fallbackStep: 1 });
    await drainQueue();
  });

  it("a work without a downloaded image cannot be described again: it needs a person", async () => {
    const a = await makeArtwork(t.db, { image: false });
    const d = await addDescription(t.db, a.id, "A text from before the image was lost.");
    expect((await review(d.id, "REJECTED")).data.reviewDescription).toMatchObject({ exhausted: true, fallbackJob: null });
    expect((await artworkReview(a.qid)).review.needsPerson).toBe(true);
  });

  it("a step whose job fails for good leaves the rejected text current: the work needs a person (unless a person settled it meanwhile)", async () => {
    /** Rejects the work's current text and takes the step's job as a worker would. */
    const rejectAndRun = async (text: string) => {
      const a = await makeArtwork(t.db);
      const d = await addDescription(t.db, a.id, text);
      const r = (await review(d.id, "REJECTED")).data.reviewDescription;
      expect(r).toMatchObject({ fallbackStep: 1, fallbackJob: { status: "QUEUED" } });
      const job = await t.db.job.update({ where: { id: r.fallbackJob.number }, data: { status: "RUNNING", holder: "w", attempts: 1, startedAt: new Date(), heartbeatAt: new Date() } });
      return { a, d, job };
    };
    // An image the engine cannot read: the job fails at once.
    const unreadable = await rejectAndRun("A cat, says the model.");
    expect(await failJob(t.db, unreadable.job, "w", "the image cannot be read", { permanent: true })).toBe("failed");
    expect((await artworkReview(unreadable.a.qid)).review).toMatchObject({ state: "REJECTED", needsPerson: true, fallbackStep: 1, fallbackJob: { status: "FAILED" } });
    expect((await t.db.artwork.findUniqueOrThrow({ where: { id: unreadable.a.id } })).currentDescriptionId).toBe(unreadable.d.id);
    // Its worker died on the last attempt.
    const died = await rejectAndRun("A dog, says the model.");
    await t.db.job.update({ where: { id: died.job.id }, data: { attempts: died.job.maxAttempts, heartbeatAt: new Date(Date.now() - 3_600_000) } });
    expect(await requeueStale(t.db, 60_000)).toBe(1);
    expect((await artworkReview(died.a.qid)).review).toMatchObject({ needsPerson: true, fallbackJob: { status: "FAILED" } });
    // A person wrote the text while the step ran: nothing left for a person to do.
    const settled = await rejectAndRun("A horse, says the model.");
    await setHumanDescription(t.db, settled.a.id, "A donkey by a well.");
    expect(await failJob(t.db, settled.job, "w", "the image cannot be read", { permanent: true })).toBe("failed");
    expect((await artworkReview(settled.a.qid)).review).toMatchObject({ needsPerson: false, fallbackStep: null });
    // A failure with attempts left is retried, not marked.
    const retried = await rejectAndRun("A goat, says the model.");
    expect(await failJob(t.db, retried.job, "w", "out of memory")).toBe("retry");
    expect((await artworkReview(retried.a.qid)).review).toMatchObject({ needsPerson: false, fallbackStep: 1, fallbackJob: { status: "QUEUED" } });
    await t.db.job.update({ where: { id: retried.job.id }, data: { status: "CANCELLED", finishedAt: new Date() } });
  });

  it("a step that ended without its mark (the process died in between) is marked by the next nightly run", async () => {
    const a = await makeArtwork(t.db);
    const d = await addDescription(t.db, a.id, "A sheep, says the model.");
    const r = (await review(d.id, "REJECTED")).data.reviewDescription;
    // The job's end was written; the mark that follows it was not.
    await t.db.job.update({ where: { id: r.fallbackJob.number }, data: { status: "FAILED", finishedAt: new Date(), error: "the image cannot be read" } });
    expect((await artworkReview(a.qid)).review.needsPerson).toBe(false);
    const lines: string[] = [];
    await describeAfterSync({ db: t.db, config, log: { info: (_o: object, msg: string) => void lines.push(msg) } })(0);
    expect((await artworkReview(a.qid)).review).toMatchObject({ state: "REJECTED", needsPerson: true, fallbackStep: 1 });
    expect(lines).toContain("works whose fallback step had ended without its mark now need a person");
    // Marked (or settled otherwise), a step is not read again on later nights: the read does not grow with the history.
    const reads = vi.spyOn(t.db.review, "findMany");
    try {
      await describeAfterSync({ db: t.db, config, log: { info: () => {} } })(0);
      const found = await Promise.all(reads.mock.results.map((r) => r.value as Promise<unknown[]>));
      expect(found.flat()).toEqual([]);
    } finally {
      reads.mockRestore();
    }
    await t.db.job.deleteMany({ where: { status: "QUEUED" } });
  });

  it("a step's job a person cancels leaves the rejected text current: the work needs a person", async () => {
    const a = await makeArtwork(t.db);
    const d = await addDescription(t.db, a.id, "A cow, says the model.");
    const r = (await review(d.id, "REJECTED")).data.reviewDescription;
    expect(r).toMatchObject({ fallbackStep: 1, fallbackJob: { status: "QUEUED" } });
    await cancelJob(t.db, r.fallbackJob.number);
    expect((await artworkReview(a.qid)).review).toMatchObject({ state: "REJECTED", needsPerson: true, fallbackStep: 1, fallbackJob: { status: "CANCELLED" } });
    expect((await t.db.artwork.findUniqueOrThrow({ where: { id: a.id } })).currentDescriptionId).toBe(d.id);
    // Cancelling any other job marks nothing.
    const b = await makeArtwork(t.db);
    const plain = await t.db.job.create({ data: { artworkId: b.id, status: "QUEUED" } });
    await cancelJob(t.db, plain.id);
    expect((await t.db.artwork.findUniqueOrThrow({ where: { id: b.id } })).needsPerson).toBe(false);
  });

  it("a rejected person's text, an older version, or a work that left the inventory only records the verdict", async () => {
    const a = await makeArtwork(t.db);
    const human = await addDescription(t.db, a.id, "A curator's words.", "HUMAN");
    const old = await t.db.description.create({ data: { artworkId: a.id, text: "An older model text.", source: "MODEL", createdAt: new Date(0) } });
    const gone = await makeArtwork(t.db, { state: "DELETED" });
    const goneText = await addDescription(t.db, gone.id, "A deleted work's text.");
    for (const id of [human.id, old.id, goneText.id]) {
      expect((await review(id, "REJECTED")).data.reviewDescription).toMatchObject({ verdict: "REJECTED", fallbackStep: null, fallbackJob: null, exhausted: false });
    }
    expect(await t.db.job.count({ where: { artworkId: { in: [a.id, gone.id] } } })).toBe(0);
    expect(await t.db.artwork.findUniqueOrThrow({ where: { id: a.id } })).toMatchObject({ needsPerson: false, fallbackStep: null, currentDescriptionId: human.id });
  });
});

describe("an approved model text", () => {
  it("is never replaced by the nightly run, even when the image changed; an explicit forced regenerate still may", async () => {
    const a = await makeArtwork(t.db);
    const approved = await addDescription(t.db, a.id, "A woman holds a fan.");
    const plain = await makeArtwork(t.db);
    await addDescription(t.db, plain.id, "A man in a hat.");
    await review(approved.id, "APPROVED");
    // A new copy of both images: the nightly step would describe both again.
    await t.db.image.updateMany({ where: { artworkId: { in: [a.id, plain.id] } }, data: { downloadedAt: new Date(Date.now() + 60_000) } });
    await t.db.job.deleteMany({ where: { status: "QUEUED" } });
    const summary = await queueAfterSync(t.db, config);
    const queued = await t.db.job.findMany({ where: { status: "QUEUED" } });
    expect(queued.map((j) => j.artworkId)).toContain(plain.id);
    expect(queued.map((j) => j.artworkId)).not.toContain(a.id);
    expect(summary.skippedHuman).toBeGreaterThanOrEqual(1);

    // A job queued before the approval (a regenerate without force) writes history, not the current text.
    const regen = `mutation($id: ID!, $force: Boolean) { regenerateDescription(id: $id, force: $force) { ... on Job { number } } }`;
    const kept = (await gql(yoga, regen, { id: a.qid }, AUTH)).data.regenerateDescription.number;
    await drainQueue();
    const keptJob = await t.db.job.findUniqueOrThrow({ where: { id: kept }, include: { result: true } });
    expect(keptJob.result).not.toBeNull();
    expect((await t.db.artwork.findUniqueOrThrow({ where: { id: a.id } })).currentDescriptionId).toBe(approved.id);
    expect((await t.db.artwork.findUniqueOrThrow({ where: { id: plain.id } })).currentDescriptionId).not.toBe(null);

    const forced = (await gql(yoga, regen, { id: a.qid, force: true }, AUTH)).data.regenerateDescription.number;
    // The job names the text it may replace: the approved one, current when it was asked for.
    const asked = await gql(yoga, `query($id: ID!) { job(id: $id) { ... on Job { force forcesOver } } a: artwork(id: "${a.qid}") { ... on Artwork { currentDescription { id } } } }`, { id: String(forced) });
    expect(asked.data.job).toEqual({ force: true, forcesOver: asked.data.a.currentDescription.id });
    await drainQueue();
    const forcedJob = await t.db.job.findUniqueOrThrow({ where: { id: forced }, include: { result: true } });
    expect((await t.db.artwork.findUniqueOrThrow({ where: { id: a.id } })).currentDescriptionId).toBe(forcedJob.result!.id);
  });
});

describe("altText", () => {
  it("skips a rejected current text: the newest text nobody rejected, else the title, creators and year", async () => {
    const painter = await makeCreator(t.db, { labels: { en: "Francisco Goya" } });
    const a = await makeArtwork(t.db, { title: "The Sleep of Reason", inception: "1799-01-01T00:00:00Z", creators: [{ id: painter.id }] });
    const none = await artworkReview(a.qid);
    expect(none.altText).toBeNull();
    const older = await addDescription(t.db, a.id, "A man sleeps at a desk. Owls fly behind him.");
    const newer = await addDescription(t.db, a.id, "A cat paints a red wall.");
    expect((await artworkReview(a.qid)).altText).toBe("A cat paints a red wall.");
    const rejectedOnly = createGraphqlApp({ db: t.db, config: { ...config, REVIEW_FALLBACK_LADDER: [] }, log });
    await gql(rejectedOnly, REVIEW, { id: String(newer.id), verdict: "REJECTED" }, AUTH);
    expect((await artworkReview(a.qid)).altText).toBe("A man sleeps at a desk. Owls fly behind him.");
    await gql(rejectedOnly, REVIEW, { id: String(older.id), verdict: "REJECTED" }, AUTH);
    expect((await artworkReview(a.qid)).altText).toBe("The Sleep of Reason by Francisco Goya, 1799");
    // Changing one's mind: an approval after a rejection feeds alt text again.
    await gql(rejectedOnly, REVIEW, { id: String(older.id), verdict: "NEEDS_WORK" }, AUTH);
    expect((await artworkReview(a.qid)).altText).toBe("A man sleeps at a desk. Owls fly behind him.");
  });
});

describe("reviewQueue", () => {
  const QUEUE = `query($first: Int, $after: String, $last: Int, $before: String, $filter: ReviewQueueFilter) {
    reviewQueue(first: $first, after: $after, last: $last, before: $before, filter: $filter) {
      edges { cursor node { id text quality { risk } artwork { qid } } } pageInfo { hasNextPage hasPreviousPage endCursor startCursor }
    }
  }`;

  it("lists unreviewed current texts of active works riskiest first (unassessed last), pages by cursor, and a verdict takes a text out", async () => {
    const q = await makeCreator(t.db, { labels: { en: "Queue Painter" } });
    const risks = [0.2, null, 0.9, 0.5, 0.9, null, 0.05];
    const made: { id: number; risk: number | null; text: string }[] = [];
    for (const [i, risk] of risks.entries()) {
      const a = await makeArtwork(t.db, { creators: [{ id: q.id }] });
      const d = await addDescription(t.db, a.id, `Queue text ${i}.`);
      await t.db.description.update({ where: { id: d.id }, data: { qualityRisk: risk, qualityFlags: risk === null ? null : risk > 0.4 ? "DEPICTS_MISSING" : "" } });
      made.push({ id: d.id, risk, text: d.text });
    }
    // Not in the queue: an older version, and the current text of a deleted work.
    const withOld = await makeArtwork(t.db, { creators: [{ id: q.id }] });
    const oldText = await addDescription(t.db, withOld.id, "Queue old.");
    await t.db.description.update({ where: { id: oldText.id }, data: { qualityRisk: 1 } });
    const newText = await addDescription(t.db, withOld.id, "Queue current.");
    await t.db.description.update({ where: { id: newText.id }, data: { qualityRisk: 0.3 } });
    made.push({ id: newText.id, risk: 0.3, text: "Queue current." });
    const gone = await makeArtwork(t.db, { creators: [{ id: q.id }], state: "DELETED" });
    const goneText = await addDescription(t.db, gone.id, "Queue deleted.");
    await t.db.description.update({ where: { id: goneText.id }, data: { qualityRisk: 1 } });

    const expected = [...made].sort((x, y) => (x.risk === y.risk ? x.id - y.id : x.risk === null ? 1 : y.risk === null ? -1 : y.risk - x.risk)).map((m) => m.text);
    const filter = { creator: "Queue Painter" };
    const seen: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 10; page++) {
      const r: GqlResult = await gql(yoga, QUEUE, { first: 3, after, filter });
      const conn = r.data.reviewQueue as { edges: { node: { text: string } }[]; pageInfo: { hasNextPage: boolean; endCursor: string } };
      seen.push(...conn.edges.map((e: { node: { text: string } }) => e.node.text));
      if (!conn.pageInfo.hasNextPage) break;
      after = conn.pageInfo.endCursor;
    }
    expect(seen).toEqual(expected);
    // Backward from the end gives the same order.
    const lastTwo = (await gql(yoga, QUEUE, { last: 2, filter })).data.reviewQueue;
    expect(lastTwo.edges.map((e: { node: { text: string } }) => e.node.text)).toEqual(expected.slice(-2));
    const beforeThose = (await gql(yoga, QUEUE, { last: 3, before: lastTwo.pageInfo.startCursor, filter })).data.reviewQueue;
    expect(beforeThose.edges.map((e: { node: { text: string } }) => e.node.text)).toEqual(expected.slice(-5, -2));

    const flagged = (await gql(yoga, QUEUE, { first: 50, filter: { ...filter, flag: "DEPICTS_MISSING", minRisk: 0.6 } })).data.reviewQueue;
    expect(flagged.edges.map((e: { node: { text: string } }) => e.node.text)).toEqual(["Queue text 2.", "Queue text 4."]);

    const top = (await gql(yoga, QUEUE, { first: 1, filter })).data.reviewQueue.edges[0].node;
    await review(top.id, "APPROVED");
    const next = (await gql(yoga, QUEUE, { first: 50, filter })).data.reviewQueue;
    expect(next.edges.map((e: { node: { text: string } }) => e.node.text)).toEqual(expected.slice(1));
  });

  it("refuses a foreign cursor, a page too large and a risk outside 0…1 with BAD_USER_INPUT naming the argument", async () => {
    for (const [vars, argument] of [
      [{ after: "not-a-cursor" }, "after"],
      [{ before: Buffer.from("ReviewQueue:[1]").toString("base64url") }, "before"],
      [{ after: Buffer.from('ReviewQueue:["x",1]').toString("base64url") }, "after"],
      [{ first: 501 }, "first"],
      [{ last: -1 }, "last"],
      [{ filter: { minRisk: 1.5 } }, "filter.minRisk"],
    ] as const) {
      const r = await gql(yoga, QUEUE, vars);
      expect(r.data, JSON.stringify(vars)).toBeNull();
      expect(r.errors?.map((e) => e.extensions), JSON.stringify(vars)).toEqual([{ code: "BAD_USER_INPUT", argument }]);
      expect(r.errors?.[0]?.message).toMatch(/between|cursor/);
    }
  });
});

describe("artworksConnection's review filters", () => {
  const LIST = `query($filter: ArtworkFilter) { artworksConnection(first: 50, filter: $filter) { totalCount edges { node { qid } } } }`;
  const qids = async (filter: Record<string, unknown>) => {
    const r = await gql(yoga, LIST, { filter: { creator: "Filter Painter", ...filter } });
    expect(r.errors).toBeUndefined();
    const c = r.data.artworksConnection;
    expect(c.totalCount).toBe(c.edges.length);
    return c.edges.map((e: { node: { qid: string } }) => e.node.qid).sort();
  };

  it("select works by their current text's review state (a work without a text has none) and by needsPerson", async () => {
    const painter = await makeCreator(t.db, { labels: { en: "Filter Painter" } });
    const work = () => makeArtwork(t.db, { creators: [{ id: painter.id }] });
    const [approved, rejected, open, blank, person] = [await work(), await work(), await work(), await work(), await work()];
    const none = createGraphqlApp({ db: t.db, config: { ...config, REVIEW_FALLBACK_LADDER: [] }, log });
    await review((await addDescription(t.db, approved.id, "An approved text.")).id, "APPROVED");
    // An older rejected version does not count: only the current text's state does.
    await review((await addDescription(t.db, rejected.id, "Old text.")).id, "APPROVED");
    await review((await addDescription(t.db, rejected.id, "A rejected text.")).id, "NEEDS_WORK");
    await addDescription(t.db, open.id, "Nobody looked at this.");
    const p = await addDescription(t.db, person.id, "A text that needs a person.");
    expect((await gql(none, REVIEW, { id: String(p.id), verdict: "REJECTED" }, AUTH)).data.reviewDescription).toMatchObject({ exhausted: true });

    expect(await qids({ reviewState: ["APPROVED"] })).toEqual([approved.qid]);
    expect(await qids({ reviewState: ["NEEDS_WORK"] })).toEqual([rejected.qid]);
    expect(await qids({ reviewState: ["UNREVIEWED"] })).toEqual([open.qid]);
    expect(await qids({ reviewState: ["UNREVIEWED", "REJECTED"] })).toEqual([open.qid, person.qid].sort());
    expect(await qids({ needsPerson: true })).toEqual([person.qid]);
    expect(await qids({ needsPerson: false })).toEqual([approved.qid, rejected.qid, open.qid, blank.qid].sort());
    expect(await qids({ reviewState: ["APPROVED"], needsPerson: true })).toEqual([]);
    expect(await qids({})).toHaveLength(5);
    // A hostile list is refused by the input limit, not run.
    const many = await gql(yoga, LIST, { filter: { reviewState: Array(5).fill("APPROVED") } });
    expect(many.errors?.[0]?.message).toMatch(/at most 4 items/);
  });
});
