/**
 * A second process that claims describe jobs until none are left, as a worker would, and prints
 * each claimed id on its own line. Used by the concurrent-claims test: run with
 * `node --import tsx test/support/claim-child.ts <database url> <batch> <start at, ms since epoch>`
 * (all children start claiming at the same moment).
 */
import { closeDb, createDb } from "../../src/db.js";
import { holderId } from "../../src/jobs/lease.js";
import { claimJobs } from "../../src/jobs/queue.js";

const [url, batch = "1", startAt = "0"] = process.argv.slice(2);
const db = await createDb(url!);
await new Promise((r) => setTimeout(r, Math.max(0, Number(startAt) - Date.now())));
const holder = holderId("claim-child");
for (let idle = 0; idle < 3; ) {
  const jobs = await claimJobs(db, holder, { limit: Number(batch), ttlMs: 60_000 });
  if (jobs.length === 0) {
    idle++;
    await new Promise((r) => setTimeout(r, 20));
    continue;
  }
  idle = 0;
  for (const job of jobs) {
    process.stdout.write(`${job.id}\n`);
    await db.job.updateMany({ where: { id: job.id, holder, status: "RUNNING" }, data: { status: "SUCCEEDED", finishedAt: new Date() } });
  }
}
await closeDb(db);
