import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Store } from "oxigraph";
import type { WorldModel } from "./model.js";

/**
 * A local Wikidata on 127.0.0.1 (random port): a SPARQL endpoint backed by oxigraph, the Action
 * API (wbgetentities for Wikidata, imageinfo for Commons) and an image host, with faults on demand.
 */

export type FaultTarget = "sparql" | "wikidata" | "commons" | "image";
export type FaultKind =
  | "429"
  | "500"
  | "maxlag"
  | "truncated"
  | "slow"
  | "reset"
  /** 200 with an HTML error page (a proxy, an overloaded server). */
  | "html"
  /** 200 with JSON that lacks what was asked for (see malform). */
  | "no-claims"
  | "no-labels"
  | "no-info"
  | "missing-entity"
  | "wrong-types"
  | "drop-page"
  /** SPARQL: a well-formed answer with no rows (a lagging or short-answering query service). */
  | "empty";

export interface Fault {
  target: FaultTarget;
  kind: FaultKind;
  /** How many requests it hits (default 1). */
  times?: number;
  /** For 429 and maxlag (default 1). */
  retryAfterS?: number;
  /** For slow answers (default 2000). */
  delayMs?: number;
  /** Only requests whose parameters have these values (e.g. { props: "info|claims|labels" }). */
  match?: Record<string, string>;
}

export interface LoggedRequest {
  target: FaultTarget;
  path: string;
  params: URLSearchParams;
  userAgent: string | undefined;
}

export interface WorldServer {
  url: string;
  sparqlUrl: string;
  wikidataApiUrl: string;
  commonsApiUrl: string;
  requests: LoggedRequest[];
  fault(f: Fault): void;
  /** Faults not yet used up. */
  pendingFaults(): Fault[];
  clearFaults(): void;
  stop(): Promise<void>;
}

export interface ServerOptions {
  /** Pages with imageinfo per Commons answer before it says `continue` (default 20). */
  imageinfoPageLimit?: number;
  /** Port on 127.0.0.1 (default 0: any free one). */
  port?: number;
}

