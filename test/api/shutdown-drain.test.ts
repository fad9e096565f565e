import { request } from "node:http";
import pino from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startApi } from "../../src/api/component.js";
import { loadConfig } from "../../src/config.js";
import type { RouteHandler } from "../../src/server.js";
import { createTestDb, type TestDb } from "../support/db.js";

/**
 * Stopping the API waits for requests still executing, even those whose connection is already
 * gone: the database is closed after stop(), and a request that reached it later would fail
 * ("The database connection is not open", logged as an error) instead of finishing.
 */
let t: TestDb;
beforeAll(async () => {
  t = await createTestDb();
});
afterAll(async () => {
  await t.close();
});

it("stop() resolves only after a request cut off by its client has finished its database work", async () => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let entered!: () => void;
  const inside = new Promise<void>((resolve) => (entered = resolve));
  let finishedWithDb: unknown = null;
  // A route standing in for a slow resolver: it waits, then reads the database, as a GraphQL request would.
  const slow: RouteHandler = async (req, res) => {
    if (!req.url?.startsWith("/slow")) return false;
    entered();
    await held;
    finishedWithDb = await t.db.artwork.count();
    res.end("done");
    return true;
  };
  const config = loadConfig({ PORT: "0", HOST: "127.0.0.1", GRAPHQL_TIMEOUT_MS: "5000" });
  const api = await startApi({ db: t.db, config, log: pino({ level: "silent" }) }, [slow]);
  const client = request(`${api.url}/slow`);
  client.on("error", () => {});
  client.end();
  await inside;
  client.destroy();

  let stopped = false;
  const stopping = api.stop().then(() => (stopped = true));
  await new Promise((r) => setTimeout(r, 300));
  expect(stopped).toBe(false);
  release();
  await stopping;
  expect(finishedWithDb).toBe(0);
});

it("stop() gives up waiting after GRAPHQL_TIMEOUT_MS + 1 s for a request that never ends", async () => {
  const stuck: RouteHandler = async (req) => {
    if (!req.url?.startsWith("/stuck")) return false;
    await new Promise(() => {});
    return true;
  };
  const config = loadConfig({ PORT: "0", HOST: "127.0.0.1", GRAPHQL_TIMEOUT_MS: "200" });
  const api = await startApi({ db: t.db, config, log: pino({ level: "silent" }) }, [stuck]);
  const client = request(`${api.url}/stuck`);
  client.on("error", () => {});
  client.end();
  await new Promise((r) => setTimeout(r, 200));
  const started = Date.now();
  await api.stop();
  // The connection is closed after 2 s, then at most 1.2 s more.
  expect(Date.now() - started).toBeLessThan(6_000);
});
