import { join } from "node:path";
import { encodeGlobalID } from "@pothos/plugin-relay";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { createGraphqlApp, type Yoga } from "../../src/graphql/yoga.js";
import { startWorker } from "../../src/jobs/worker.js";
import { createLogger } from "../../src/log.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { addDescription, makeArtwork, makeCreator, writePlaceholderImages } from "../support/factories.js";
import { gql } from "../support/graphql.js";
import { readEvents } from "../support/sse.js";
import { scriptedDescriber } from "../support/scripted-describer.js";

const TOKEN = "test-token-0123456789abcdef";
const AUTH = { authorization: `Bearer ${TOKEN}` };
let t: TestDb;
let yoga: Yoga;
let imageDir: string;
const config = () => loadConfig({ API_TOKEN: TOKEN, IMAGE_DIR: imageDir, HEARTBEAT_INTERVAL_S: "0.2" });
const ids: Record<string, number> = {};

beforeAll(async () => {
  t = await createTestDb();
  imageDir = join(t.dir, "images");
  yoga = createGraphqlApp({ db: t.db, config: config() });
  const painter = await makeCreator(t.db, { qid: "Q777", labels: { en: "Ana Pintora" } });
  ids.a = (await makeArtwork(t.db, { qid: "Q101", creators: [{ id: painter.id }] })).id;
  ids.b = (await makeArtwork(t.db, { qid: "Q102", creators: [{ id: painter.id }] })).id;
  ids.noImage = (await makeArtwork(t.db, { qid: "Q103", creators: [{ id: painter.id }], image: false })).id;
  ids.described = (await makeArtwork(t.db, { qid: "Q104", creators: [{ id: painter.id }], description: "Said already." })).id;
  await writePlaceholderImages(t.db, imageDir);
});
afterAll(() => t.close());
beforeEach(async () => {
  await t.db.job.deleteMany();
});

const REGENERATE = `mutation($id: ID!, $params: GenerationParamsInput, $reason: String, $force: Boolean) {
  regenerateDescription(id: $id, params: $params, reason: $reason, force: $force) {
    __typename
    ... on Error { message }
    ... on ParameterOutOfRangeError { field }
    ... on Job { id number status priority requestedParams params { numBeams maxNewTokens prompt earlyStopping } reason force artwork { qid } }
  }
}`;

describe("mutations need the token", () => {
  const mutations: [string, string, Record<string, unknown>][] = [
    ["regenerateDescription", REGENERATE, { id: "Q101" }],
    ["describeMissing", `mutation { describeMissing { __typename ... on Error { message } } }`, {}],
    ["cancelJob", `mutation { cancelJob(id: "1") { __typename ... on Error { message } } }`, {}],
    ["setDescription", `mutation { setDescription(id: "Q101", text: "Mine.") { __typename ... on Error { message } } }`, {}],
  ];

  it.each(mutations)("%s is refused without the token, with a wrong one, and when no token is configured", async (name, query, vars) => {
    const unconfigured = createGraphqlApp({ db: t.db, config: loadConfig({}) });
    const cases: [Yoga, Record<string, string>][] = [
      [yoga, {}],
      [yoga, { authorization: "Bearer wrong-token-0123456789abcdef" }],
      [yoga, { authorization: TOKEN }],
      [unconfigured, AUTH],
    ];
    for (const [app, headers] of cases) {
      const r = await gql(app, query, vars, headers);
      expect(r.errors).toBeUndefined();
      expect(r.data[name].__typename).toBe("UnauthorizedError");
    }
    const r = await gql(unconfigured, query, vars, AUTH);
    expect(r.data[name].message).toMatch(/no API_TOKEN configured/);
    expect(await t.db.job.count()).toBe(0);
    expect(await t.db.description.count({ where: { source: "HUMAN" } })).toBe(0);
  });
});

