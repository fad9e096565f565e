/**
 * npm run bench:sync — a first full sync and a second, unchanged one against the local Wikidata
 * world with 2,000 works and 2,000 distinct images (1280 x 960 JPEG thumbnails, as Commons serves
 * for IMAGE_EDGE=1024). Targets: first < 60 s, second < 5 s.
 * The generated images are cached under the system temp folder, so later runs start quickly.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { loadConfig } from "../src/config.js";
import { closeDb, createDb } from "../src/db.js";
import { createLogger } from "../src/log.js";
import { migrate } from "../src/store/migrate.js";
import { runSync } from "../src/sync/sync.js";
import { GOYA } from "../test/support/wikidata-world/goya.js";
import { startWikidataWorld } from "../test/support/wikidata-world/index.js";
import { WorldModel } from "../test/support/wikidata-world/model.js";

const WORKS = Number(process.env.BENCH_WORKS ?? 2000);
const WIDTH = 1280;
const HEIGHT = 960;

/** A painting-like texture: blurred noise in a few base tints, plus a block that makes each file distinct. */
async function images(n: number): Promise<Buffer[]> {
  const cache = join(tmpdir(), "artdesc-bench-images-v1");
  mkdirSync(cache, { recursive: true });
  const bases: Buffer[] = [];
  for (let b = 0; b < 8; b++) {
    bases.push(
      await sharp({ create: { width: WIDTH, height: HEIGHT, channels: 3, background: "#000", noise: { type: "gaussian", mean: 60 + b * 20, sigma: 40 } } })
        .blur(2)
        .raw()
        .toBuffer(),
    );
  }
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const file = join(cache, `${i}.jpg`);
    try {
      out.push(readFileSync(file));
      continue;
    } catch {
      // not cached yet
    }
    const block = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: i % 256, g: (i >> 8) % 256, b: 200 } } }).png().toBuffer();
    const jpeg = await sharp(bases[i % bases.length]!, { raw: { width: WIDTH, height: HEIGHT, channels: 3 } })
      .composite([{ input: block, left: (i * 37) % (WIDTH - 64), top: (i * 53) % (HEIGHT - 64) }])
      .jpeg({ quality: 85 })
      .toBuffer();
    writeFileSync(file, jpeg);
    out.push(jpeg);
  }
  return out;
}

async function main() {
  const t0 = performance.now();
  const model = new WorldModel();
  model.items.set(GOYA, { en: "Francisco Goya", es: "Francisco de Goya" });
  for (const [q, en] of [["Q3305213", "painting"], ["Q134307", "portrait"], ["Q296955", "oil paint"], ["Q160236", "Museo del Prado"]] as const) {
    model.items.set(q, { en, es: en });
  }
  const files = await images(WORKS);
  for (let i = 0; i < WORKS; i++) {
    const file = `Goya bench ${i}.jpg`;
    model.setFile(`File:${file}`, { bytes: files[i]!, mime: "image/jpeg", width: WIDTH, height: HEIGHT });
    model.addWork({
      qid: `Q${2_000_000 + i}`,
      labels: { en: `Bench work ${i}`, es: `Obra ${i}` },
      creators: [i % 10 === 0 ? { value: "somevalue", qualifiers: { P1774: GOYA } } : { value: GOYA }],
      inception: { time: `+${1770 + (i % 55)}-00-00T00:00:00Z`, precision: 9 },
      links: { P31: ["Q3305213"], P136: ["Q134307"], P186: ["Q296955"], P195: ["Q160236"] },
      images: [{ file }],
      height: { amount: 100, unit: "Q174728" },
      width: { amount: 80, unit: "Q174728" },
    });
  }
  const world = await startWikidataWorld({ model, imageinfoPageLimit: 50 });
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
