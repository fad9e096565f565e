/**
 * npm run bench:search — full-text search under load.
 *
 * Seeds a temporary database with 20,000 active artworks, each with a 150-word description,
 * through the same triggers that index a synced store; starts the real API (`artdesc serve`) on
 * 127.0.0.1 in its own process; checks one search answer; then autocannon sends a two-word
 * `search` query over 8 connections and prints the latency percentiles. Target: p99 < 50 ms.
 *
 * Options (environment): BENCH_ARTWORKS (20000), BENCH_SECONDS (15), BENCH_CONNECTIONS (8),
 * BENCH_QUERY ("woman dog").
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import { migrate } from "../src/store/migrate.js";
import { insertBulkArtworks } from "../test/support/bulk.js";

const ARTWORKS = Number(process.env.BENCH_ARTWORKS ?? 20_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8);
const QUERY = process.env.BENCH_QUERY ?? "woman dog";
const TARGET_P99_MS = 50;

const body = JSON.stringify({
  query: `query($q: String!) { search(query: $q, first: 10) {
    ... on QuerySearchConnection { edges { node { score snippet artwork { qid title } } } }
    ... on Error { message } } }`,
  variables: { q: QUERY },
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

async function waitForHealth(url: string, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`server did not answer ${url} within ${timeoutMs} ms`);
}

const dir = mkdtempSync(join(tmpdir(), "artdesc-bench-"));
const file = join(dir, "bench.db");
let server: ReturnType<typeof spawn> | undefined;
try {
  migrate(file);
  let t = Date.now();
  insertBulkArtworks(file, ARTWORKS, { words: 150 });
  console.log(`seeded ${ARTWORKS} artworks with 150-word descriptions (indexed by the triggers) in ${((Date.now() - t) / 1000).toFixed(1)} s`);

  const port = await freePort();
  server = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", "serve"], {
    // API_WORKERS: one API process per core, as bench:api runs it (README, "Configuration").
    env: { ...process.env, DATABASE_URL: `file:${file}`, HOST: "127.0.0.1", PORT: String(port), LOG_LEVEL: "warn", API_WORKERS: process.env.API_WORKERS ?? "2" },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const base = `http://127.0.0.1:${port}`;
  await waitForHealth(`${base}/health`);

  const check = (await (await fetch(`${base}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body })).json()) as {
    data?: { search?: { edges?: { node: { snippet: string | null } }[] } };
    errors?: unknown;
  };
  const edges = check.data?.search?.edges;
  if (!edges?.length) throw new Error(`the search query returned no hits: ${JSON.stringify(check)}`);
  console.log(`"${QUERY}": ${edges.length} hits on the first page; top snippet: ${edges[0]!.node.snippet?.slice(0, 100)}…`);

  // Warm-up: let the server's caches and JIT settle before measuring.
  await autocannon({ url: `${base}/graphql`, method: "POST", headers: { "content-type": "application/json" }, body, connections: 1, duration: 2 });
  // One connection: the time the server spends on one search, without queueing behind others.
  const single = await autocannon({ url: `${base}/graphql`, method: "POST", headers: { "content-type": "application/json" }, body, connections: 1, duration: 5 });
  console.log(
    `one connection, 5 s: ${single.requests.total} requests, latency p50 ${single.latency.p50} ms, p99 ${single.latency.p99} ms`,
  );
  await autocannon({ url: `${base}/graphql`, method: "POST", headers: { "content-type": "application/json" }, body, connections: CONNECTIONS, duration: 3 });
  t = Date.now();
  const r = await autocannon({
    url: `${base}/graphql`,
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
    connections: CONNECTIONS,
    duration: SECONDS,
  });
  const l = r.latency;
  console.log(
    `search "${QUERY}" (first: 10) over ${CONNECTIONS} connections for ${SECONDS} s: ${r.requests.total} requests, ` +
      `${r.requests.average.toFixed(0)} req/s, latency p50 ${l.p50} ms, p90 ${l.p90} ms, p99 ${l.p99} ms, max ${l.max} ms; ` +
      `errors ${r.errors}, timeouts ${r.timeouts}, non-2xx ${r.non2xx}`,
  );
  console.log(`load average during the run: ${loadavg().map((x) => x.toFixed(1)).join(", ")} on ${cpus().length} cores`);
  const ok = l.p99 < TARGET_P99_MS && r.errors === 0 && r.non2xx === 0;
  console.log(ok ? `OK: p99 ${l.p99} ms < ${TARGET_P99_MS} ms` : `MISSED: p99 ${l.p99} ms (target < ${TARGET_P99_MS} ms)`);
  process.exitCode = ok ? 0 : 1;
} finally {
  server?.kill("SIGTERM");
  if (server && server.exitCode == null) await new Promise((r) => server!.once("exit", r));
  rmSync(dir, { recursive: true, force: true });
}
