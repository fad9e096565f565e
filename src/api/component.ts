import cluster from "node:cluster";
import { createMetricsRegistry, metricsRoute } from "../ops/metrics.js";
import type { Component, Runtime } from "../runtime.js";
import { createHttpApp, listen, type RouteHandler } from "../server.js";

/** The HTTP API in this process. */
export async function startApi(rt: Runtime, extraRoutes: RouteHandler[] = []): Promise<Component & { url: string }> {
  const metrics = metricsRoute(createMetricsRegistry(rt.db));
  const { server } = createHttpApp({ db: rt.db, config: rt.config, log: rt.log }, [metrics, ...extraRoutes]);
  const { port, host } = await listen(server, rt.config.PORT, rt.config.HOST);
  const shownHost = host === "0.0.0.0" || host === "::" ? "localhost" : host;
  const url = `http://${shownHost}:${port}`;
  rt.log.info({ url: `${url}/graphql` }, "API listening");
  return {
    name: "api",
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        // Server-sent event streams stay open: end them after a short grace.
        setTimeout(() => server.closeAllConnections(), 2_000).unref();
      }),
  };
}

/**
 * The API as the service runs it: in this process when API_WORKERS is 1, else in API_WORKERS
 * forked processes sharing the port (node:cluster), which lets the API use every core. The
 * forked processes run the same command; `isApiWorkerProcess()` tells them to serve the API only.
 */
export async function startApiService(rt: Runtime, extraRoutes: RouteHandler[] = []): Promise<Component> {
  if (rt.config.API_WORKERS <= 1 || cluster.isWorker) return startApi(rt, extraRoutes);
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