export async function startWorldServer(model: WorldModel, options: ServerOptions = {}): Promise<WorldServer> {
  const pageLimit = options.imageinfoPageLimit ?? 20;
  const requests: LoggedRequest[] = [];
  const faults: (Fault & { left: number })[] = [];
  let store: Store | null = null;
  let storeGeneration = -1;
  const sparqlStore = () => {
    if (!store || storeGeneration !== model.generation) {
      store = new Store();
      store.load(model.turtle(), { format: "text/turtle" });
      storeGeneration = model.generation;
    }
    return store;
  };
  let base = "";

  const takeFault = (target: FaultTarget, params: URLSearchParams) => {
    const f = faults.find((x) => x.target === target && x.left > 0 && Object.entries(x.match ?? {}).every(([k, v]) => params.get(k) === v));
    if (f) f.left--;
    return f;
  };

  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end(String(err));
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? "/", base);
    const body = await readBody(req);
    const params = new URLSearchParams(u.search);
    if (req.method === "POST" && req.headers["content-type"]?.includes("x-www-form-urlencoded")) {
      for (const [k, v] of new URLSearchParams(body)) params.set(k, v);
    }
    const target: FaultTarget | null =
      u.pathname === "/sparql"
        ? "sparql"
        : u.pathname === "/w/api.php"
          ? "wikidata"
          : u.pathname === "/commons/w/api.php"
            ? "commons"
            : u.pathname.startsWith("/thumb/") || u.pathname.startsWith("/file/")
              ? "image"
              : null;
    if (!target) return void res.writeHead(404).end();
    requests.push({ target, path: u.pathname, params, userAgent: req.headers["user-agent"] });

    const answer = target === "image" ? image(u.pathname) : { type: "application/json", body: Buffer.from(api(target, params)) };
    if (!answer) return void res.writeHead(404).end();
    const fault = takeFault(target, params);
    switch (fault?.kind) {
      case "429":
        return void res.writeHead(429, { "retry-after": String(fault.retryAfterS ?? 1), "content-type": "text/plain" }).end("Too Many Requests");
      case "500":
        return void res.writeHead(500, { "content-type": "text/plain" }).end("Internal Server Error");
      case "maxlag":
        return void res
          .writeHead(200, { "retry-after": String(fault.retryAfterS ?? 1), "content-type": "application/json" })
          .end(JSON.stringify({ error: { code: "maxlag", info: "Waiting for 10.0.0.1: 6 seconds lagged." } }));
      case "truncated": {
        // What WDQS sends when a query times out: a 200 whose JSON stops half-way.
        const cut = answer.body.subarray(0, Math.floor(answer.body.length / 2));
        return void res.writeHead(200, { "content-type": answer.type }).end(Buffer.concat([cut, Buffer.from("\njava.util.concurrent.TimeoutException")]));
      }
      case "reset":
        res.writeHead(200, { "content-type": answer.type, "content-length": answer.body.length });
        res.write(answer.body.subarray(0, Math.floor(answer.body.length / 2)));
        await new Promise((r) => setTimeout(r, 20));
        res.socket?.destroy();
        return;
      case "html":
        return void res
          .writeHead(200, { "content-type": "text/html; charset=utf-8" })
          .end("<!DOCTYPE html><html><head><title>Wikimedia Error</title></head><body><p>Our servers are currently under maintenance.</p></body></html>");
      case "no-claims":
      case "no-labels":
      case "no-info":
      case "missing-entity":
      case "wrong-types":
      case "drop-page":
      case "empty": {
        const body = Buffer.from(JSON.stringify(malform(target, fault.kind, JSON.parse(answer.body.toString("utf8")))));
        return void res.writeHead(200, { "content-type": answer.type, "content-length": body.length }).end(body);
      }
      case "slow":
        await new Promise((r) => setTimeout(r, fault.delayMs ?? 2000));
        break;
      default:
    }
    res.writeHead(200, { "content-type": answer.type, "content-length": answer.body.length }).end(answer.body);
  }

  function api(target: FaultTarget, params: URLSearchParams): string {
    if (target === "sparql") {
      const q = params.get("query");
      if (!q) return JSON.stringify({ error: "no query" });
      return sparqlStore().query(q, { results_format: "application/sparql-results+json" }) as string;
    }
    if (target === "wikidata") {
      if (params.get("action") !== "wbgetentities") return JSON.stringify({ error: { code: "badvalue", info: "unsupported action" } });
      const ids = (params.get("ids") ?? "").split("|").filter(Boolean);
      const props = (params.get("props") ?? "info|sitelinks|aliases|labels|descriptions|claims|datatype").split("|");
      const languages = params.get("languages")?.split("|") ?? null;
      return JSON.stringify(model.wbgetentities(ids, props, languages));
    }
    const titles = (params.get("titles") ?? "").split("|").filter(Boolean);
    const all = model.imageinfo(titles, Number(params.get("iiurlwidth") ?? 0) || 960, base);
    const start = Number(params.get("iicontinue") ?? 0);
    // As MediaWiki does: every page in every answer, imageinfo only on this answer's share of them.
    const pages = all.pages.map(([key, p], i) => {
      if (i >= start && i < start + pageLimit) return [key, p];
      const { imageinfo: _, ...rest } = p as Record<string, unknown>;
      return [key, rest];
    });
    const out: Record<string, unknown> = {
      batchcomplete: start + pageLimit >= all.pages.length ? "" : undefined,
      query: { normalized: all.normalized, redirects: all.redirects, pages: Object.fromEntries(pages) },
    };
    if (start + pageLimit < all.pages.length) out.continue = { iicontinue: String(start + pageLimit), continue: "||" };
    return JSON.stringify(out);
  }

  function image(path: string): { type: string; body: Buffer } | null {
    const sha1 = path.split("/")[2] ?? "";
    const f = model.fileBySha1(sha1);
    return f ? { type: f.mime, body: f.bytes } : null;
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", resolve);
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    sparqlUrl: `${base}/sparql`,
    wikidataApiUrl: `${base}/w/api.php`,
    commonsApiUrl: `${base}/commons/w/api.php`,
    requests,
    fault: (f) => faults.push({ ...f, left: f.times ?? 1 }),
    pendingFaults: () => faults.filter((f) => f.left > 0),
    clearFaults: () => void faults.splice(0),
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/**
 * A 200 answer that lacks what was asked for or has values of the wrong type: what a broken proxy,
 * a half-deployed API or a bug upstream sends. Only the first entity or page is changed, so a
 * client that checks only the shape of the whole answer still misses it.
 */
function malform(target: FaultTarget, kind: FaultKind, json: any): unknown {
  if (target === "sparql") {
    const rows: Record<string, unknown>[] = json.results.bindings;
    if (kind === "empty") json.results.bindings = [];
    else if (kind === "wrong-types") {
      if (rows[0]) rows[0].version = { type: "literal", value: "not a number" };
      else json.results.bindings = {};
    } else if (rows[0]) {
      // A row without the item the query selects.
      delete rows[0].item;
    }
    return json;
  }
  if (target === "wikidata") {
    const entities: Record<string, Record<string, any>> = json.entities;
    const [key, first] = Object.entries(entities).find(([, e]) => e.missing === undefined) ?? Object.entries(entities)[0]!;
    if (kind === "no-claims") for (const e of Object.values(entities)) delete e.claims;
    else if (kind === "no-labels") for (const e of Object.values(entities)) delete e.labels;
    else if (kind === "no-info") delete first.lastrevid;
    else if (kind === "missing-entity") delete entities[key];
    else if (kind === "wrong-types") {
      first.lastrevid = String(first.lastrevid ?? "1");
      const p18 = first.claims?.P18?.[0];
      if (p18) p18.mainsnak.datavalue = { value: 42, type: "string" };
    }
    return json;
  }
  const pages: Record<string, Record<string, any>> = json.query.pages;
  const [key, first] = Object.entries(pages)[0]!;
  if (kind === "drop-page" || kind === "missing-entity") delete pages[key];
  else if (kind === "wrong-types") {
    const ii = first.imageinfo?.[0];
    if (ii) ii.size = "big";
    else first.title = 7;
  } else if (first.imageinfo?.[0]) delete first.imageinfo[0].sha1;
  return json;
}
