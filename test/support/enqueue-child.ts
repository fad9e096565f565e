/**
 * A process that asks for the same description many times at a given moment and prints the job id
 * it got each time: `node --import tsx test/support/enqueue-child.ts <database url> <artwork id>
 * <image id> <start at, ms since epoch>`.
 */
import { loadConfig } from "../../src/config.js";
import { closeDb, createDb } from "../../src/db.js";
import { enqueueDescribe } from "../../src/jobs/queue.js";

const [url, artworkId, imageId, startAt = "0"] = process.argv.slice(2);
const db = await createDb(url!);
const config = loadConfig({});
await new Promise((r) => setTimeout(r, Math.max(0, Number(startAt) - Date.now())));
for (let i = 0; i < 20; i++) {
  const { job } = await enqueueDescribe(db, config, { artworkId: Number(artworkId), imageId: Number(imageId), params: { numBeams: 2 } });
  process.stdout.write(`${job.id}\n`);
}
await closeDb(db);
