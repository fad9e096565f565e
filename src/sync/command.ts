import { holderId, withLease } from "../jobs/lease.js";
import { SYNC_LEASE, SYNC_LEASE_TTL_MS } from "../jobs/schedule.js";
import type { Runtime } from "../runtime.js";
import { requireContact } from "./http.js";
import { runSync, type SyncProgress, type SyncSummary } from "./sync.js";

export interface SyncCommandOptions {
  creators?: string[];
  full?: boolean;
  /** Where progress goes (default stderr). */
  out?: NodeJS.WriteStream;
  /** Where the summary goes (default stdout). */
  summaryOut?: NodeJS.WritableStream;
  /** How long to wait between looks at a lease another process holds. */
  waitPollMs?: number;
}

/**
 * `artdesc sync`: one run now. Waits while another process holds the sync lease, shows progress
 * (one rewritten line on a terminal, plain lines otherwise), prints a summary. SIGINT/SIGTERM
 * stop taking work; a second signal exits at once. Returns the process exit status.
 */
export async function syncCommand(rt: Runtime, options: SyncCommandOptions = {}): Promise<number> {
  const { db, config, log } = rt;
  requireContact(config.USER_AGENT_CONTACT);
  const out = options.out ?? process.stderr;
  const stop = new AbortController();
  const onSignal = (signal: string) => {
    if (stop.signal.aborted) process.exit(130);
    out.write(`\n${signal}: finishing the current item, then stopping (again to exit now)\n`);
    stop.abort(new Error(signal));
  };
  const onInt = () => onSignal("SIGINT");
  const onTerm = () => onSignal("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  const holder = holderId("sync-cli");
  const display = progressDisplay(out);
  try {
    let summary: SyncSummary | null = null;
    let told = false;
    while (!stop.signal.aborted) {
      const r = await withLease(db, SYNC_LEASE, holder, SYNC_LEASE_TTL_MS, (leaseLost) =>
        runSync(
          { db, config, log },
          { creators: options.creators, full: options.full, trigger: "manual", holder, signal: AbortSignal.any([stop.signal, leaseLost]), onProgress: display },
        ),
      );
      if (r.acquired) {
        summary = r.result;
        break;
      }
      if (!told) out.write(`another process is syncing (${r.holder ?? "finishing"}); waiting for it\n`);
      told = true;
      await new Promise((resolve) => setTimeout(resolve, options.waitPollMs ?? 2_000));
    }
    if (!summary) return 130;
    (options.summaryOut ?? process.stdout).write(formatSummary(summary));
    return summary.status === "SUCCEEDED" ? 0 : 1;
  } finally {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
  }
}

function progressDisplay(out: NodeJS.WriteStream): (p: SyncProgress) => void {
  const tty = out.isTTY === true;
  let lastLine = "";
  let lastPhase = "";
  let lastDecile = -1;
  return (p) => {
    const line = `${p.phase.padEnd(9)} works ${p.worksDone}/${p.worksTotal}  images ${p.imagesDone}/${p.imagesTotal}`;
    if (tty) {
      if (line !== lastLine) out.write(`\r${line}\x1b[K${p.phase === "done" ? "\n" : ""}`);
    } else {
      // Plain lines for logs: one per phase and one per tenth of the work.
      const total = p.worksTotal + p.imagesTotal;
      const decile = total ? Math.floor(((p.worksDone + p.imagesDone) / total) * 10) : 0;
      if (p.phase !== lastPhase || decile !== lastDecile) out.write(`${line}\n`);
      lastDecile = decile;
    }
    lastPhase = p.phase;
    lastLine = line;
  };
}

export function formatSummary(s: SyncSummary): string {
  const rows = [
    `sync run ${s.runId}: ${s.status}${s.full ? " (full)" : ""}`,
    `  works:  ${s.seen} seen, ${s.created} new, ${s.updated} updated, ${s.unchanged} unchanged, ${s.removed} left the inventory, ${s.skippedNoImage} without image`,
    `  images: ${s.imagesDownloaded} downloaded, ${s.imagesUnchanged} unchanged`,
    `  failed: ${s.failed}${s.failed ? " (see syncRuns { failures } in GraphQL)" : ""}`,
  ];
  if (s.error) rows.push(`  error:  ${s.error}`);
  return rows.join("\n") + "\n";
}
