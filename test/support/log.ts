import { Writable } from "node:stream";
import pino from "pino";
import type { Logger } from "../../src/log.js";

/** A real pino logger whose lines land, parsed, in `lines`: for tests that check what was logged. */
export function capturingLogger(level = "info"): { lines: Record<string, unknown>[]; log: Logger } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, log: pino({ level }, stream) };
}
