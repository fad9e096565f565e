/**
 * A second process that claims describe jobs until none are left, as a worker would, and prints
 * each claimed id on its own line. Used by the concurrent-claims test: run with
 * `node --import tsx test/support/claim-child.ts <database url> <batch>`: it prints "ready" once its
 * database connection works, and starts claiming when a line comes on stdin (the test sends it to
 * every child at once, when all are ready, however long each took to start on a busy machine).
 */
import { closeDb, createDb } from "../../src/db.js";
import { holderId } from "../../src/jobs/lease.js";
import { claimJobs } from "../../src/jobs/queue.js";

const [url, batch = "1"] = process.argv.slice(2);
const db = await createDb(url!);
await db.job.count();
process.stdout.write("ready\n");
await new Promise((r) => process.stdin.once("data", r));
process.stdin.pause();
const holder = holderId("claim-child");
for (;;) {
  const jobs = await claimJobs(db, holder, { limit: Number(batch), ttlMs: 60_000 });
  if (jobs.length === 0) {
    // A claim that lost the race (or met a busy database) takes nothing: it stops only when no job
    // is left to claim, not after a few empty tries (which a busy moment made one process give up).
    if ((await db.job.count({ where: { status: "QUEUED" } })) === 0) break;
    await new Promise((r) => setTimeout(r, 20));
    continue;
  }
  for (const job of jobs) {
    process.stdout.write(`${job.id}\n`);
    await db.job.updateMany({ where: { id: job.id, holder, status: "RUNNING" }, data: { status: "SUCCEEDED", finishedAt: new Date() } });
  }
}
await closeDb(db);
