import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { testDatabaseUrl } from "../support/db.js";

const dir = mkdtempSync(join(tmpdir(), "artdesc-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let env: Record<string, string>;
beforeAll(async () => {
  env = { DATABASE_URL: await testDatabaseUrl(dir, "a"), IMAGE_DIR: join(dir, "images"), PORT: "0", HOST: "127.0.0.1" };
});

it("--help lists the commands", async () => {
  const p = runCli(["--help"], env);
  expect((await p.exit).code).toBe(0);
  for (const cmd of ["start", "serve", "migrate"]) expect(p.output()).toMatch(new RegExp(`^\\s+${cmd}\\b`, "m"));
});

it("start migrates a new database, serves the API, and exits cleanly on SIGTERM", async () => {
  const p = runCli(["start"], env);
  const line = await p.waitFor(/API listening/);
  const url = (JSON.parse(line) as { url: string }).url.replace("/graphql", "");
  const health = await fetch(`${url}/health`);
  expect(health.status).toBe(200);
  const r = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query: '{ artworks(creator: "Goya") { description } }' }),
  });
  expect(await r.json()).toEqual({ data: { artworks: [] } });
  p.child.kill("SIGTERM");
  expect(await p.exit).toEqual({ code: 0, signal: null });
});

it("refuses to start with bad settings and names each one", async () => {
  const p = runCli(["serve"], { ...env, PORT: "eighty", LOG_LEVEL: "loud" });
  expect((await p.exit).code).toBe(2);
  expect(p.output()).toMatch(/Invalid configuration/);
  expect(p.output()).toMatch(/PORT="eighty"/);
  expect(p.output()).toMatch(/LOG_LEVEL="loud"/);
});

it("serve with API_WORKERS=2 shares the port between two API processes and stops them all on SIGTERM", async () => {
  const port = String(20_000 + Math.floor(Math.random() * 20_000));
  const p = runCli(["serve"], { ...env, PORT: port, API_WORKERS: "2" });
  await p.waitFor(/API workers started/);
  const listening = () => p.output().split("\n").filter((l) => l.includes("API listening"));
  for (let i = 0; i < 300 && listening().length < 2; i++) await new Promise((r) => setTimeout(r, 100));
  const pids = new Set(listening().map((l) => (JSON.parse(l) as { pid: number }).pid));
  expect(pids.size).toBe(2);
  const r = await fetch(`http://127.0.0.1:${port}/health`);
  expect(r.status).toBe(200);
  p.child.kill("SIGTERM");
  expect((await p.exit).code).toBe(0);
});
