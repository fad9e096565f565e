/**
 * npm run bench:api — the API under load next to its floor, as a user would run it.
 * Seeds BENCH_ARTWORKS (2,000) Goya artworks with 150-word descriptions (one with a history of 20)
 * into a fresh database, then starts, each as its own processes on that one file:
 * - the floor (bench/floor.ts: node:http + better-sqlite3, one prepared statement per answer),
 * - `artdesc serve` with the response cache (the default),
 * - `artdesc serve` with GRAPHQL_RESPONSE_CACHE=false,
 * each with API_WORKERS processes (default 2; the floor forks as many). For each case (the
 * operations in bench/queries.ts) it first checks that the floor's body and both servers' bodies
 * are the same bytes, then drives each with autocannon at 8 and 32 connections for BENCH_SECONDS
 * (15) and prints req/s, p50/p99 and the ratio floor/API.
 * Targets at 32 connections: ratio <= 2.0 with p99 < 50 ms with the cache; ratio <= 3.0 without.
 * The load average is printed at the start and the end: on a shared machine, read it with them.
 *
 * BENCH_POSTGRES_URL (an empty PostgreSQL database): the seeded mirror is also copied there with
 * `artdesc db copy`, and `artdesc serve` on PostgreSQL (cache on and off) is measured in the same
 * run, side by side (the floor stays SQLite's; the PostgreSQL ratios are against it too).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import { closeDb, createDb } from "../src/db.js";
import { migrate } from "../src/store/migrate.js";
import { addDescription, makeArtwork, makeGoya, words150 } from "../test/support/factories.js";
import { freePort, waitForHealth, waitUntil } from "../test/support/processes.js";
import { API_ARTWORK_BENCH_QUERY, API_BENCH_QUERY, API_CONNECTION_BENCH_QUERY } from "./queries.js";

const ARTWORKS = Number(process.env.BENCH_ARTWORKS ?? 2000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? process.env.BENCH_DURATION_S ?? 15);
const WORKERS = process.env.API_WORKERS ?? "2";
const HISTORY = 20;
const POSTGRES_URL = process.env.BENCH_POSTGRES_URL;

const load = () => loadavg().map((l) => l.toFixed(2)).join(" ");
console.log(`load average at start: ${load()} (1, 5, 15 min)`);

const dir = mkdtempSync(join(tmpdir(), "artdesc-bench-api-"));
const file = join(dir, "bench.db");
migrate(file);
const db = await createDb(`file:${file}`);
const goya = await makeGoya(db);
const t0 = Date.now();
let historyQid = "";
for (let i = 0; i < ARTWORKS; i++) {
  const a = await makeArtwork(db, { creators: [{ id: goya.id }], description: words150(i) });
  if (i === 0) {
    historyQid = a.qid;
    for (let h = 1; h < HISTORY; h++) await addDescription(db, a.id, words150(ARTWORKS + h));
  }
}
await closeDb(db);
console.log(`seeded ${ARTWORKS} artworks (one with ${HISTORY} descriptions) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

const children: ChildProcess[] = [];
async function serve(name: string, env: Record<string, string>): Promise<string> {
  const port = await freePort();
  children.push(
    spawn(process.execPath, ["bin/artdesc.js", "serve"], {
      env: { ...process.env, DATABASE_URL: `file:${file}`, PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: process.env.LOG_LEVEL ?? "fatal", API_WORKERS: WORKERS, ...env },
      stdio: ["ignore", "inherit", "inherit"],
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  await waitForHealth(url, 30_000);
  console.log(`${name}: ${url}`);
  return url;
}

interface Case {
  name: string;
  query: string;
  variables: Record<string, unknown>;
  floorPath: string;
}
const cases: Case[] = [
  { name: 'artworks(creator: "Goya", limit: 100)', query: API_BENCH_QUERY, variables: {}, floorPath: "/artworks?creator=goya&limit=100" },
  { name: "artworksConnection(first: 100)", query: API_CONNECTION_BENCH_QUERY, variables: {}, floorPath: "/connection?first=100" },
  { name: "artwork(id) with history", query: API_ARTWORK_BENCH_QUERY, variables: { id: historyQid }, floorPath: `/artwork?id=${historyQid}&history=50` },
];

interface Target {
  name: string;
  request: (c: Case) => { url: string; method: "GET" | "POST"; headers?: Record<string, string>; body?: string };
}

async function body(target: Target, c: Case): Promise<string> {
  const r = target.request(c);
  const res = await fetch(r.url, { method: r.method, headers: r.headers, body: r.body });
  if (!res.ok) throw new Error(`${target.name} answered ${res.status} to ${c.name}`);
  return res.text();
}

interface Measured {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

async function measure(target: Target, c: Case, connections: number, duration = SECONDS): Promise<Measured> {
  const r = await autocannon({ ...target.request(c), connections, duration });
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts + (r.non2xx ?? 0) };
}

/** One after another (never at once: they share the cores). */
async function measureEach(targets: Target[], c: Case, connections: number): Promise<Measured[]> {
  const out: Measured[] = [];
  for (const target of targets) out.push(await measure(target, c, connections));
  return out;
}

