/**
 * A process that asks for the same descriptions many times from a given moment and prints the job
 * id it got each time: `node --import tsx test/support/enqueue-child.ts <database url> <artwork
 * ids, comma-separated> <their image ids, comma-separated> <start at, ms since epoch>`. Each work
 * is asked for three times in a row before the next, so processes started together race on each.
 */
import { loadConfig } from "../../src/config.js";
import { closeDb, createDb } from "../../src/db.js";
import { enqueueDescribe } from "../../src/jobs/queue.js";

const [url, artworkId, imageId, startAt = "0"] = process.argv.slice(2);
const db = await createDb(url!);
const config = loadConfig({});
await new Promise((r) => setTimeout(r, Math.max(0, Number(startAt) - Date.now())));
const images = imageId!.split(",").map(Number);
for (const [i, artwork] of artworkId!.split(",").map(Number).entries()) {
  for (let n = 0; n < 3; n++) {
    const { job } = await enqueueDescribe(db, config, { artworkId: artwork, imageId: images[i]!, params: { numBeams: 2 } });
    process.stdout.write(`${artwork} ${job.id}\n`);
  }
}
await closeDb(db);
