/**
 * The process `artdesc start` forks for each of its syncs (syncInChildProcess in ./command.ts):
 * one syncOnce at background priority, under the sync lease taken in this process's name, with
 * the attempt reported to the parent over IPC. SIGTERM (or SIGINT) stops it as it stops
 * `artdesc sync`: the item in progress finishes and the run is recorded ABORTED; a second one
 * exits at once. When the parent is gone (its IPC channel closes: killed, crashed) it exits at
 * once, as the sync would have died with the parent before: the run it leaves RUNNING and its
 * lease are those of a dead process, recorded ABORTED and taken over by the next sync.
 */
import { closeDb } from "../db.js";
import { holderId } from "../jobs/lease.js";
import { exitOnConfigError, openRuntime } from "../runtime.js";
import { isSyncTrigger, type SyncChildMessage, syncOnce } from "./command.js";
import { runAtBackgroundPriority } from "./sync.js";

if (!process.send) {
  console.error("src/sync/child is the sync process of `artdesc start`; run `artdesc sync` instead");
  process.exit(2);
}
const orphaned = () => process.exit(1);
process.on("disconnect", orphaned);
// The channel may have closed while the modules loaded, before anyone listened.
if (!process.connected) orphaned();

const stop = new AbortController();
const onSignal = (signal: NodeJS.Signals) => {
  if (stop.signal.aborted) process.exit(130);
  stop.abort(new Error(signal));
};
process.on("SIGTERM", onSignal);
process.on("SIGINT", onSignal);

const send = (m: SyncChildMessage) =>
  new Promise<void>((resolve, reject) => process.send!(m, undefined, undefined, (err) => (err ? reject(err) : resolve())));

const trigger = process.argv[2];
if (!isSyncTrigger(trigger)) {
  console.error(`src/sync/child: not a sync trigger: ${JSON.stringify(trigger)}`);
  process.exit(2);
}
// Every thread, those already running (sharp's) and those started later.
runAtBackgroundPriority();
await send({ type: "ready" });

const rt = await openRuntime().catch(exitOnConfigError);
let status = 0;
try {
  const attempt = await syncOnce(rt, { trigger, holder: holderId("sync"), signal: stop.signal });
  await send({ type: "attempt", attempt });
} catch (err) {
  rt.log.error({ err, trigger }, "the sync process failed");
  status = 1;
} finally {
  await closeDb(rt.db);
}
// An HTTP agent's idle sockets or the IPC channel must not keep it alive.
process.exit(status);
