import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { modelFiles, moduleDtypes, pullCommand } from "../../src/describe/models/contract.js";
import { createHttpApp } from "../../src/server.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { serveOnFreePort } from "../support/http.js";

/** A new user's first pages: an empty mirror says why it is empty and what to do next. */

let t: TestDb;
let modelDir: string;
let stop: (() => void)[] = [];

beforeEach(async () => {
  t = await createTestDb();
  modelDir = mkdtempSync(join(tmpdir(), "artdesc-nomodel-"));
});
afterEach(async () => {
  for (const s of stop.splice(0)) s();
  await t.close();
  rmSync(modelDir, { recursive: true, force: true });
});

async function open(env: Record<string, string>): Promise<string> {
  const { server } = createHttpApp({ db: t.db, config: loadConfig({ IMAGE_DIR: join(t.dir, "images"), MODEL_DIR: modelDir, LOG_LEVEL: "silent", ...env }) });
  const s = await serveOnFreePort(server);
  stop.push(s.close);
  return s.base;
}

const text = async (url: string) => (await (await fetch(url)).text()).replace(/\s+/g, " ");

it("says the sync is off without USER_AGENT_CONTACT, and gives the exact models pull command", async () => {
  const base = await open({});
  const expected = pullCommand("HuggingFaceTB/SmolVLM-500M-Instruct", "main", moduleDtypes(undefined, "cpu"));
  for (const path of ["/", "/status"]) {
    const html = await text(`${base}${path}`);
    expect(html).toContain("The sync is off");
    expect(html).toContain("USER_AGENT_CONTACT is not set");
    expect(html).toContain("The model files are missing");
    expect(html).toContain(`<code>${expected}</code>`);
  }
});

it("with every model file there, even damaged ones, says nothing of the model and never reads the graphs (a page anyone may ask for)", async () => {
  const dir = join(modelDir, "HuggingFaceTB/SmolVLM-500M-Instruct");
  for (const f of modelFiles(moduleDtypes(undefined, "cpu"))) {
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    writeFileSync(join(dir, f), "not an ONNX graph, nor JSON");
  }
  const base = await open({ USER_AGENT_CONTACT: "https://example.org/me" });
  for (const path of ["/", "/status"]) {
    const res = await fetch(`${base}${path}`);
    expect(res.status).toBe(200);
    expect(await res.text()).not.toContain("The model files are missing");
  }
});

it("with a contact and no sync yet, says so and gives the command", async () => {
  const base = await open({ USER_AGENT_CONTACT: "https://example.org/me", MODEL_ID: "test/revised", MODEL_REVISION: "abc123" });
  const html = await text(`${base}/`);
  expect(html).not.toContain("The sync is off");
  expect(html).toContain("Nothing synced yet");
  expect(html).toContain("<code>artdesc sync</code>");
  expect(html).toContain("artdesc models pull --model test/revised --revision abc123");
});

it("while the first sync runs, shows its progress", async () => {
  await t.db.syncRun.create({ data: { status: "RUNNING", trigger: "startup", seen: 12, created: 3, imagesDownloaded: 2 } });
  const base = await open({ USER_AGENT_CONTACT: "https://example.org/me" });
  const html = await text(`${base}/`);
  expect(html).toContain("The first sync is running");
  expect(html).toContain("12 works seen, 3 written, 2 images downloaded, 0 failed so far");
});

it("a worker that reports missing model files: its own command is shown", async () => {
  const command = "artdesc models pull --model Org/Other --revision r1 --dtype fp32";
  await t.db.heartbeat.create({ data: { id: "w1", role: "worker", pid: 1, hostname: "box", modelStatus: "missing", modelError: `Model files missing in /m: a.onnx. Fetch them with: ${command}` } });
  const base = await open({ USER_AGENT_CONTACT: "https://example.org/me" });
  const html = await text(`${base}/`);
  expect(html).toContain(`<code>${command}</code>`);
});

it("the jobs page says why it is empty; a filter that matches nothing says so, without first-run notices", async () => {
  const base = await open({ USER_AGENT_CONTACT: "https://example.org/me" });
  expect(await text(`${base}/jobs`)).toContain("No jobs here. Jobs are queued by each sync");
  const filtered = await text(`${base}/?creator=Nobody`);
  expect(filtered).toContain("No works match this view");
  expect(filtered).not.toContain("Nothing synced yet");
});
