import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
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

it("serve with API_WORKERS=2 hands each connection to the API process holding the fewest, and stops them all on SIGTERM", async () => {
  const p = runCli(["serve"], { ...env, API_WORKERS: "2", LOG_LEVEL: "debug" });
  const base = (JSON.parse(await p.waitFor(/API listening/)) as { url: string }).url.replace("/graphql", "");
  const port = Number(new URL(base).port);
  const ready = () => p.output().split("\n").filter((l) => l.includes('"API process ready"'));
  for (let i = 0; i < 300 && ready().length < 2; i++) await new Promise((r) => setTimeout(r, 100));
  const pids = [...new Set(ready().map((l) => (JSON.parse(l) as { pid: number }).pid))];
  expect(pids).toHaveLength(2);
  // Each API process gets room for a search's short-lived garbage (API_SEMI_SPACE_MB).
  for (const pid of pids) expect(readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")).toContain("--max-semi-space-size=64");

  // Eight kept-alive connections opened at once: four each (node:cluster's own round-robin gave 5/3 to 7/1).
  const clients = await Promise.all(Array.from({ length: 8 }, () => keptAlive(port)));
  const held = () => pids.map((pid) => heldClientPorts(pid, port));
  await expect.poll(() => held().map((ports) => ports.length)).toEqual([4, 4]);
  // Three of the first process's clients leave; the next two connections both go to it.
  const [first] = held();
  for (const c of clients.filter((c) => first!.includes(c.localPort!)).slice(0, 3)) c.destroy();
  await expect.poll(() => held().map((ports) => ports.length)).toEqual([1, 4]);
  // The sockets are gone; the process's "closed" messages reach the primary over IPC just after.
  const counted = () => p.output().split("\n").some((l) => l.includes('"API connection closed"') && l.includes(`"worker":${pids[0]},"open":1`));
  await expect.poll(counted).toBe(true);
  const later = await Promise.all([keptAlive(port), keptAlive(port)]);
  await expect.poll(() => held().map((ports) => ports.length)).toEqual([3, 4]);
  for (const c of [...clients, ...later]) c.destroy();

  // One API process is killed: the primary logs it and forks another, which serves.
  process.kill(pids[0]!, "SIGKILL");
  await p.waitFor(/API worker died; starting another/);
  for (let i = 0; i < 300 && ready().length < 3; i++) await new Promise((r) => setTimeout(r, 100));
  expect(ready()).toHaveLength(3);
  expect((await fetch(`${base}/health`)).status).toBe(200);

  p.child.kill("SIGTERM");
  expect((await p.exit).code).toBe(0);
  expect(p.output().match(/API worker died/g)).toHaveLength(1);
});

/** A connection that has had one answer (200 from /health) and stays open (HTTP keep-alive). */
async function keptAlive(port: number): Promise<Socket> {
  const socket = connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.once("data", (d) => (d.toString().startsWith("HTTP/1.1 200") ? resolve() : reject(new Error(d.toString()))));
    socket.write("GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n");
  });
  return socket;
}

/** The client ports of the established connections to `port` that process `pid` holds (Linux: /proc). */
function heldClientPorts(pid: number, port: number): number[] {
  const byInode = new Map<string, number>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    if (!existsSync(table)) continue;
    for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
      const [, local, remote, state, , , , , , inode] = line.trim().split(/\s+/);
      if (state === "01" && parseInt(local?.split(":")[1] ?? "", 16) === port) byInode.set(inode!, parseInt(remote!.split(":")[1]!, 16));
    }
  }
  const ports: number[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
      if (inode && byInode.has(inode)) ports.push(byInode.get(inode)!);
    } catch {
      // The descriptor closed while being read.
    }
  }
  return ports;
}
