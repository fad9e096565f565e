/**
 * npm run bench:api — the API under load, as a user would run it.
 * Seeds 2,000 Goya artworks with 150-word descriptions into a fresh database, starts
 * `artdesc serve` (compiled, no response cache, API_WORKERS=2 unless set) as its own process, and drives
 * `artworks(creator: "Goya", limit: 100) { title description }` with autocannon at 32 and 8
 * connections. Targets on a 2-core machine: >= 250 req/s at 32 connections with no errors,
 * p99 < 100 ms at 8 connections.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import { closeDb, createDb } from "../src/db.js";
import { migrate } from "../src/store/migrate.js";
import { makeArtwork, makeGoya, words150 } from "../test/support/factories.js";
import { freePort, waitForHealth } from "../test/support/processes.js";
import { API_BENCH_QUERY } from "./queries.js";

const ARTWORKS = Number(process.env.BENCH_ARTWORKS ?? 2000);
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 15);

const dir = mkdtempSync(join(tmpdir(), "artdesc-bench-api-"));
const file = join(dir, "bench.db");
migrate(file);
const db = await createDb(`file:${file}`);
const goya = await makeGoya(db);
const t0 = Date.now();
for (let i = 0; i < ARTWORKS; i++) await makeArtwork(db, { creators: [{ id: goya.id }], description: words150(i) });
await closeDb(db);
console.log(`seeded ${ARTWORKS} artworks in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

const port = await freePort();
const server = spawn(process.execPath, ["bin/artdesc.js", "serve"], {
  // API_WORKERS: one API process per core (README, "Configuration").
  env: { ...process.env, DATABASE_URL: `file:${file}`, PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "warn", API_WORKERS: process.env.API_WORKERS ?? "2" },
  stdio: ["ignore", "inherit", "inherit"],
});
const url = `http://127.0.0.1:${port}`;
await waitForHealth(url, 10_000);

const body = JSON.stringify({ query: API_BENCH_QUERY });
const check = (await (await fetch(`${url}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body })).json()) as {
  data: { artworks: unknown[] };
};
if (check.data.artworks.length !== 100) throw new Error("unexpected answer");

async function run(connections: number) {
  const r = await autocannon({
    url: `${url}/graphql`,
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
    connections,
    duration: DURATION_S,
  });
  const errors = r.errors + r.timeouts + (r.non2xx ?? 0);
  console.log(
    `${connections} connections: ${r.requests.average.toFixed(0)} req/s, latency p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, errors ${errors}`,
  );
  return { rps: r.requests.average, p99: r.latency.p99, errors };
}

try {
  await run(8); // warm-up
  const at32 = await run(32);
  const at8 = await run(8);
  const ok = at32.rps >= 250 && at32.errors === 0 && at8.p99 < 100;
  console.log(`targets (>= 250 req/s at 32, no errors; p99 < 100 ms at 8): ${ok ? "met" : "NOT met"}`);
  process.exitCode = ok ? 0 : 1;
} finally {
  server.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
}
