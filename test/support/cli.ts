import { type ChildProcess, spawn } from "node:child_process";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";

/** The compiled CLI, as bin/artdesc.js runs it (vitest's global setup, test/support/build-cli.ts, compiles it when src/ changed). */
export const ARTDESC_CLI = fileURLToPath(new URL("../../dist/cli.js", import.meta.url));
export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface CliProcess {
  child: ChildProcess;
  output: () => string;
  /** Resolves with the first stdout/stderr line matching `pattern`. */
  waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<string>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs `artdesc <args>` (the compiled CLI) as a separate process. */
export function runCli(args: string[], env: Record<string, string>): CliProcess {
  const child = spawn(process.execPath, [ARTDESC_CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  const onData = (chunk: Buffer) => {
    out += chunk.toString();
    for (const w of [...waiters]) {
      const line = out.split("\n").find((l) => w.pattern.test(l));
      if (line) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    output: () => out,
    exit,
    waitFor: (pattern, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const line = out.split("\n").find((l) => pattern.test(l));
        if (line) return resolve(line);
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}; output:\n${out}`)), timeoutMs);
        waiters.push({ pattern, resolve: (l) => (clearTimeout(timer), resolve(l)) });
        void exit.then(() => setTimeout(() => reject(new Error(`process exited before ${pattern}; output:\n${out}`)), 50));
      }),
  };
}

/** Collects what an in-process command (src/ops/commands.ts) writes, as text. */
export class TextSink extends Writable {
  text = "";
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void) {
    this.text += chunk.toString();
    cb();
  }
}

/** stdout and stderr for an in-process command. */
export function commandIo(): { stdout: TextSink; stderr: TextSink } {
  return { stdout: new TextSink(), stderr: new TextSink() };
}
