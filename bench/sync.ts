/**
 * npm run bench:sync — a first full sync and a second, unchanged one against the local Wikidata
 * world with 2,000 works and 2,000 distinct images (1280 x 960 JPEG thumbnails, as Commons serves
 * for IMAGE_EDGE=1024). Targets: first < 60 s, second < 5 s.
 * The world is bench/world.ts's (its images are cached under the system temp folder).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../src/config.js";
import { closeDb, createDb } from "../src/db.js";
import { createLogger } from "../src/log.js";
import { migrate } from "../src/store/migrate.js";
import { runSync } from "../src/sync/sync.js";
import { startBenchWorld } from "./world.js";

const WORKS = Number(process.env.BENCH_WORKS ?? 2000);

async function main() {
  const t0 = performance.now();
  const { world, files } = await startBenchWorld(WORKS);
  const dir = mkdtempSync(join(tmpdir(), "artdesc-bench-sync-"));
  const file = join(dir, "bench.db");
  migrate(file);
  const config = loadConfig({ ...world.env, IMAGE_EDGE: "1024", HTTP_TIMEOUT_MS: "30000", DATABASE_URL: `file:${file}`, IMAGE_DIR: join(dir, "images") });
  const db = await createDb(config.DATABASE_URL);
  const log = createLogger("warn");
  console.log(`world: ${WORKS} works, ${WORKS} images (${(files.reduce((s, f) => s + f.length, 0) / 1e6).toFixed(0)} MB) ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`machine: ${availableParallelism()} cores, DOWNLOAD_CONCURRENCY=${config.DOWNLOAD_CONCURRENCY}, IMAGE_EDGE=${config.IMAGE_EDGE}`);

  try {
    for (const label of ["first (full) sync", "second (unchanged) sync"]) {
      const before = world.requests.length;
      const start = performance.now();
      const cpu0 = process.cpuUsage();
      const phases: string[] = [];
      let phase = "";
      const r = await runSync(
        { db, config, log },
        {
          onProgress: (p) => {
            if (p.phase !== phase) phases.push(`${p.phase} at ${((performance.now() - start) / 1000).toFixed(1)} s`);
            phase = p.phase;
          },
        },
      );
      const s = (performance.now() - start) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const cpuS = (cpu.user + cpu.system) / 1e6;
      const sent = world.requests.slice(before);
      const by = (k: string) => sent.filter((x) => x.target === k).length;
      console.log(
        `${label}: ${s.toFixed(1)} s (CPU ${cpuS.toFixed(1)} s, this process, world included; load average ${loadavg()[0]!.toFixed(1)}) — ${r.status}, ${r.created} new, ${r.unchanged} unchanged, ${r.imagesDownloaded} images downloaded, ${r.failed} failed; ` +
          `requests: ${by("sparql")} SPARQL, ${by("wikidata")} wbgetentities, ${by("commons")} imageinfo, ${by("image")} image\n  phases: ${phases.join(", ")}`,
      );
    }
  } finally {
    await closeDb(db);
    await world.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