describe("regenerateDescription", () => {
  it("queues a job with the requested parameters, by QID or global id, and returns the same queued job again", async () => {
    const r = await gql(yoga, REGENERATE, { id: "Q101", params: { numBeams: 2, maxNewTokens: 64, earlyStopping: "NEVER" }, reason: "too short" }, AUTH);
    expect(r.errors).toBeUndefined();
    const job = r.data.regenerateDescription;
    expect(job).toMatchObject({
      __typename: "Job",
      status: "QUEUED",
      priority: 100,
      requestedParams: { numBeams: 2, maxNewTokens: 64, earlyStopping: "never" },
      params: { numBeams: 2, maxNewTokens: 64, prompt: config().DESCRIBE_PROMPT, earlyStopping: "never" },
      reason: "too short",
      force: false,
      artwork: { qid: "Q101" },
    });
    const again = await gql(yoga, REGENERATE, { id: encodeGlobalID("Artwork", ids.a!), params: { maxNewTokens: 64, numBeams: 2, earlyStopping: "NEVER" } }, AUTH);
    expect(again.data.regenerateDescription.id).toBe(job.id);
    expect(await t.db.job.count()).toBe(1);
  });

  it.each([
    [{ id: "Q999999" }, "NotFoundError"],
    [{ id: "not-an-id" }, "InvalidIdError"],
    [{ id: "Q103" }, "ArtworkWithoutImageError"],
    [{ id: "Q101", params: { numBeams: 9 } }, "ParameterOutOfRangeError"],
    [{ id: "Q101", params: { maxNewTokens: 8 } }, "ParameterOutOfRangeError"],
    [{ id: "Q101", params: { maxNewTokens: 2000 } }, "ParameterOutOfRangeError"],
    [{ id: "Q101", params: { minNewTokens: 100, maxNewTokens: 50 } }, "ParameterOutOfRangeError"],
  ])("%j gives a typed %s and queues nothing", async (vars, type) => {
    const r = await gql(yoga, REGENERATE, vars, AUTH);
    expect(r.errors).toBeUndefined();
    expect(r.data.regenerateDescription.__typename).toBe(type);
    expect(r.data.regenerateDescription.message).toBeTruthy();
    expect(await t.db.job.count()).toBe(0);
  });

  it("names the bad parameter", async () => {
    const r = await gql(yoga, REGENERATE, { id: "Q101", params: { repetitionPenalty: 5 } }, AUTH);
    expect(r.data.regenerateDescription).toMatchObject({ __typename: "ParameterOutOfRangeError", field: "repetitionPenalty" });
  });
});

