import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { testDatabaseUrl } from "../support/db.js";

/**
 * Each command loads what it runs (src/cli.ts). The GraphQL API alone costs about 0.8 s of CPU to
 * load, and `artdesc status --check` is a container's health check, run every minute beside a busy
 * worker. Every module a command loads is recorded by a `node --import` hook; the packages below
 * must stay out of the commands that do not use them.
 */

const HOOK = pathToFileURL(join(import.meta.dirname, "../support/loaded-modules-hook.mjs")).href;
/** The API's stack. */
const API = ["graphql-yoga", "@pothos/core", "@graphql-tools/executor"];
/** Downloading and normalising images, reading Wikidata. */
const SYNC = ["sharp", "wikibase-sdk"];
/** The description and embedding models. */
const MODELS = ["onnxruntime-node", "@huggingface/transformers", "onnx-proto"];

const dir = mkdtempSync(join(tmpdir(), "artdesc-lazy-"));
let env: Record<string, string>;
let n = 0;
beforeAll(async () => {
  env = { DATABASE_URL: await testDatabaseUrl(dir, "a"), IMAGE_DIR: join(dir, "images"), MODEL_DIR: join(dir, "no-models"), PORT: "0", HOST: "127.0.0.1" };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `artdesc <args>` with the hook; the packages it loaded (by name) and its exit code. */
async function run(args: string[], until?: RegExp): Promise<{ packages: Set<string>; code: number | null; output: string }> {
  const list = join(dir, `loaded-${n++}.txt`);
  const p = runCli(args, { ...env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --import=${HOOK}`, ARTDESC_LOADED_MODULES: list });
  if (until) {
    await p.waitFor(until, 60_000);
    p.child.kill("SIGTERM");
  }
  const { code } = await p.exit;
  const packages = new Set<string>();
  for (const url of readFileSync(list, "utf8").split("\n")) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
    if (m) packages.add(m[1]!);
  }
  return { packages, code, output: p.output() };
}

const without = (packages: Set<string>, names: string[]) => names.filter((name) => packages.has(name));

describe("each command loads only what it runs", () => {
  it("the hook sees what a command loads: `serve` loads the API's stack", async () => {
    const { packages } = await run(["serve"], /API listening/);
    expect(without(packages, API)).toEqual(API);
  });

  it("--help loads neither the API, the sync nor the models", async () => {
    const { packages, code } = await run(["--help"]);
    expect(code).toBe(0);
    expect(without(packages, [...API, ...SYNC, ...MODELS, "pg"])).toEqual([]);
  });

  it("status --check (a health check) loads the database client and nothing of the API, the sync or the models", async () => {
    const { packages, code, output } = await run(["status", "--check"]);
    // It ran the check: no process has ever beaten here, which is unhealthy (exit 1).
    expect(code, output).toBe(1);
    expect(output).toMatch(/stale: no heartbeat recorded/);
    expect(packages.has("@prisma/client")).toBe(true);
    expect(without(packages, [...API, ...SYNC, ...MODELS, "pg"])).toEqual([]);
  });

  it("worker loads the models' runtime but not the API", async () => {
    const { packages } = await run(["worker"], /model missing: jobs wait until it is fetched/);
    expect(packages.has("onnxruntime-node")).toBe(true);
    expect(without(packages, API)).toEqual([]);
  });

  it("sync refusing a bad --creator loads nothing it does not need", async () => {
    const { packages, code, output } = await run(["sync", "--creator", "Goya", "--creator", "q5432"]);
    expect(code).toBe(2);
    // Named as typed, with what sync takes instead; a lower-case QID is a QID.
    expect(output).toContain('--creator: not a Wikidata item id like Q5432: "Goya" (sync takes creators\' QIDs');
    expect(output).not.toContain("q5432");
    expect(without(packages, [...API, ...SYNC, ...MODELS])).toEqual([]);
  });
});
