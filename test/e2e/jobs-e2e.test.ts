import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testDatabaseUrl } from "../support/db.js";
import { type ArtdescProcess, httpGql, listeningBase, spawnArtdesc, tinyModelEnv, waitUntil } from "../support/processes.js";
import { readEvents } from "../support/sse.js";
import { startWikidataWorld, type WikidataWorld } from "../support/wikidata-world/index.js";

/**
 * The whole flow with real parts: the local Wikidata world, the sync, the real engine with the
 * `tiny` model in a worker thread, and the API over HTTP, once as `artdesc start` and once as
 * `artdesc serve` + `artdesc daemon` in separate processes.
 */

const TOKEN = "e2e-token-0123456789abcdef";
const AUTH = { authorization: `Bearer ${TOKEN}` };
let world: WikidataWorld;
let model: ReturnType<typeof tinyModelEnv>;

beforeAll(async () => {
  // Six works, one without an image; small images keep the tiny model fast.
  world = await startWikidataWorld({ generated: 5, hardCases: false, imageEdge: 160 });
  world.model.addWork({ qid: "Q990001", labels: { en: "No picture" }, creators: [{ value: "Q5432" }], images: [] });
  model = tinyModelEnv();
});
afterAll(async () => {
  await world?.stop();
  model?.remove();
});

/** The processes' environment: a SQLite file in `dir`, or with TEST_DATABASE=postgresql a new PostgreSQL database. */
async function environment(dir: string): Promise<Record<string, string>> {
  return {
    ...world.env,
    ...model.env,
    DATABASE_URL: await testDatabaseUrl(dir, "e2e"),
    IMAGE_DIR: join(dir, "images"),
    API_TOKEN: TOKEN,
    // The kernel picks the port when the API binds; the tests read it from the "API listening" line.
    PORT: "0",
    HOST: "127.0.0.1",
    // The "nightly" run every 5 seconds, so the test sees several.
    SYNC_CRON: "*/5 * * * * *",
    DESCRIBE_NUM_BEAMS: "2",
    DESCRIBE_MAX_NEW_TOKENS: "24",
    DESCRIBE_TARGET_WORDS: "0",
    HEARTBEAT_INTERVAL_S: "0.5",
    SHUTDOWN_GRACE_S: "5",
  };
}

const ARTWORKS = `{ artworks(creator: "Q5432") { qid image { url } currentDescription { id text source author
  generation { modelId modelRevision device numBeams maxNewTokens minNewTokens prompt earlyStopping dtypes { module dtype } }
  outcome { generatedTokens finishReason } } descriptions { id source } } }`;

/** The first sync run (it runs at start), once it succeeded and queued its jobs. */
function firstSync(url: string): Promise<{ number: number; status: string; jobsQueued: number }> {
  return waitUntil("the first sync", async () => {
    // The oldest run, not the newest: a scheduled run (every 5 s here) may already have followed
    // it, with nothing left to queue, before a separate `serve` answers its first request.
    const r = await httpGql(url, "{ syncRuns(limit: 100) { number status jobsQueued } }");
    const first = (r.data?.syncRuns as { number: number; status: string; jobsQueued: number }[] | undefined)?.at(-1);
    // jobsQueued is recorded by the afterSync hook, just after the run is marked SUCCEEDED.
    return first?.status === "SUCCEEDED" && first.jobsQueued > 0 ? first : null;
  }, 120_000);
}