describe("describeMissing, cancelJob, setDescription", () => {
  it("describeMissing queues works with an image and no description", async () => {
    const r = await gql(yoga, `mutation { describeMissing(creator: "pintora") { ... on DescribeMissingPayload { queued skippedNoImage upToDate alreadyQueued } } }`, {}, AUTH);
    expect(r.errors).toBeUndefined();
    expect(r.data.describeMissing).toEqual({ queued: 2, skippedNoImage: 1, upToDate: 1, alreadyQueued: 0 });
    expect((await t.db.job.findMany({ orderBy: { artworkId: "asc" } })).map((j) => j.artworkId)).toEqual([ids.a, ids.b]);
  });

  it("cancelJob cancels by number or global id and refuses a finished job", async () => {
    const queued = await gql(yoga, REGENERATE, { id: "Q101" }, AUTH);
    const { id, number } = queued.data.regenerateDescription;
    const CANCEL = `mutation($id: ID!) { cancelJob(id: $id) { __typename ... on Job { status finishedAt } ... on JobNotCancellableError { status } ... on Error { message } } }`;
    const r = await gql(yoga, CANCEL, { id }, AUTH);
    expect(r.errors).toBeUndefined();
    expect(r.data.cancelJob).toMatchObject({ __typename: "Job", status: "CANCELLED" });
    const again = await gql(yoga, CANCEL, { id: String(number) }, AUTH);
    expect(again.data.cancelJob).toMatchObject({ __typename: "JobNotCancellableError", status: "CANCELLED" });
    const missing = await gql(yoga, CANCEL, { id: "987654" }, AUTH);
    expect(missing.data.cancelJob.__typename).toBe("NotFoundError");
  });

  it("setDescription makes a person's text current and keeps the history", async () => {
    const SET = `mutation($id: ID!, $text: String!) { setDescription(id: $id, text: $text, author: "Curator") { __typename ... on Description { text source author } ... on Error { message } } }`;
    const r = await gql(yoga, SET, { id: "Q104", text: "  A curator's text.  " }, AUTH);
    expect(r.data.setDescription).toEqual({ __typename: "Description", text: "A curator's text.", source: "HUMAN", author: "Curator" });
    const art = await gql(yoga, `{ artwork(id: "Q104") { ... on Artwork { description descriptions { source } } } }`);
    expect(art.data.artwork).toEqual({ description: "A curator's text.", descriptions: [{ source: "HUMAN" }, { source: "MODEL" }] });
    const empty = await gql(yoga, SET, { id: "Q104", text: "   " }, AUTH);
    expect(empty.data.setDescription.__typename).toBe("InvalidInputError");
  });

  it("regenerateDescription with replaces: forced over a text no longer current is a ConflictError, and nothing is queued", async () => {
    const FORCE = `mutation($id: ID!, $replaces: ID) { regenerateDescription(id: $id, force: true, replaces: $replaces) { __typename ... on Error { message } ... on ConflictError { changed } ... on Job { force forcesOver } } }`;
    const shown = await gql(yoga, `{ artwork(id: "Q102") { ... on Artwork { currentDescription { id } } } }`);
    expect(shown.data.artwork.currentDescription).toBeNull();
    // A person saves a text after the page was shown with none.
    const saved = await gql(yoga, `mutation { setDescription(id: "Q102", text: "Bob's text.") { ... on Description { id } } }`, {}, AUTH);
    const stale = await gql(yoga, FORCE, { id: "Q102", replaces: "none" }, AUTH);
    expect(stale.data.regenerateDescription).toMatchObject({ __typename: "ConflictError", changed: encodeGlobalID("Artwork", String(ids.b)) });
    expect(stale.data.regenerateDescription.message).toMatch(/Nothing was queued/);
    expect(await t.db.job.count()).toBe(0);
    // Against the text shown now: queued, and it may replace that text.
    const ok = await gql(yoga, FORCE, { id: "Q102", replaces: saved.data.setDescription.id }, AUTH);
    expect(ok.data.regenerateDescription).toEqual({ __typename: "Job", force: true, forcesOver: saved.data.setDescription.id });
    // Not a description id (a QID, empty, huge, another type's): a typed InvalidIdError, its echo cut short, nothing queued.
    for (const replaces of ["Q1", "", "x".repeat(10_000), encodeGlobalID("Artwork", "1")]) {
      const bad = await gql(yoga, FORCE, { id: "Q102", replaces }, AUTH);
      expect(bad.data.regenerateDescription.__typename, replaces.slice(0, 20)).toBe("InvalidIdError");
      expect(bad.data.regenerateDescription.message.length).toBeLessThan(300);
    }
    expect(await t.db.job.count()).toBe(1);
  });
});

