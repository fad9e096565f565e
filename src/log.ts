import pino, { type Logger } from "pino";

export type { Logger };

/**
 * JSON lines (one object per event), at LOG_LEVEL: on stdout, or on stderr for a one-off command
 * whose stdout is its answer (`artdesc sync`'s summary).
 */
export function createLogger(level: string, name = "artdesc", to: "stdout" | "stderr" = "stdout"): Logger {
  const options = { name, level, base: { pid: process.pid } };
  return to === "stderr" ? pino(options, pino.destination(2)) : pino(options);
}
