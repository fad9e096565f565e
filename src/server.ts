import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { resolve, sep } from "node:path";
import type { AppDeps, Yoga } from "./graphql/yoga.js";
import { graphiqlAssetRoute } from "./graphql/graphiql.js";
import { createGraphqlApp } from "./graphql/yoga.js";

export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean> | boolean;

export interface HttpApp {
  yoga: Yoga;
  server: Server;
}

/**
 * The HTTP server: /graphql (and GraphiQL, with its files under /graphiql/), /health, /images/<file> from IMAGE_DIR, plus any
 * extra routes (tried first, in order; a route returns true when it answered).
 */
export function createHttpApp(deps: AppDeps, extraRoutes: RouteHandler[] = []): HttpApp {
  const yoga = createGraphqlApp(deps);
  const imageRoot = resolve(deps.config.IMAGE_DIR);
  const server = createServer(async (req, res) => {
    try {
      const path = new URL(req.url ?? "/", "http://local").pathname;
      for (const route of [graphiqlAssetRoute, ...extraRoutes]) if (await route(req, res)) return;
      if (path === "/health") return void (await health(deps, res));
      if (path.startsWith("/images/")) return void (await serveImage(imageRoot, path.slice("/images/".length), res));
      if (path === "/") {
        res.writeHead(302, { location: "/graphql" }).end();
        return;
      }
      await yoga(req, res);
    } catch (err) {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end("internal error");
      console.error(err);
    }
  });
  return { yoga, server };
}

async function health({ db }: AppDeps, res: ServerResponse): Promise<void> {
  try {
    await db.$queryRawUnsafe("SELECT 1");
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ status: "ok", database: "ok" }));
  } catch (err) {
    res
      .writeHead(503, { "content-type": "application/json" })
      .end(JSON.stringify({ status: "error", database: (err as Error).message }));
  }
}

async function serveImage(root: string, relative: string, res: ServerResponse): Promise<void> {
  const file = resolve(root, decodeURIComponent(relative));
  // Never serve anything outside IMAGE_DIR ("/images/../data/artdesc.db").
  if (!file.startsWith(root + sep)) return void res.writeHead(404).end();
  const info = await stat(file).catch(() => null);
  if (!info?.isFile()) return void res.writeHead(404).end();
  res.writeHead(200, {
    "content-type": file.endsWith(".png") ? "image/png" : "image/jpeg",
    "content-length": info.size,
    // Files are named by content hash: they never change.
    "cache-control": "public, max-age=31536000, immutable",
  });
  createReadStream(file).pipe(res);
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