describe("job queries", () => {
  it("job, jobs(status) as a connection, and Artwork.jobs", async () => {
    const first = (await gql(yoga, REGENERATE, { id: "Q101" }, AUTH)).data.regenerateDescription;
    const second = (await gql(yoga, REGENERATE, { id: "Q102", params: { numBeams: 1 } }, AUTH)).data.regenerateDescription;
    await gql(yoga, `mutation($id: ID!) { cancelJob(id: $id) { __typename } }`, { id: first.id }, AUTH);
    const one = await gql(yoga, `query($id: ID!) { job(id: $id) { ... on Job { number status params { numBeams } } } }`, { id: String(second.number) });
    expect(one.data.job).toEqual({ number: second.number, status: "QUEUED", params: { numBeams: 1 } });
    const list = await gql(yoga, `{ jobs(first: 1) { edges { node { number } } pageInfo { hasNextPage endCursor } } queued: jobs(status: [QUEUED]) { edges { node { number } } } }`);
    expect(list.errors).toBeUndefined();
    expect(list.data.jobs.edges).toEqual([{ node: { number: second.number } }]);
    expect(list.data.jobs.pageInfo.hasNextPage).toBe(true);
    const next = await gql(yoga, `query($after: String) { jobs(first: 5, after: $after) { edges { node { number status } } } }`, { after: list.data.jobs.pageInfo.endCursor });
    expect(next.data.jobs.edges).toEqual([{ node: { number: first.number, status: "CANCELLED" } }]);
    expect(list.data.queued.edges).toEqual([{ node: { number: second.number } }]);
    const art = await gql(yoga, `{ artwork(id: "Q101") { ... on Artwork { jobs(first: 10) { edges { node { number status } } } } } }`);
    expect(art.data.artwork.jobs.edges).toEqual([{ node: { number: first.number, status: "CANCELLED" } }]);
  });

  it("jobs pages on past a job that was removed after its cursor was given out, both ways; Artwork.jobs refuses a page over 100", async () => {
    const made = [];
    for (let i = 0; i < 5; i++) made.push(await t.db.job.create({ data: { kind: "embed", status: "SUCCEEDED", dedupeKey: `paging-${i}` } }));
    const ids = made.map((j) => j.id).reverse();
    const PAGE = `query($first: Int, $after: String, $last: Int, $before: String) { jobs(first: $first, after: $after, last: $last, before: $before) {
      edges { node { number } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`;
    const top = await gql(yoga, PAGE, { first: 2 });
    expect(top.data.jobs.edges.map((e: { node: { number: number } }) => e.node.number)).toEqual(ids.slice(0, 2));
    // The page's last job is pruned (as finished embed jobs are after a day): the next page still follows it.
    await t.db.job.delete({ where: { id: ids[1]! } });
    const next = await gql(yoga, PAGE, { first: 2, after: top.data.jobs.pageInfo.endCursor });
    expect(next.data.jobs.edges.map((e: { node: { number: number } }) => e.node.number)).toEqual(ids.slice(2, 4));
    expect(next.data.jobs.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: true });
    await t.db.job.delete({ where: { id: ids[2]! } });
    const back = await gql(yoga, PAGE, { last: 2, before: next.data.jobs.pageInfo.startCursor });
    expect(back.data.jobs.edges.map((e: { node: { number: number } }) => e.node.number)).toEqual([ids[0]]);
    expect(back.data.jobs.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: false });
    await t.db.job.deleteMany({ where: { id: { in: ids } } });
    const over = await gql(yoga, `{ artwork(id: "Q101") { ... on Artwork { jobs(first: 120) { edges { node { number } } } } } }`);
    expect(over.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", argument: "first" });
  });

  it("generationDefaults shows the configured parameters and the worker's model", async () => {
    await t.db.heartbeat.create({
      data: { id: "w1", role: "worker", pid: 42, hostname: "h", modelStatus: "loaded", modelId: "org/model", modelRevision: "abc", dtypes: JSON.stringify({ vision_encoder: "fp32" }), device: "cpu" },
    });
    const r = await gql(yoga, `{ generationDefaults { params { numBeams maxNewTokens earlyStopping } model { alive modelStatus modelId modelRevision device dtypes { module dtype } } } }`);
    expect(r.errors).toBeUndefined();
    expect(r.data.generationDefaults).toEqual({
      params: { numBeams: 4, maxNewTokens: 256, earlyStopping: "true" },
      model: { alive: true, modelStatus: "loaded", modelId: "org/model", modelRevision: "abc", device: "cpu", dtypes: [{ module: "vision_encoder", dtype: "fp32" }] },
    });
    await t.db.heartbeat.deleteMany();
  });
});

