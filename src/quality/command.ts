import type { Config } from "../config.js";
import type { Db } from "../db.js";
import { createLogger } from "../log.js";
import type { CommandIo } from "../ops/commands.js";
import { qualitySettings, recomputeQuality } from "./store.js";

/**
 * `artdesc quality recompute [--all]`: assesses descriptions written before quality signals
 * existed (or every one with --all, after the checks changed), measuring images' chroma on the
 * way. Exit code 1 when some could not be assessed (the log says why).
 */
export async function qualityRecomputeCommand(db: Db, config: Config, options: { all?: boolean }, io: CommandIo): Promise<number> {
  const log = createLogger(config.LOG_LEVEL).child({ component: "quality" });
  const summary = await recomputeQuality(db, qualitySettings(config), log, { all: options.all });
  const failed = summary.failed ? `, ${summary.failed} failed (see the log)` : "";
  io.stdout.write(`quality assessed: ${summary.assessed} descriptions${failed} in ${(summary.ms / 1000).toFixed(1)} s\n`);
  return summary.failed ? 1 : 0;
}
