import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { healthRoutes } from "./api/health.js";
import { imageRoute } from "./api/images.js";
import type { AppDeps, Yoga } from "./graphql/yoga.js";
import { graphiqlAssetRoute } from "./graphql/graphiql.js";
import { createGraphqlApp } from "./graphql/yoga.js";
import type { Logger } from "./log.js";

export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean> | boolean;

export interface HttpApp {
  yoga: Yoga;
  server: Server;
}

/**
 * The HTTP server: /graphql (and GraphiQL, its files under /graphiql/), /health (liveness), /ready (readiness: a write probe),
 * /images/<file> from IMAGE_DIR, plus any extra routes (tried first, in order; a route returns
 * true when it answered). An unexpected error answers 500 and goes to `log` with its stack.
 */
export function createHttpApp(deps: AppDeps & { log?: Logger }, extraRoutes: RouteHandler[] = []): HttpApp {
  const yoga = createGraphqlApp(deps);
  const health = healthRoutes(deps.db);
  const images = imageRoute(deps.config.IMAGE_DIR);
  const server = createServer(async (req, res) => {
    try {
      const path = new URL(req.url ?? "/", "http://local").pathname;
      for (const route of [graphiqlAssetRoute, ...extraRoutes]) if (await route(req, res)) return;
      if (await health(req, res, path)) return;
      if (await images(req, res)) return;
      if (path === "/") {
        res.writeHead(302, { location: "/graphql" }).end();
        return;
      }
      await yoga(req, res);
    } catch (err) {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end("internal error");
      if (deps.log) deps.log.error({ err, method: req.method, url: req.url }, "request failed");
      else console.error(err);
    }
  });
  return { yoga, server };
}

export function listen(server: Server, port: number, host: string): Promise<{ port: number; host: string }> {
  return new Promise((resolvePromise, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      const addr = server.address();
      resolvePromise({ port: typeof addr === "object" && addr ? addr.port : port, host });
    });
  });
}
