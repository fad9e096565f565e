import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { STATIC_DIR } from "./render.js";

const TYPES: Record<string, string> = { js: "text/javascript; charset=utf-8", css: "text/css; charset=utf-8", svg: "image/svg+xml" };
/** Plain names only: letters, digits, dashes; .js, .css or .svg. */
const NAME = /^[a-z0-9-]+\.(js|css|svg)$/;

interface StaticFile {
  body: Buffer;
  type: string;
  etag: string;
}

/** Every servable file of `dir`, read in full (a few small files). */
async function readStaticFiles(dir: string): Promise<Map<string, StaticFile>> {
  const files = new Map<string, StaticFile>();
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (!entry.isFile() || !NAME.test(entry.name)) continue;
    const body = await readFile(join(dir, entry.name));
    const type = TYPES[entry.name.split(".").pop()!]!;
    files.set(entry.name, { body, type, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"` });
  }
  return files;
}

export type StaticHandler = (req: IncomingMessage, res: ServerResponse, path: string) => Promise<void>;

/**
 * /static/<name>: the workbench's scripts, style sheet and icon. The folder is listed and read once, when
 * the route is made: the set of files is fixed while the server runs, so a request never touches
 * the disk and an unknown name is a plain 404 that leaves nothing behind. GET and HEAD only;
 * revalidated by ETag (no-cache), since the names carry no version.
 */
export function staticRoute(dir = STATIC_DIR): StaticHandler {
  const files = readStaticFiles(dir);
  // A folder that cannot be read fails each request (500, logged); never an unhandled rejection.
  files.catch(() => undefined);
  return async (req, res, path) => {
    const file = (await files).get(path.slice("/static/".length));
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
  };
}
