/**
 * A worker stand-in for lease-crash.test.ts: claims one describe job as a worker does, prints its
 * id, then hangs until killed. `node --import tsx test/hostile/lease-claim-child.ts <database url>`
 */
import { createDb } from "../../src/db.js";
import { holderId } from "../../src/jobs/lease.js";
import { claimJobs } from "../../src/jobs/queue.js";

const db = await createDb(process.argv[2]!);
const [job] = await claimJobs(db, holderId("worker"), { limit: 1, ttlMs: 60_000 });
process.stdout.write(`claimed ${job?.id ?? "nothing"}\n`);
setInterval(() => undefined, 60_000);
