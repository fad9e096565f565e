import { createServer } from "node:http";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { createSchema, createYoga, type Plugin } from "graphql-yoga";
import { afterAll, beforeAll, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { useRequestLimits } from "../../src/graphql/limits/plugin.js";
import { COST_OPTIONS, requestLimits } from "../../src/graphql/yoga.js";
import { serveOnFreePort } from "../support/http.js";

/**
 * A finished request leaves nothing behind. The time limit hands the executor an abort signal
 * that also fires when the client leaves; made with AbortSignal.any, Node kept it (and, through
 * the executor's listener, the whole operation) for as long as the process ran: about 12 kB per
 * request, which a busy API process would have grown by without end. Over real HTTP (where a
 * request carries the client's signal), the signals handed to the executor must be collectable.
 */
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const signals: WeakRef<AbortSignal>[] = [];
let base = "";
let close = () => {};

beforeAll(async () => {
  const yoga = createYoga({
    schema: createSchema({ typeDefs: "type Query { n(i: Int!): Int }", resolvers: { Query: { n: async (_: unknown, { i }: { i: number }) => i } } }),
    logging: false,
    plugins: [
      useRequestLimits(requestLimits(loadConfig({})), COST_OPTIONS),
      // After the limits: the signal the executor listens to.
      { onExecute: ({ args }) => void signals.push(new WeakRef((args as typeof args & { signal: AbortSignal }).signal)) } satisfies Plugin,
    ],
  });
  ({ base, close } = await serveOnFreePort(createServer(yoga)));
});
afterAll(() => close());

const ask = (i: number) =>
  fetch(`${base}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: `{ n(i: ${i}) }` }) }).then((r) =>
    r.json(),
  );

it("keeps no operation's abort signal once its request has been answered", async () => {
  for (let i = 0; i < 50; i++) expect(await ask(i)).toEqual({ data: { n: i } });
  expect(signals).toHaveLength(50);
  // A WeakRef's target is kept until the current job ends: collect from a later turn, twice.
  for (let round = 0; round < 2; round++) {
    await new Promise((r) => setImmediate(r));
    gc();
  }
  expect(signals.filter((s) => s.deref() !== undefined).length).toBeLessThanOrEqual(1);
});

it("still stops an operation when its client leaves", async () => {
  let started!: () => void;
  const running = new Promise<void>((r) => (started = r));
  let stoppedBy: unknown = null;
  const yoga = createYoga({
    schema: createSchema({
      typeDefs: "type Query { slow: Int }",
      resolvers: {
        Query: {
          slow: (_: unknown, __: unknown, ctx: { request: Request }) =>
            new Promise((resolve) => {
              started();
              ctx.request.signal.addEventListener("abort", () => resolve(0));
            }),
        },
      },
    }),
    logging: false,
    plugins: [
      useRequestLimits(requestLimits(loadConfig({})), COST_OPTIONS),
      {
        onExecute: ({ args }) => {
          const signal = (args as typeof args & { signal: AbortSignal }).signal;
          signal.addEventListener("abort", () => (stoppedBy = signal.reason));
        },
      } satisfies Plugin,
    ],
  });
  const server = await serveOnFreePort(createServer(yoga));
  try {
    const client = new AbortController();
    const answer = fetch(`${server.base}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"query":"{ slow }"}', signal: client.signal }).catch(
      (err: unknown) => err,
    );
    await running;
    client.abort();
    await answer;
    for (let i = 0; i < 100 && stoppedBy === null; i++) await new Promise((r) => setTimeout(r, 20));
    expect(stoppedBy).not.toBeNull();
  } finally {
    server.close();
  }
});
