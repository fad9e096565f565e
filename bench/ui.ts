/**
 * npm run bench:ui — the workbench under load, as a user would run it.
 * Seeds 60 Goya works with stored images (thumbnails made beforehand, as after a first visit) and
 * one work with 10 versions of history into a fresh database, starts `artdesc serve` (compiled,
 * API_WORKERS=1 unless set) as its own process, and drives the collection page `/` and the
 * artwork page `/artworks/<QID>` with autocannon at 8 connections. Target: p99 < 100 ms each.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import { loadConfig } from "../src/config.js";
import { closeDb, createDb } from "../src/db.js";
import { createLogger } from "../src/log.js";
import { migrate } from "../src/store/migrate.js";
import { Thumbnails } from "../src/web/thumbs.js";
import { addDescription, makeArtwork, makeGoya, words150 } from "../test/support/factories.js";
import { freePort, waitForHealth } from "../test/support/processes.js";
import { storePaintingImage } from "../test/web/support.js";

const WORKS = 60;
const VERSIONS = 10;
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 15);
const HISTORY_QID = "Q930000";

const dir = mkdtempSync(join(tmpdir(), "artdesc-bench-ui-"));
const file = join(dir, "bench.db");
const imageDir = join(dir, "images");
migrate(file);
const db = await createDb(`file:${file}`);
const goya = await makeGoya(db);
const t0 = Date.now();
const thumbs = new Thumbnails(loadConfig({ IMAGE_DIR: imageDir }), createLogger("warn"));
for (let i = 0; i < WORKS; i++) {
  const a = await makeArtwork(db, { qid: i === 0 ? HISTORY_QID : `Q${930000 + i}`, title: `Painting ${i}`, creators: [{ id: goya.id }], description: words150(i) });
  const hash = await storePaintingImage(db, imageDir, a.id, i + 1);
  for (const w of [160, 320, 640] as const) await thumbs.get(hash, w);
  if (i === 0) for (let v = 1; v < VERSIONS; v++) await addDescription(db, a.id, words150(i + v), v % 2 ? "HUMAN" : "MODEL");
}
await closeDb(db);
console.log(`seeded ${WORKS} works with images and thumbnails (one with ${VERSIONS} versions) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

const port = await freePort();
const server = spawn(process.execPath, ["bin/artdesc.js", "serve"], {
  env: { ...process.env, DATABASE_URL: `file:${file}`, IMAGE_DIR: imageDir, PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "warn", API_WORKERS: process.env.API_WORKERS ?? "1" },
  stdio: ["ignore", "inherit", "inherit"],
});
const url = `http://127.0.0.1:${port}`;
await waitForHealth(url, 10_000);

const collection = await (await fetch(`${url}/`)).text();
if ((collection.match(/class="card"/g) ?? []).length !== WORKS) throw new Error("the collection page does not show 60 works");
const artwork = await (await fetch(`${url}/artworks/${HISTORY_QID}`)).text();
if ((artwork.match(/class="version/g) ?? []).length !== VERSIONS) throw new Error(`the artwork page does not show ${VERSIONS} versions`);

async function run(name: string, path: string, connections: number) {
  const r = await autocannon({ url: `${url}${path}`, connections, duration: DURATION_S });
  const errors = r.errors + r.timeouts + (r.non2xx ?? 0);
  console.log(`${name} (${path}), ${connections} connections: ${r.requests.average.toFixed(0)} req/s, latency p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, errors ${errors}`);
  return { p99: r.latency.p99, errors };
}

try {
  await run("warm-up", "/", 8);
  const page = await run("collection", "/", 8);
  const work = await run("artwork", `/artworks/${HISTORY_QID}`, 8);
  const ok = page.p99 < 100 && work.p99 < 100 && page.errors === 0 && work.errors === 0;
  console.log(`target (p99 < 100 ms at 8 connections, no errors): ${ok ? "met" : "NOT met"}`);
  process.exitCode = ok ? 0 : 1;
} finally {
  server.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
}