describe("jobUpdated subscription", () => {
  it("streams progress, then the final description, then completes", async () => {
    const queued = (await gql(yoga, REGENERATE, { id: "Q102", params: { maxNewTokens: 16 } }, AUTH)).data.regenerateDescription;
    const res = await yoga.fetch("http://local/graphql", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({
        query: `subscription($id: ID!) { jobUpdated(id: $id) { status progress progressTotal description { text source generation { maxNewTokens } } } }`,
        variables: { id: queued.id },
      }),
    });
    expect(res.headers.get("content-type")).toMatch(/text\/event-stream/);
    let subscribed!: () => void;
    const firstEvent = new Promise<void>((r) => (subscribed = r));
    const eventsPromise = readEvents(res, () => subscribed());
    await firstEvent;
    const worker = await startWorker({
      db: t.db,
      config: config(),
      log: createLogger("silent"),
      openDescriber: async () => scriptedDescriber({ steps: 12, stepMs: 60 }),
      pollMs: 20,
      progressEveryMs: 50,
    });
    const events = (await eventsPromise).map((e) => e.data.jobUpdated);
    await worker.stop();
    expect(events[0]).toMatchObject({ status: "QUEUED", progress: 0, progressTotal: 16, description: null });
    const running = events.filter((e) => e.status === "RUNNING" && e.progress > 0);
    expect(running.length).toBeGreaterThan(1);
    const progress = running.map((e) => e.progress);
    expect([...progress].sort((x, y) => x - y)).toEqual(progress);
    const last = events.at(-1);
    expect(last).toMatchObject({ status: "SUCCEEDED", progress: 12, description: { source: "MODEL", generation: { maxNewTokens: 16 } } });
    expect(last.description.text).toMatch(/^Scripted description/);
  });

  it("ends with an error for an unknown job", async () => {
    const res = await yoga.fetch("http://local/graphql", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ query: `subscription { jobUpdated(id: "424242") { status } }` }),
    });
    const events = await readEvents(res);
    expect(events[0].errors[0].message).toMatch(/No job with id 424242/);
  });
});

describe("history", () => {
  it("Description keeps its generation parameters", async () => {
    const d = await addDescription(t.db, ids.b!, "Model text.");
    const r = await gql(yoga, `query($id: ID!) { node(id: $id) { ... on Description { generation { numBeams modelId } } } }`, { id: encodeGlobalID("Description", d.id) });
    expect(r.data.node.generation).toEqual({ numBeams: 4, modelId: "HuggingFaceTB/SmolVLM-500M-Instruct" });
  });
});

describe("Job.params", () => {
  it("is what the job ran with once it wrote its description, whatever the API's defaults say", async () => {
    // The worker runs 2 beams and 32 tokens; this API's defaults say 4 and 256.
    const queued = await gql(yoga, REGENERATE, { id: "Q102", params: { maxNewTokens: 48 } }, AUTH);
    expect(queued.data.regenerateDescription.params).toMatchObject({ numBeams: 4, maxNewTokens: 48 });
    const worker = await startWorker({
      db: t.db,
      config: loadConfig({ IMAGE_DIR: imageDir, HEARTBEAT_INTERVAL_S: "0.2", DESCRIBE_NUM_BEAMS: "2", DESCRIBE_PROMPT: "Say what you see." }),
      log: createLogger("silent"),
      openDescriber: async () => scriptedDescriber(),
      pollMs: 20,
    });
    const number = queued.data.regenerateDescription.number as number;
    for (let until = Date.now() + 10_000; (await t.db.job.findUniqueOrThrow({ where: { id: number } })).status !== "SUCCEEDED"; ) {
      if (Date.now() > until) throw new Error("the job did not finish");
      await new Promise((r) => setTimeout(r, 20));
    }
    await worker.stop();
    const r = await gql(yoga, `query($id: ID!) { job(id: $id) { ... on Job { requestedParams params { numBeams maxNewTokens prompt } description { generation { numBeams maxNewTokens prompt } } } } }`, {
      id: String(number),
    });
    expect(r.errors).toBeUndefined();
    expect(r.data.job.requestedParams).toEqual({ maxNewTokens: 48 });
    expect(r.data.job.params).toEqual({ numBeams: 2, maxNewTokens: 48, prompt: "Say what you see." });
    expect(r.data.job.params).toEqual(r.data.job.description.generation);
  });
});
