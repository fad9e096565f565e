import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";

/**
 * A local stand-in for the Hugging Face hub: serves one model folder at
 * `/{model}/resolve/{main|commit}/{file}`. Like the hub, ONNX files (LFS) answer with a redirect
 * to a CDN path carrying x-linked-size and x-linked-etag (the sha256), every answer carries x-repo-commit, and the CDN honours
 * Range requests. Faults can be injected per file.
 */
export interface LocalHub {
  url: string;
  commit: string;
  requests: { method: string; path: string; range: string | undefined }[];
  /** Cut the next GET of `file` after this many body bytes (the socket is destroyed). */
  cutOnce: Map<string, number>;
  /** Send this many body bytes of the next GET of `file`, then stall without closing. */
  stallOnce: Map<string, number>;
  /** Announce this size for `file` instead of the real one. */
  lieSize: Map<string, number>;
  /** Announce this sha256 (x-linked-etag) for `file` instead of the real one. */
  lieHash: Map<string, string>;
  close(): Promise<void>;
}

export async function startLocalHub(modelId: string, folder: string, options: { commit?: string } = {}): Promise<LocalHub> {
  const commit = options.commit ?? "c0ffee0123456789abcdef0123456789abcdef01";
  const requests: LocalHub["requests"] = [];
  const cutOnce = new Map<string, number>();
  const lieSize = new Map<string, number>();
  const lieHash = new Map<string, string>();
  const stallOnce = new Map<string, number>();

  const serveFile = (req: IncomingMessage, res: ServerResponse, file: string, extra: Record<string, string>) => {
    const path = join(folder, file);
    if (!existsSync(path) || !statSync(path).isFile()) {
      res.writeHead(404, extra).end("Entry not found");
      return;
    }
    const data = readFileSync(path);
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    if (range) start = Number(range[1]);
    if (start > data.length) {
      res.writeHead(416, { "content-range": `bytes */${data.length}`, ...extra }).end();
      return;
    }
    const body = data.subarray(start);
    const headers: Record<string, string> = { "content-length": String(body.length), "accept-ranges": "bytes", ...extra };
    if (range) headers["content-range"] = `bytes ${start}-${data.length - 1}/${data.length}`;
    res.writeHead(range ? 206 : 200, headers);
    if (req.method === "HEAD") return res.end();
    const cut = cutOnce.get(file);
    if (cut !== undefined) {
      cutOnce.delete(file);
      res.write(body.subarray(0, cut), () => setTimeout(() => res.destroy(), 20));
      return;
    }
    const stall = stallOnce.get(file);
    if (stall !== undefined) {
      stallOnce.delete(file);
      res.write(body.subarray(0, stall));
      return;
    }
    res.end(body);
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = decodeURIComponent(url.pathname);
    requests.push({ method: req.method ?? "GET", path, range: req.headers.range });
    const common = { "x-repo-commit": commit };
    if (path.startsWith("/cdn/")) return serveFile(req, res, path.slice(5), {});
    const prefix = `/${modelId}/resolve/`;
    if (!path.startsWith(prefix)) return res.writeHead(404, common).end("Repository not found");
    const [rev, ...rest] = path.slice(prefix.length).split("/");
    if (rev !== "main" && rev !== commit) return res.writeHead(404, common).end("Revision not found");
    const file = rest.join("/");
    const local = join(folder, file);
    if (!existsSync(local)) return res.writeHead(404, common).end("Entry not found");
    if (file.endsWith(".onnx") || file.endsWith(".onnx_data")) {
      const size = lieSize.get(file) ?? statSync(local).size;
      const sha256 = lieHash.get(file) ?? createHash("sha256").update(readFileSync(local)).digest("hex");
      res.writeHead(302, { location: `/cdn/${file}`, "x-linked-size": String(size), "x-linked-etag": `"${sha256}"`, ...common }).end();
      return;
    }
    serveFile(req, res, file, common);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    commit,
    requests,
    cutOnce,
    lieSize,
    lieHash,
    stallOnce,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
