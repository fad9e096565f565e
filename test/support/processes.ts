import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ARTDESC_CLI } from "./cli.js";
import { synthModel } from "../../src/describe/models/synth.js";

/** An `artdesc` command in a child process (the compiled CLI, test/support/cli.ts's ARTDESC_CLI). */
export interface ArtdescProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

export function spawnArtdesc(args: string[], env: Record<string, string>): ArtdescProcess {
  const child = spawn(process.execPath, [ARTDESC_CLI, ...args], {
    env: { PATH: process.env.PATH ?? "", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? -1)));
  return {
    child,
    output: () => out,
    exited,
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function waitUntil<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const until = Date.now() + timeoutMs;
  let lastError: unknown = null;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${lastError ? `: ${String(lastError)}` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * The base URL (http://host:port) of the API a spawned `artdesc serve|start` listens on, read from
 * its "API listening" log line. Start it with PORT=0: the kernel picks a free port at bind time,
 * so no other test can take it between choosing and binding (what `freePort()` cannot promise).
 */
export async function listeningBase(p: { child: ChildProcess; output(): string }, timeoutMs = 90_000): Promise<string> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    for (const line of p.output().split("\n")) {
      if (!line.includes('"API listening"')) continue;
      const url = (JSON.parse(line) as { url?: string }).url;
      if (url) return url.replace(/\/graphql$/, "");
    }
    if (p.child.exitCode !== null || p.child.signalCode !== null) throw new Error(`exited (${p.child.exitCode ?? p.child.signalCode}) before listening:\n${p.output().slice(-4000)}`);
    if (Date.now() > until) throw new Error(`timed out waiting for "API listening":\n${p.output().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Resolves once `${base}/health` answers 200. */
export function waitForHealth(base: string, timeoutMs = 60_000): Promise<boolean> {
  return waitUntil(`${base}/health`, async () => (await fetch(`${base}/health`)).ok, timeoutMs);
}

/** The `tiny` synthetic model in MODEL_DIR/MODEL_ID layout, for child processes. */
export function tinyModelEnv(): { env: Record<string, string>; remove(): void } {
  const root = mkdtempSync(join(tmpdir(), "artdesc-models-"));
  const dir = join(root, "test", "tiny");
  mkdirSync(dir, { recursive: true });
  synthModel({ preset: "tiny", outDir: dir, dtype: "fp32", seed: 1 });
  return { env: { MODEL_DIR: root, MODEL_ID: "test/tiny", MODEL_DEVICE: "cpu", MODEL_DTYPE: "fp32", ORT_THREADS: "1" }, remove: () => rmSync(root, { recursive: true, force: true }) };
}

/** POSTs a GraphQL operation to a running server. */
export async function httpGql<T = any>(url: string, query: string, variables: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify({ query, variables }) });
  return (await res.json()) as { data?: T; errors?: { message: string }[] };
}
