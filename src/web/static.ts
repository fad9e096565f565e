import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { STATIC_DIR } from "./render.js";

const TYPES: Record<string, string> = { js: "text/javascript; charset=utf-8", css: "text/css; charset=utf-8" };

interface StaticFile {
  body: Buffer;
  type: string;
  etag: string;
}

const files = new Map<string, Promise<StaticFile | null>>();

/** A file of src/web/static by plain name (letters, digits, dashes; .js or .css), read once. */
function load(name: string): Promise<StaticFile | null> {
  let f = files.get(name);
  if (!f) {
    const type = TYPES[name.split(".").pop()!]!;
    f = readFile(join(STATIC_DIR, name)).then(
      (body) => ({ body, type, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"` }),
      () => null,
    );
    files.set(name, f);
  }
  return f;
}

/**
 * /static/<name>: the workbench's scripts and style sheet. Names are checked against a pattern
 * before any file is touched; GET and HEAD only; revalidated by ETag (no-cache), since the names
 * carry no version.
 */
export async function serveStatic(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const name = path.slice("/static/".length);
  const file = /^[a-z0-9-]+\.(js|css)$/.test(name) ? await load(name) : null;
  if (!file) {
    res.writeHead(404, { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff" }).end("not found");
    return;
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD" }).end();
    return;
  }
  const headers = { "content-type": file.type, etag: file.etag, "cache-control": "no-cache", "x-content-type-options": "nosniff" };
  if (req.headers["if-none-match"]?.split(",").some((t) => t.trim() === file.etag)) {
    res.writeHead(304, headers).end();
    return;
  }
  res.writeHead(200, { ...headers, "content-length": file.body.length });
  res.end(req.method === "HEAD" ? undefined : file.body);
}
