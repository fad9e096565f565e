import { createMetricsRegistry, metricsRoute } from "../ops/metrics.js";
import type { Component, Runtime } from "../runtime.js";
import { createHttpApp, listen, type RouteHandler } from "../server.js";

/** The HTTP API as a service component. */
export async function startApi(rt: Runtime, extraRoutes: RouteHandler[] = []): Promise<Component & { url: string }> {
  const metrics = metricsRoute(createMetricsRegistry(rt.db));
  const { server } = createHttpApp({ db: rt.db, config: rt.config }, [metrics, ...extraRoutes]);
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