async function flow(url: string, procs: ArtdescProcess[]) {
  // Each process's own tail, so one chatty process cannot hide why another stopped.
  const logs = () => procs.map((p, i) => `[process ${i + 1}, ${p.child.exitCode ?? p.child.signalCode ?? "running"}]\n${p.output().slice(-4000)}`).join("\n");
  try {
    // 1. The first sync runs at start; afterwards every work with an image gets a description.
    const run = await firstSync(url);
    expect(run.jobsQueued).toBe(5);
    const described = await waitUntil("every work with an image described", async () => {
      const r = await httpGql(url, ARTWORKS);
      const works = r.data!.artworks as any[];
      return works.filter((w) => w.image?.url).every((w) => w.currentDescription) ? works : null;
    }, 180_000);
    expect(described).toHaveLength(6);
    for (const w of described) {
      if (!w.image) {
        expect(w.qid).toBe("Q990001");
        expect(w.currentDescription).toBeNull();
        continue;
      }
      expect(w.currentDescription).toMatchObject({
        source: "MODEL",
        author: null,
        generation: { modelId: "test/tiny", device: "cpu", numBeams: 2, maxNewTokens: 24, minNewTokens: 0, earlyStopping: "true" },
      });
      expect(w.currentDescription.generation.dtypes).toHaveLength(3);
      expect(w.currentDescription.outcome.generatedTokens).toBeGreaterThan(0);
      expect(w.currentDescription.text.length).toBeGreaterThan(0);
    }
    const defaults = await httpGql(url, "{ generationDefaults { model { alive modelStatus modelId device } } }");
    expect(defaults.data!.generationDefaults.model).toEqual({ alive: true, modelStatus: "loaded", modelId: "test/tiny", device: "cpu" });

    // 2. Without the token: refused, nothing queued.
    const REGEN = `mutation($p: GenerationParamsInput) { regenerateDescription(id: "Q910001", params: $p, reason: "e2e") { __typename ... on Job { id } ... on Error { message } } }`;
    const params = { numBeams: 1, maxNewTokens: 16, minNewTokens: 16 };
    const jobsBefore = (await httpGql(url, "{ jobs(first: 100) { edges { node { number } } } }")).data!.jobs.edges.length;
    const refused = await httpGql(url, REGEN, { p: params });
    expect(refused.data!.regenerateDescription.__typename).toBe("UnauthorizedError");
    expect((await httpGql(url, "{ jobs(first: 100) { edges { node { number } } } }")).data!.jobs.edges.length).toBe(jobsBefore);

    // 3. With the token: a new version that becomes current, watched over SSE.
    const queued = await httpGql(url, REGEN, { p: params }, AUTH);
    expect(queued.errors).toBeUndefined();
    const jobId = queued.data!.regenerateDescription.id;
    expect(jobId).toBeTruthy();
    const stream = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ query: `subscription($id: ID!) { jobUpdated(id: $id) { status progress description { id text generation { numBeams maxNewTokens minNewTokens } } } }`, variables: { id: jobId } }),
    });
    const events = (await readEvents(stream)).map((e) => e.data.jobUpdated);
    const last = events.at(-1);
    expect(last).toMatchObject({ status: "SUCCEEDED", description: { generation: { numBeams: 1, maxNewTokens: 16, minNewTokens: 16 } } });
    const q1 = (await httpGql(url, `{ artwork(id: "Q910001") { ... on Artwork { currentDescription { id } descriptions { id } } } }`)).data!.artwork;
    expect(q1.currentDescription.id).toBe(last.description.id);
    expect(q1.descriptions).toHaveLength(2);

    // 4. A person's text survives the next nightly run.
    const set = await httpGql(url, `mutation { setDescription(id: "Q910002", text: "Written by a person.") { __typename } }`, {}, AUTH);
    expect(set.errors).toBeUndefined();
    expect(set.data!.setDescription.__typename).toBe("Description");
    await waitUntil("another nightly run", async () => {
      const r = await httpGql(url, "{ lastSyncRun { number status } }");
      return r.data?.lastSyncRun?.number > run.number && r.data.lastSyncRun.status === "SUCCEEDED";
    }, 60_000);
    await waitUntil("the queue to be empty", async () => {
      const r = await httpGql(url, "{ jobs(status: [QUEUED, RUNNING]) { edges { node { number } } } }");
      return r.data!.jobs.edges.length === 0;
    }, 60_000);
    const q2 = (await httpGql(url, `{ artwork(id: "Q910002") { ... on Artwork { description currentDescription { source } } } }`)).data!.artwork;
    expect(q2).toEqual({ description: "Written by a person.", currentDescription: { source: "HUMAN" } });
  } catch (err) {
    throw new Error(`${String(err)}\n--- process output ---\n${logs()}`);
  }
}

describe("end to end with the tiny model", { timeout: 240_000 }, () => {
  it("artdesc start alone: sync, nightly descriptions, regenerate, a person's text kept", async () => {
    const dir = mkdtempSync(join(tmpdir(), "artdesc-e2e-"));
    const start = spawnArtdesc(["start"], await environment(dir));
    try {
      await flow(`${await listeningBase(start)}/graphql`, [start]);
      expect(await start.stop("SIGTERM")).toBe(0);
    } finally {
      await start.stop("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("artdesc serve + artdesc daemon as separate processes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "artdesc-e2e-"));
    const env = await environment(dir);
    const serve = spawnArtdesc(["serve"], env);
    const daemon = spawnArtdesc(["daemon"], env);
    try {
      await flow(`${await listeningBase(serve)}/graphql`, [serve, daemon]);
      expect(await daemon.stop("SIGTERM")).toBe(0);
      expect(await serve.stop("SIGTERM")).toBe(0);
    } finally {
      await daemon.stop("SIGKILL");
      await serve.stop("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("without a model: the sync still runs, jobs wait, and the API says how to fetch the model", async () => {
    const dir = mkdtempSync(join(tmpdir(), "artdesc-e2e-"));
    const start = spawnArtdesc(["start"], { ...(await environment(dir)), MODEL_DIR: join(dir, "no-models") });
    try {
      const url = `${await listeningBase(start)}/graphql`;
      const run = await firstSync(url);
      expect(run.jobsQueued).toBe(5);
      const model = await waitUntil("the missing model in the heartbeat", async () => {
        const r = await httpGql(url, "{ generationDefaults { model { alive modelStatus modelError } } }");
        return r.data?.generationDefaults?.model?.modelStatus === "missing" ? r.data.generationDefaults.model : null;
      });
      expect(model.alive).toBe(true);
      expect(model.modelError).toMatch(/artdesc models pull --model test\/tiny/);
      const queued = await httpGql(url, "{ jobs(status: [QUEUED]) { edges { node { number } } } }");
      expect(queued.data!.jobs.edges).toHaveLength(5);
      expect(await start.stop("SIGTERM")).toBe(0);
    } catch (err) {
      throw new Error(`${String(err)}\n--- process output ---\n${start.output().slice(-4000)}`);
    } finally {
      await start.stop("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