/** Copies the seeded mirror into `url` with `artdesc db copy` and serves it twice (cache on, off). */
async function onPostgres(url: string): Promise<{ cached: string; uncached: string }> {
  const started = Date.now();
  const copy = spawn(process.execPath, ["bin/artdesc.js", "db", "copy", "--to", url], {
    env: { ...process.env, DATABASE_URL: `file:${file}`, LOG_LEVEL: "fatal" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let progress = "";
  copy.stderr!.on("data", (chunk: Buffer) => (progress = (progress + chunk.toString()).slice(-4000)));
  const code = await new Promise<number | null>((resolve) => copy.on("exit", resolve));
  if (code !== 0) throw new Error(`artdesc db copy --to PostgreSQL exited ${code}:\n${progress}`);
  console.log(`copied to PostgreSQL in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return {
    cached: await serve("API on PostgreSQL, response cache on", { DATABASE_URL: url }),
    uncached: await serve("API on PostgreSQL, response cache off", { DATABASE_URL: url, GRAPHQL_RESPONSE_CACHE: "false" }),
  };
}

try {
  const floorPort = await freePort();
  children.push(spawn(process.execPath, ["--import", "tsx", "bench/floor.ts", file, String(floorPort), WORKERS], { stdio: ["ignore", "inherit", "inherit"] }));
  const floorUrl = `http://127.0.0.1:${floorPort}`;
  await waitUntil("the floor server", async () => (await fetch(`${floorUrl}/connection?first=1`)).ok, 30_000);
  const cachedUrl = await serve("API, response cache on", {});
  const uncachedUrl = await serve("API, response cache off", { GRAPHQL_RESPONSE_CACHE: "false" });
  const postgres: { cached: string; uncached: string } | null = POSTGRES_URL ? await onPostgres(POSTGRES_URL) : null;

  const graphql = (name: string, base: string): Target => ({
    name,
    request: (c) => ({
      url: `${base}/graphql`,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: c.query, variables: c.variables }),
    }),
  });
  const floor: Target = { name: "floor", request: (c) => ({ url: `${floorUrl}${c.floorPath}`, method: "GET" }) };
  const targets = [floor, graphql("API (cache)", cachedUrl), graphql("API (no cache)", uncachedUrl)];
  if (postgres) targets.push(graphql("API on PostgreSQL (cache)", postgres.cached), graphql("API on PostgreSQL (no cache)", postgres.uncached));

  for (const c of cases) {
    const expected = await body(floor, c);
    for (const target of targets.slice(1)) {
      const got = await body(target, c);
      if (got !== expected) throw new Error(`${target.name} and the floor differ for ${c.name}:\n${got.slice(0, 300)}\n${expected.slice(0, 300)}`);
    }
    console.log(`${c.name}: the ${targets.length} bodies are equal (${Buffer.byteLength(expected)} bytes)`);
  }

  let met = true;
  console.log(`\n${SECONDS} s per run, API_WORKERS=${WORKERS} (the floor: as many processes)`);
  const pgColumns = postgres ? " PostgreSQL cached req/s (p99 ms, ratio) | PostgreSQL uncached req/s (p99 ms, ratio) |" : "";
  console.log(`| case | connections | floor req/s | API cached req/s (p99 ms, ratio) | API uncached req/s (p99 ms, ratio) |${pgColumns}`);
  console.log(`|---|---|---|---|---|${postgres ? "---|---|" : ""}`);
  for (const c of cases) {
    for (const target of targets) await measure(target, c, 8, Math.min(3, SECONDS)); // warm-up
    for (const connections of [8, 32]) {
      const [f, ...apis] = [await measure(floor, c, connections)].concat(await measureEach(targets.slice(1), c, connections));
      const ratio = (r: { rps: number }) => f!.rps / r.rps;
      const errors = f!.errors + apis.reduce((n, r) => n + r.errors, 0);
      const cells = apis.map((r) => `${r.rps.toFixed(0)} (${r.p99}, ${ratio(r).toFixed(2)})`);
      console.log(`| ${c.name} | ${connections} | ${f!.rps.toFixed(0)} (p99 ${f!.p99}) | ${cells.join(" | ")} |${errors ? ` errors: ${errors}` : ""}`);
      // The targets are SQLite's (the default); PostgreSQL's figures are reported beside them.
      const [cached, uncached] = apis as [Measured, Measured];
      if (connections === 32) met &&= ratio(cached) <= 2 && cached.p99 < 50 && ratio(uncached) <= 3 && errors === 0;
    }
  }
  console.log(`\nload average at the end: ${load()}`);
  console.log(`targets at 32 connections (cached: ratio <= 2.0, p99 < 50 ms; uncached: ratio <= 3.0; no errors): ${met ? "met" : "NOT met"}`);
  process.exitCode = met ? 0 : 1;
} finally {
  for (const child of children) child.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
}
