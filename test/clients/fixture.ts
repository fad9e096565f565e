import { buildClientSchema, getIntrospectionQuery, type IntrospectionQuery, printSchema } from "graphql";
import { type Config, loadConfig } from "../../src/config.js";
import { enqueueDescribe } from "../../src/jobs/queue.js";
import { createHttpApp } from "../../src/server.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { addDescription, makeArtwork, makeGoya } from "../support/factories.js";
import { serveOnFreePort } from "../support/http.js";

/**
 * A listening artdesc (the real HTTP server, on 127.0.0.1) over a small store: six active works
 * by Goya, four of them with "donkey" in their current description, one with a history of three
 * descriptions, a deleted work, five queued jobs and three sync runs. The clients' tests talk
 * to it as any client would.
 */
export interface ClientWorld {
  t: TestDb;
  config: Config;
  /** The GraphQL endpoint, http://127.0.0.1:<port>/graphql. */
  url: string;
  /** QIDs of the active works, in id order (artworksConnection's order). */
  active: string[];
  /** QIDs of the works whose current description mentions a donkey. */
  donkeys: string[];
  /** The QID of the work with three descriptions, and those texts newest first. */
  history: { qid: string; texts: string[] };
  /** Job numbers, newest first (the order of `jobs`). */
  jobs: number[];
  /** Sync run ids, newest first. */
  syncRuns: number[];
  close(): Promise<void>;
}

export async function startClientWorld(env: Record<string, string> = {}): Promise<ClientWorld> {
  const t = await createTestDb();
  const config = loadConfig(env);
  const goya = await makeGoya(t.db);
  const texts = [
    "A donkey reads a book at a desk.",
    "Two women walk a dog along the river.",
    "A donkey in a doctor's coat takes a pulse.",
    "A grey donkey sits for its portrait.",
    "Witches fly over a sleeping man.",
    "A donkey teaches another donkey the alphabet.",
  ];
  const works = [];
  for (const [i, text] of texts.entries()) {
    const a = await makeArtwork(t.db, { qid: `Q${7001 + i}`, title: `Capricho ${i + 1}`, creators: [{ id: goya.id }] });
    await addDescription(t.db, a.id, text);
    works.push({ ...a, text });
  }
  const historyWork = works[4]!;
  await addDescription(t.db, historyWork.id, "Owls and bats fly over a man asleep at his desk.");
  await addDescription(t.db, historyWork.id, "A man sleeps at a desk while owls, bats and a lynx gather behind him.", "HUMAN");
  await makeArtwork(t.db, { qid: "Q7099", title: "Gone", creators: [{ id: goya.id }], state: "DELETED" });
  const jobs: number[] = [];
  for (const w of works.slice(0, 5)) {
    const image = await t.db.image.findFirstOrThrow({ where: { artworkId: w.id, isMain: true } });
    jobs.unshift((await enqueueDescribe(t.db, config, { artworkId: w.id, imageId: image.id, reason: "client test" })).job.id);
  }
  const syncRuns: number[] = [];
  for (let i = 0; i < 3; i++) {
    syncRuns.unshift((await t.db.syncRun.create({ data: { status: "SUCCEEDED", finishedAt: new Date(), seen: 7, created: i } })).id);
  }
  const { server } = createHttpApp({ db: t.db, config });
  const { base, close } = await serveOnFreePort(server);
  return {
    t,
    config,
    url: `${base}/graphql`,
    active: works.map((w) => w.qid),
    donkeys: works.filter((w) => /donkey/.test(w.text)).map((w) => w.qid),
    history: {
      qid: historyWork.qid,
      texts: ["A man sleeps at a desk while owls, bats and a lynx gather behind him.", "Owls and bats fly over a man asleep at his desk.", historyWork.text],
    },
    jobs,
    syncRuns,
    async close() {
      close();
      await t.close();
    },
  };
}

export interface HttpAnswer {
  status: number;
  contentType: string | null;
  body: { data?: any; errors?: { message: string; path?: unknown; extensions?: Record<string, unknown> }[] };
}

/** One GraphQL request over HTTP, POST (JSON body) or GET (query string), with the Accept header given. */
export async function post(
  url: string,
  payload: { query?: string; variables?: Record<string, unknown>; operationName?: string; extensions?: Record<string, unknown> },
  accept = "application/graphql-response+json",
): Promise<HttpAnswer> {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json", accept }, body: JSON.stringify(payload) });
  return { status: res.status, contentType: res.headers.get("content-type"), body: (await res.json()) as HttpAnswer["body"] };
}

export async function get(
  url: string,
  payload: { query?: string; variables?: Record<string, unknown>; extensions?: Record<string, unknown> },
  accept = "application/graphql-response+json",
): Promise<HttpAnswer> {
  const params = new URLSearchParams();
  if (payload.query != null) params.set("query", payload.query);
  if (payload.variables) params.set("variables", JSON.stringify(payload.variables));
  if (payload.extensions) params.set("extensions", JSON.stringify(payload.extensions));
  const res = await fetch(`${url}?${params}`, { headers: { accept } });
  return { status: res.status, contentType: res.headers.get("content-type"), body: (await res.json()) as HttpAnswer["body"] };
}

/** The schema the server serves, as SDL, read by introspection over HTTP as a client tool reads it. */
export async function liveSchemaSdl(url: string): Promise<string> {
  const r = await post(url, { query: getIntrospectionQuery() });
  if (r.status !== 200 || r.body.errors) throw new Error(`introspection failed: ${r.status} ${JSON.stringify(r.body.errors)}`);
  return printSchema(buildClientSchema(r.body.data as IntrospectionQuery));
}
