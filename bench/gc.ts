/**
 * npm run bench:gc — the garbage a request leaves for V8's collector, per kind of request.
 *
 * A request's objects should die young: a scavenge copies what is still alive, and what survives
 * two is promoted into the old heap, where only a slower mark-compact frees it. Every API process
 * pauses for its scavenges, so promoted bytes lengthen every request's tail, not only the one that
 * made them (BENCHMARKS.md, "Yoga's second body limit").
 *
 * Seeds a temporary database with BENCH_ARTWORKS active artworks (150-word descriptions, a random
 * vector each, the 384-dimension synthetic embedding model), then starts `artdesc serve` with one
 * API process (API_WORKERS=1, with the Node flags a forked API process gets) under --trace-gc-nvp,
 * and sends one request at a time, BENCH_REQUESTS of each kind, after a warm-up (at least 300, and
 * until the main thread has scavenged twice):
 *  - POST `{ __typename }`: the cost of HTTP and GraphQL alone;
 *  - `artworks(creator: $q, limit: 1)` with a new $q every request (so never answered from the
 *    response cache), by GET and by POST: the difference is what reading a POST body costs;
 *  - POST search, TEXT, a new query every request (the bench:search operation);
 *  - POST search, HYBRID, a new query every request.
 * For each: the round trip, and the main thread's scavenges (count and mean pause), mark-compacts
 * and bytes promoted per request (the embedding thread's collections are left out).
 * Target: POST `{ __typename }` promotes at most 2 kB per request.
 *
 * Options (environment): BENCH_ARTWORKS (20000), BENCH_REQUESTS (3000).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { apiProcessExecArgv } from "../src/api/component.js";
import { DEFAULT_EMBED_MODEL_DTYPE } from "../src/config.js";
import { type EmbedSynthDtype, synthEmbedModel } from "../src/describe/models/embed-synth.js";
import { vectorModelId } from "../src/embed/model-files.js";
import { migrate } from "../src/store/migrate.js";
import { insertBulkArtworks } from "../test/support/bulk.js";
import { type GcEvent, parseGcTrace } from "../test/support/gc-trace.js";
import { freePort, waitForHealth } from "../test/support/processes.js";
import { serverAllocatorEnv } from "./allocator.js";
import { distinctQueries, SEARCH_BENCH_QUERY } from "./queries.js";
import { insertRandomVectors } from "./vectors.js";

const ARTWORKS = Number(process.env.BENCH_ARTWORKS ?? 20_000);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 3_000);
const WARM_UP = 300;
/** Requests at most to warm up one kind (waiting for two scavenges). */
const MAX_WARM_UP = 20_000;
/** Scavenges a kind must run through for its promoted bytes to mean something (each promotes what the requests then in flight, and older, hold). */
const MIN_SCAVENGES = 3;
/** Promoted bytes per POST `{ __typename }` allowed: what HTTP and GraphQL leave, with no resolver of ours. */
const TARGET_FLOOR_PROMOTED_BYTES = 2 * 1024;
/** A light query whose answer is never kept (a new creator name each time, matching nobody): sent both ways, it shows what a POST body costs. */
const BY_CREATOR = "query($q: String!) { artworks(creator: $q, limit: 1) { qid } }";
const EMBED_MODEL_ID = "artdesc/synth-embed-e5-small";
const EMBED_DTYPE = DEFAULT_EMBED_MODEL_DTYPE as EmbedSynthDtype;

