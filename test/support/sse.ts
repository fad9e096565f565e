import { request as httpRequest } from "node:http";

/** Reads a GraphQL-over-SSE stream (graphql-yoga's format) until it completes; calls onEvent per event. */
export async function readEvents(res: Response, onEvent: (e: any) => void = () => {}): Promise<any[]> {
  const events: any[] = [];
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let cut: number;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      if (block.startsWith("event: complete")) return events;
      const data = block
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trim())
        .join("");
      if (data) {
        events.push(JSON.parse(data));
        onEvent(events.at(-1));
      }
    }
  }
  return events;
}

/** One GraphQL-over-SSE stream opened over a real socket (node:http, so a test can pick its local address). */
export interface SseStream {
  /** Response status, once the headers came. */
  status: Promise<number>;
  /** Events so far (each a GraphQL result). */
  events: any[];
  /** Resolves with the n-th event (0-based) once it came, or rejects if the stream ends first. */
  event(n: number): Promise<any>;
  /** Resolves when the server completed the stream (`event: complete`) or closed the socket. */
  ended: Promise<"complete" | "closed">;
  /** The client goes: the socket is destroyed. */
  close(): void;
}

/** Opens `query` as an SSE subscription on `base`/graphql from `localAddress` (default 127.0.0.1). */
export function openSse(base: string, query: string, variables: Record<string, unknown> = {}, o: { localAddress?: string } = {}): SseStream {
  const events: any[] = [];
  const waiters: { n: number; resolve: (e: any) => void; reject: (err: Error) => void }[] = [];
  let finished = false;
  let setStatus!: (s: number) => void;
  let setEnded!: (how: "complete" | "closed") => void;
  const status = new Promise<number>((r) => (setStatus = r));
  const ended = new Promise<"complete" | "closed">((r) => (setEnded = r));
  const finish = (how: "complete" | "closed") => {
    if (finished) return;
    finished = true;
    setEnded(how);
    for (const w of waiters.splice(0)) w.reject(new Error(`stream ended (${how}) before event ${w.n}`));
  };
  const url = new URL("/graphql", base);
  const body = JSON.stringify({ query, variables });
  const req = httpRequest(url, {
    method: "POST",
    localAddress: o.localAddress ?? "127.0.0.1",
    headers: { "content-type": "application/json", accept: "text/event-stream", "content-length": Buffer.byteLength(body) },
  });
  req.on("error", () => finish("closed"));
  req.on("response", (res) => {
    setStatus(res.statusCode ?? 0);
    res.setEncoding("utf8");
    let buffer = "";
    res.on("data", (chunk: string) => {
      buffer += chunk;
      let cut: number;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        if (block.startsWith("event: complete")) return finish("complete");
        const data = block
          .split("\n")
          .filter((l) => l.startsWith("data:"))
          .map((l) => l.slice(5).trim())
          .join("");
        if (!data) continue;
        events.push(JSON.parse(data));
        for (const w of waiters.filter((x) => x.n < events.length)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(events[w.n]);
        }
      }
    });
    res.on("close", () => finish("closed"));
    res.on("error", () => finish("closed"));
  });
  req.end(body);
  return {
    status,
    events,
    ended,
    event: (n) =>
      n < events.length
        ? Promise.resolve(events[n])
        : finished
          ? Promise.reject(new Error(`stream ended before event ${n}`))
          : new Promise((resolve, reject) => waiters.push({ n, resolve, reject })),
    close: () => {
      req.destroy();
      finish("closed");
    },
  };
}
