// Run by test/graphql/gc-promotion.test.ts under --trace-gc-nvp: POST `{ __typename }` through the
// app's Yoga (response cache off, so every request is executed), one after another (measureCalls).
import { join } from "node:path";
import pino from "pino";
import { loadConfig } from "../../src/config.js";
import { createDb } from "../../src/db.js";
import { createGraphqlApp } from "../../src/graphql/yoga.js";
import { measureCalls } from "./gc-trace.js";

const dir = process.argv[2]!;
const db = await createDb(`file:${join(dir, "gc.db")}`);
const yoga = createGraphqlApp({ db, config: loadConfig({ GRAPHQL_RESPONSE_CACHE: "false" }), log: pino({ level: "silent" }) });
const ask = async () => {
  const res = await yoga.fetch("http://local/graphql", { method: "POST", headers: { "content-type": "application/json" }, body: '{"query":"{ __typename }"}' });
  if (res.status !== 200) throw new Error(`status ${res.status}: ${await res.text()}`);
  await res.text();
};
await measureCalls(ask, 300);
await db.$disconnect();