const dir = mkdtempSync(join(tmpdir(), "artdesc-bench-gc-"));
const file = join(dir, "bench.db");
const modelDir = join(dir, "models");
let server: ReturnType<typeof spawn> | undefined;
let floor: "met" | "missed" | "too few scavenges" = "too few scavenges";
try {
  migrate(file);
  insertBulkArtworks(file, ARTWORKS, { words: 150 });
  synthEmbedModel({ preset: "embed-e5-small", outDir: join(modelDir, EMBED_MODEL_ID), dtype: EMBED_DTYPE });
  insertRandomVectors(file, vectorModelId(EMBED_MODEL_ID, EMBED_DTYPE), 384);
  console.log(`seeded ${ARTWORKS} artworks with descriptions and vectors; ${REQUESTS} requests of each kind, one at a time`);

  const port = await freePort();
  server = spawn(process.execPath, [...apiProcessExecArgv([], process.env.NODE_OPTIONS), "--trace-gc-nvp", "bin/artdesc.js", "serve"], {
    env: {
      ...process.env,
      DATABASE_URL: `file:${file}`,
      HOST: "127.0.0.1",
      PORT: String(port),
      LOG_LEVEL: "warn",
      API_WORKERS: "1",
      MODEL_DIR: modelDir,
      EMBED_MODEL_ID,
      ...serverAllocatorEnv(),
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let trace = "";
  server.stdout!.setEncoding("utf8").on("data", (d: string) => (trace += d));
  const base = `http://127.0.0.1:${port}`;
  await waitForHealth(base);

  const words = distinctQueries();
  let next = 0;
  const post = (body: unknown) => fetch(`${base}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const kinds: [string, () => Promise<Response>][] = [
    ["POST { __typename }", () => post({ query: "{ __typename }" })],
    ["GET artworks(creator: $q)", () => fetch(`${base}/graphql?query=${encodeURIComponent(BY_CREATOR)}&variables=${encodeURIComponent(JSON.stringify({ q: words[next++ % words.length] }))}`)],
    ["POST artworks(creator: $q)", () => post({ query: BY_CREATOR, variables: { q: words[next++ % words.length] } })],
    ["POST search TEXT, a new query", () => post({ query: SEARCH_BENCH_QUERY, variables: { q: words[next++ % words.length], mode: "TEXT" } })],
    ["POST search HYBRID, a new query", () => post({ query: SEARCH_BENCH_QUERY, variables: { q: words[next++ % words.length], mode: "HYBRID" } })],
  ];
  const mainIsolate = parseGcTrace(trace)[0]?.isolate;
  if (!mainIsolate) throw new Error("the server printed no --trace-gc-nvp line while starting");
  for (const [label, ask] of kinds) {
    const once = async () => {
      const res = await ask();
      const answer = (await res.json()) as { errors?: unknown };
      if (!res.ok || answer.errors) throw new Error(`${label}: HTTP ${res.status} ${JSON.stringify(answer.errors)}`);
    };
    // Warm up until the main thread has scavenged twice: what the previous kind (or the start)
    // left half-aged is promoted then, not counted against this kind.
    const warmUpFrom = trace.length;
    const scavenged = () => parseGcTrace(trace.slice(warmUpFrom)).filter((e) => e.isolate === mainIsolate && e.kind === "s").length;
    for (let i = 0; i < MAX_WARM_UP && (i < WARM_UP || scavenged() < 2); i++) await once();
    // Let a scavenge that the warm-up started print before the mark.
    await new Promise((r) => setTimeout(r, 200));
    const mark = trace.length;
    const started = performance.now();
    for (let i = 0; i < REQUESTS; i++) await once();
    const ms = (performance.now() - started) / REQUESTS;
    await new Promise((r) => setTimeout(r, 200));
    // The embedding thread (and any other worker) traces its own isolate's collections: only the
    // main thread's are counted, the isolate that collected first, while the process was loading.
    const events = parseGcTrace(trace.slice(mark)).filter((e) => e.isolate === mainIsolate);
    const scavenges = events.filter((e) => e.kind === "s");
    const majors = events.filter((e) => e.kind !== "s");
    const promoted = events.reduce((n, e) => n + e.promoted, 0) / REQUESTS;
    const pause = (list: GcEvent[]) => (list.length ? list.reduce((n, e) => n + e.pauseMs, 0) / list.length : 0).toFixed(1);
    console.log(
      `${label.padEnd(33)} ${ms.toFixed(2)} ms a request; scavenges ${scavenges.length} (mean pause ${pause(scavenges)} ms), ` +
        `mark-compacts ${majors.length} (mean pause ${pause(majors)} ms); promoted ${(promoted / 1024).toFixed(1)} kB a request`,
    );
    if (label.startsWith("POST { __typename }")) floor = scavenges.length < MIN_SCAVENGES ? "too few scavenges" : promoted <= TARGET_FLOOR_PROMOTED_BYTES ? "met" : "missed";
  }
  console.log(`load average ${loadavg().map((l) => l.toFixed(1)).join(", ")}`);
  console.log(
    floor === "met"
      ? `OK: POST { __typename } promotes at most ${TARGET_FLOOR_PROMOTED_BYTES / 1024} kB a request`
      : floor === "missed"
        ? `MISSED: POST { __typename } promotes more than ${TARGET_FLOOR_PROMOTED_BYTES / 1024} kB a request`
        : `NOT MEASURED: POST { __typename } ran through fewer than ${MIN_SCAVENGES} scavenges; raise BENCH_REQUESTS`,
  );
} finally {
  server?.kill("SIGTERM");
  if (server && server.exitCode == null) await new Promise((r) => server!.once("exit", r));
  rmSync(dir, { recursive: true, force: true });
}
process.exitCode = floor === "met" ? 0 : 1;
