import cluster from "node:cluster";
import { lookup } from "node:dns/promises";
import { ConfigError } from "../config.js";
import { meaningSource } from "../embed/embedder.js";
import { createMetricsRegistry, metricsRoute } from "../ops/metrics.js";
import type { Component, Runtime } from "../runtime.js";
import { createHttpApp, listen, type RouteHandler } from "../server.js";

/** The HTTP API in this process. */
export async function startApi(rt: Runtime, extraRoutes: RouteHandler[] = []): Promise<Component & { url: string }> {
  const metrics = metricsRoute(createMetricsRegistry(rt.db));
  const { server, drain } = createHttpApp({ db: rt.db, config: rt.config, log: rt.log }, [metrics, ...extraRoutes]);
  const { port, host } = await listen(server, rt.config.PORT, rt.config.HOST).catch((err: unknown) => {
    throw listenFailure(rt.config.HOST, rt.config.PORT, err) ?? err;
  });
  const shownHost = host === "0.0.0.0" || host === "::" ? "localhost" : host;
  const url = `http://${shownHost}:${port}`;
  rt.log.info({ url: `${url}/graphql` }, "API listening");
  // The query embedding thread loads now (when a model is installed), not on the first search.
  const meaning = meaningSource(rt.config);
  meaning.warm().catch((err: unknown) => rt.log.error({ err }, "the embedding model did not load: searches run by words only"));
  return {
    name: "api",
    url,
    stop: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        // Server-sent event streams stay open: end them after a short grace.
        setTimeout(() => server.closeAllConnections(), 2_000).unref();
      });
      // Requests cut off by closing their connections may still be executing: the database (closed
      // after this) and the query embedder stay until they finish, at most one GraphQL timeout.
      await drain(rt.config.GRAPHQL_TIMEOUT_MS + 1_000);
      await meaning.close();
    },
  };
}

/**
 * The API as the service runs it: in this process when API_WORKERS is 1, else in API_WORKERS
 * forked processes sharing the port (node:cluster), which lets the API use every core. The
 * forked processes run the same command; `isApiWorkerProcess()` tells them to serve the API only.
 */
export async function startApiService(rt: Runtime, extraRoutes: RouteHandler[] = []): Promise<Component> {
  if (rt.config.API_WORKERS <= 1 || cluster.isWorker) return startApi(rt, extraRoutes);
  // Checked before forking: a worker that cannot listen would be restarted forever.
  await checkHost(rt.config.HOST);
  const workers = Array.from({ length: rt.config.API_WORKERS }, () => cluster.fork());
  let stopping = false;
  cluster.on("exit", (worker, code, signal) => {
    if (stopping) return;
    rt.log.error({ pid: worker.process.pid, code, signal }, "API worker died; starting another");
    workers.splice(workers.indexOf(worker), 1, cluster.fork());
  });
  rt.log.info({ workers: workers.length, port: rt.config.PORT }, "API workers started");
  return {
    name: "api",
    stop: async () => {
      stopping = true;
      await Promise.all(
        workers.map(
          (w) =>
            new Promise<void>((resolve) => {
              if (w.isDead()) return resolve();
              w.once("exit", () => resolve());
              w.process.kill("SIGTERM");
            }),
        ),
      );
    },
  };
}

/** True in a process forked by startApiService: it serves the API and nothing else. */
export function isApiWorkerProcess(): boolean {
  return cluster.isWorker;
}

/** HOST must name an address of this machine: a name that does not resolve is a ConfigError. */
async function checkHost(host: string): Promise<void> {
  try {
    await lookup(host);
  } catch (err) {
    throw new ConfigError([`HOST=${JSON.stringify(host)}: does not resolve to an address (${(err as { code?: string }).code ?? (err as Error).message})`]);
  }
}

/** Why listening failed, as a ConfigError naming HOST or PORT, or null for other failures. */
function listenFailure(host: string, port: number, err: unknown): ConfigError | null {
  const code = (err as { code?: unknown })?.code;
  switch (code) {
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EAI_FAIL":
    case "EAI_NONAME":
      return new ConfigError([`HOST=${JSON.stringify(host)}: does not resolve to an address (${code})`]);
    case "EADDRNOTAVAIL":
      return new ConfigError([`HOST=${JSON.stringify(host)}: not an address of this machine (${code})`]);
    case "EADDRINUSE":
      return new ConfigError([`PORT=${port}: already in use on ${host} (${code})`]);
    case "EACCES":
      return new ConfigError([`PORT=${port}: not allowed to listen on it (${code}); use a port above 1023 or grant the capability`]);
    default:
      return null;
  }
}
