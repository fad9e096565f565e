import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, expect, it } from "vitest";
import { writeTransaction } from "../../src/db.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { addDescription, makeArtwork, makeCreator, makeGoya } from "../support/factories.js";
import { type ArtdescProcess, listeningBase, spawnArtdesc, waitForHealth } from "../support/processes.js";

/**
 * The response cache never serves an answer made before a commit, whoever commits: `artdesc serve`
 * (two API processes, each with its own cache) answers and keeps; the commit comes through the
 * server itself, from this test process's own Prisma client (another process to the server), from a
 * third process writing SQL directly, or as a sync does (one transaction of several writes). Every
 * request sent after the commit has returned must see it.
 */
const TOKEN = "s".repeat(32);
const LIST = '{ artworks(creator: "Goya", limit: 100) { qid title description } }';
const ONE = "query($id: ID!) { artwork(id: $id) { ... on Artwork { title description descriptions { text } } } }";
const CONNECTION = "{ artworksConnection(first: 50) { totalCount edges { node { qid title } } } }";

let t: TestDb;
let serve: ArtdescProcess;
let url: string;
let goyaId: number;

beforeAll(async () => {
  t = await createTestDb();
  goyaId = (await makeGoya(t.db)).id;
  for (let i = 0; i < 5; i++) await makeArtwork(t.db, { qid: `Q${9100 + i}`, creators: [{ id: goyaId }], description: `First text ${i}.` });
  serve = spawnArtdesc(["serve"], {
    DATABASE_URL: t.url,
    IMAGE_DIR: `${t.dir}/images`,
    PORT: "0",
    HOST: "127.0.0.1",
    API_TOKEN: TOKEN,
    API_WORKERS: "2",
    // info, for the "API listening" line the port is read from.
    LOG_LEVEL: "info",
  });
  url = await listeningBase(serve);
  await waitForHealth(url, 60_000);
}, 90_000);

afterAll(async () => {
  await serve?.stop();
  await t?.close();
});

async function post(query: string, variables: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: any; errors?: unknown[] };
  expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
  return body.data;
}

/**
 * Asks `times` times on fresh connections (so both API processes answer) and returns every
 * answer: before a commit this fills both caches, after it every one must be new.
 */
async function askEverywhere(query: string, variables: Record<string, unknown> = {}, times = 6) {
  return Promise.all(Array.from({ length: times }, () => post(query, variables, { connection: "close" })));
}

/** SQL run by another process with its own connection (as `artdesc sync` or sqlite3 would). */
function writeFromAnotherProcess(sql: string, ...params: (string | number)[]) {
  const script = `const Database = require("better-sqlite3"); const db = new Database(process.argv[1], { timeout: 10000 });
    db.prepare(process.argv[2]).run(...JSON.parse(process.argv[3])); db.close();`;
  execFileSync(process.execPath, ["-e", script, t.file, sql, JSON.stringify(params)], { cwd: process.cwd(), stdio: "pipe" });
}

it("shows a description set through the server itself at the next request", async () => {
  await askEverywhere(ONE, { id: "Q9100" });
  await askEverywhere(LIST);
  const set = await post(
    "mutation($id: ID!, $text: String!) { setDescription(id: $id, text: $text) { ... on Description { text } ... on Error { message } } }",
    { id: "Q9100", text: "A person wrote this." },
    { authorization: `Bearer ${TOKEN}` },
  );
  expect(set.setDescription.text).toBe("A person wrote this.");
  for (const a of await askEverywhere(ONE, { id: "Q9100" })) {
    expect(a.artwork.description).toBe("A person wrote this.");
    expect(a.artwork.descriptions[0].text).toBe("A person wrote this.");
  }
  for (const a of await askEverywhere(LIST)) expect(a.artworks.find((w: any) => w.qid === "Q9100").description).toBe("A person wrote this.");
});

it("shows a write by another process (its own SQLite connection) at the next request", async () => {
  await askEverywhere(ONE, { id: "Q9101" });
  await askEverywhere(CONNECTION);
  writeFromAnotherProcess("UPDATE Artwork SET title = ? WHERE qid = ?", "Written elsewhere", "Q9101");
  for (const a of await askEverywhere(ONE, { id: "Q9101" })) expect(a.artwork.title).toBe("Written elsewhere");
  for (const a of await askEverywhere(CONNECTION)) expect(a.artworksConnection.edges.map((e: any) => e.node.title)).toContain("Written elsewhere");
  writeFromAnotherProcess(
    "UPDATE Description SET text = ? WHERE id = (SELECT currentDescriptionId FROM Artwork WHERE qid = ?)",
    "Corrected elsewhere.",
    "Q9101",
  );
  for (const a of await askEverywhere(LIST)) expect(a.artworks.find((w: any) => w.qid === "Q9101").description).toBe("Corrected elsewhere.");
});

it("shows a sync-like transaction (works added, removed, a creator added) at the next request", async () => {
  const before = await askEverywhere(CONNECTION);
  const total = before[0].artworksConnection.totalCount;
  await askEverywhere(LIST);
  // Another process's Prisma client (this test's), one transaction, as a sync writes.
  await writeTransaction(t.db, async (tx) => {
    await tx.artwork.update({ where: { qid: "Q9104" }, data: { state: "DELETED" } });
    await tx.artwork.update({ where: { qid: "Q9103" }, data: { title: "Renamed by the sync" } });
  });
  const workshop = await makeCreator(t.db, { labels: { en: "Workshop of Goya" } });
  const added = await makeArtwork(t.db, { qid: "Q9200", creators: [{ id: workshop.id }] });
  await addDescription(t.db, added.id, "Added by the sync.");
  for (const a of await askEverywhere(CONNECTION)) expect(a.artworksConnection.totalCount).toBe(total);
  for (const a of await askEverywhere(LIST)) {
    const qids = a.artworks.map((w: any) => w.qid);
    expect(qids).not.toContain("Q9104");
    // The creator lookup behind `creator: "Goya"` sees the new creator too.
    expect(qids).toContain("Q9200");
    expect(a.artworks.find((w: any) => w.qid === "Q9103").title).toBe("Renamed by the sync");
  }
});

it("never answers from before a commit while requests and commits interleave", async () => {
  let stop = false;
  // Readers that keep filling both caches while the writes land.
  const readers = Array.from({ length: 4 }, async () => {
    while (!stop) await post(ONE, { id: "Q9102" });
  });
  try {
    for (let i = 0; i < 15; i++) {
      const title = `Version ${i}`;
      if (i % 2) writeFromAnotherProcess("UPDATE Artwork SET title = ? WHERE qid = ?", title, "Q9102");
      else await t.db.artwork.update({ where: { qid: "Q9102" }, data: { title } });
      // Sent after the commit returned: each must see it, from whichever process answers.
      const answers = await askEverywhere(ONE, { id: "Q9102" }, 4);
      for (const a of answers) expect(a.artwork.title, `after write ${i}`).toBe(title);
    }
    // /health does not queue behind GraphQL answers.
    const started = performance.now();
    expect((await fetch(`${url}/health`)).ok).toBe(true);
    expect(performance.now() - started).toBeLessThan(2_000);
  } finally {
    stop = true;
    await Promise.all(readers);
  }
}, 120_000);
