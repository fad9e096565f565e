import pino, { type Logger } from "pino";

export type { Logger };

/** JSON lines on stdout (one object per event), at LOG_LEVEL. */
export function createLogger(level: string, name = "artdesc"): Logger {
  return pino({ name, level, base: { pid: process.pid } });
}
