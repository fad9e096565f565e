import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createRequire } from "node:module";
import type { GraphiQLOptions, Plugin } from "graphql-yoga";

/**
 * GraphiQL that works without internet. Yoga's own page loads its code from a CDN, so on a closed
 * network it stays blank. @graphql-yoga/render-graphiql (from Yoga's authors, versioned with
 * graphql-yoga) ships the same @graphql-yoga/graphiql bundles as strings; we serve each one as its
 * own file under ASSET_PREFIX and render a page that loads them by URL. The page runs no inline
 * script, so a strict Content-Security-Policy applies to it too (GRAPHIQL_CSP).
 */

const version = (createRequire(import.meta.url)("@graphql-yoga/render-graphiql/package.json") as { version: string }).version;

/** Versioned, so the files can be cached for good and a new release never meets an old cache. */
export const ASSET_PREFIX = `/graphiql/${version}/`;

/** Monaco (GraphiQL's editor) injects style elements and runs its language services in workers. */
export const GRAPHIQL_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "worker-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

type BundleName = "js" | "css" | "favicon" | "editorWorkerService" | "jsonWorker" | "graphqlWorker";

const ASSETS: Record<string, { bundle: BundleName | "start"; type: string }> = {
  "graphiql.js": { bundle: "js", type: "text/javascript; charset=utf-8" },
  "graphiql.css": { bundle: "css", type: "text/css; charset=utf-8" },
  "favicon.ico": { bundle: "favicon", type: "image/x-icon" },
  "editor.worker.js": { bundle: "editorWorkerService", type: "text/javascript; charset=utf-8" },
  "json.worker.js": { bundle: "jsonWorker", type: "text/javascript; charset=utf-8" },
  "graphql.worker.js": { bundle: "graphqlWorker", type: "text/javascript; charset=utf-8" },
  "start.js": { bundle: "start", type: "text/javascript; charset=utf-8" },
};

/** Reads the options from the page's JSON block, points Monaco at our worker files, renders. */
const START_SCRIPT = `"use strict";
(function () {
  var options = JSON.parse(document.getElementById("graphiql-options").textContent);
  var workers = {
    editorWorkerService: "${ASSET_PREFIX}editor.worker.js",
    json: "${ASSET_PREFIX}json.worker.js",
    graphql: "${ASSET_PREFIX}graphql.worker.js"
  };
  self.MonacoEnvironment = {
    globalAPI: false,
    getWorkerUrl: function (_moduleId, label) { return workers[label] || workers.editorWorkerService; }
  };
  YogaGraphiQL.renderYogaGraphiQL(document.getElementById("root"), options);
})();
`;

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

let loading: Promise<Map<string, Asset>> | undefined;

/** The bundles are about 9 MB: loaded on the first GraphiQL request, then kept. */
function loadAssets(): Promise<Map<string, Asset>> {
  loading ??= import("@graphql-yoga/render-graphiql/graphiql").then((bundles) => {
    const assets = new Map<string, Asset>();
    for (const [name, { bundle, type }] of Object.entries(ASSETS)) {
      const body = bundle === "start" ? Buffer.from(START_SCRIPT) : bundle === "favicon" ? dataUrlBytes(bundles.favicon) : Buffer.from(bundles[bundle]);
      assets.set(name, { body, type, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"` });
    }
    return assets;
  });
  return loading;
}

function dataUrlBytes(url: string): Buffer {
  const comma = url.indexOf(",");
  return Buffer.from(url.slice(comma + 1), url.slice(0, comma).endsWith(";base64") ? "base64" : "utf8");
}

/** Route for the GraphiQL files: GET and HEAD only, ETag and immutable caching. */
export async function graphiqlAssetRoute(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  const path = (req.url ?? "/").split("?")[0]!;
  if (!path.startsWith("/graphiql/")) return false;
  const asset = path.startsWith(ASSET_PREFIX) ? (await loadAssets()).get(path.slice(ASSET_PREFIX.length)) : undefined;
  if (!asset) {
    res.writeHead(404, { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff" }).end("not found");
    return true;
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD", "x-content-type-options": "nosniff" }).end();
    return true;
  }
  const headers = {
    "content-type": asset.type,
    etag: asset.etag,
    "cache-control": "public, max-age=31536000, immutable",
    "x-content-type-options": "nosniff",
  };
  if (req.headers["if-none-match"]?.split(",").some((t) => t.trim() === asset.etag)) {
    res.writeHead(304, headers).end();
    return true;
  }
  res.writeHead(200, { ...headers, "content-length": asset.body.length });
  res.end(req.method === "HEAD" ? undefined : asset.body);
  return true;
}

const HTML_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);

/**
 * JSON inside a `<script type="application/json">` element: `<` is written as \u003c, so no
 * string in the options can close the element (JSON.parse reads the escape back).
 */
const jsonForScriptElement = (value: unknown) => JSON.stringify(value).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");

/** A Yoga plugin: the GraphiQL page gets GRAPHIQL_CSP and the usual hardening headers. */
export function useGraphiQLHeaders(): Plugin {
  return {
    onResponse({ response }) {
      if (!response.headers.get("content-type")?.startsWith("text/html")) return;
      response.headers.set("content-security-policy", GRAPHIQL_CSP);
      response.headers.set("x-content-type-options", "nosniff");
      response.headers.set("referrer-policy", "no-referrer");
    },
  };
}

/** Yoga's `renderGraphiQL` hook: the page, with every file from this server. */
export function renderOfflineGraphiQL(options: GraphiQLOptions): string {
  const title = escapeHtml(options.title ?? "GraphiQL");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="icon" href="${ASSET_PREFIX}favicon.ico">
<link rel="stylesheet" href="${ASSET_PREFIX}graphiql.css">
<script type="application/json" id="graphiql-options">${jsonForScriptElement(options)}</script>
<script src="${ASSET_PREFIX}graphiql.js" defer></script>
<script src="${ASSET_PREFIX}start.js" defer></script>
</head>
<body id="body" class="no-focus-outline">
<noscript>GraphiQL needs JavaScript. Without it, send queries to this URL with POST (see the README).</noscript>
<div id="root">Loading ${title}…</div>
</body>
</html>
`;
}
