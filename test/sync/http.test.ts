import { createServer } from "node:http";
import { gzipSync } from "node:zlib";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backoff, createHttpClient, HttpError, parseJson, retryAfter, userAgent } from "../../src/sync/http.js";

// A server that answers from a script, one entry per request.
let script: ((res: import("node:http").ServerResponse) => void)[] = [];
let base = "";
let served = 0;
const server = createServer((_req, res) => {
  served++;
  (script.shift() ?? ((r) => r.writeHead(200).end("{}")))(res);
});
beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const config = { USER_AGENT_CONTACT: "ops@example.org", HTTP_TIMEOUT_MS: 5_000, HTTP_MAX_RETRIES: 2, RETRY_AFTER_MAX_S: 20, HTTP_RETRY_BASE_MS: 100, HTTP_MAX_BODY_BYTES: 100_000 };
function client(overrides: Partial<typeof config> = {}) {
  const waits: number[] = [];
  const http = createHttpClient({ ...config, ...overrides }, { sleep: async (ms) => void waits.push(ms), random: () => 0.5 });
  return { http, waits };
}

describe("parseJson", () => {
  it("drops U+0000 from every string, however deep; keeps a literal backslash-u-0000 and everything else", () => {
    expect(parseJson('{"labels":{"en":{"value":"Bad\\u0000label"}},"list":["\\u0000", 1, null, "a\\u0000b\\u0000"]}')).toEqual({
      labels: { en: { value: "Badlabel" } },
      list: ["", 1, null, "ab"],
    });
    // An escaped backslash before "u0000" is text, not a NUL.
    expect(parseJson('{"path":"C:\\\\u0000"}')).toEqual({ path: "C:\\u0000" });
    expect(parseJson('{"ok":"Título \\u00e9"}')).toEqual({ ok: "Título é" });
    expect(() => parseJson('{"cut":')).toThrow(SyntaxError);
  });
});

describe("answers larger than HTTP_MAX_BODY_BYTES", () => {
  const big = Buffer.alloc(150_000, 0x61);
  it.each([
    ["declared by Content-Length, refused before reading", (r: import("node:http").ServerResponse) => r.writeHead(200, { "content-length": big.length }).end(big)],
    ["streamed without a length, cut off once past the cap", (r: import("node:http").ServerResponse) => {
      r.writeHead(200);
      for (let i = 0; i < 15; i++) r.write(big.subarray(0, 10_000));
      r.end();
    }],
    ["gzip that expands past the cap (small on the wire)", (r: import("node:http").ServerResponse) => {
      const packed = gzipSync(Buffer.alloc(5_000_000));
      r.writeHead(200, { "content-encoding": "gzip", "content-length": packed.length }).end(packed);
    }],
  ])("%s: an HttpError, not retried, for images and JSON alike", async (_what, answer) => {
    for (const read of ["bytes", "json"] as const) {
      script = [answer];
      const { http, waits } = client();
      const err = await (read === "bytes" ? http.bytes(base) : http.json(base)).catch((e: unknown) => e);
      expect(err, read).toBeInstanceOf(HttpError);
      expect(String((err as Error).message)).toMatch(/larger than 100000 bytes \(HTTP_MAX_BODY_BYTES/);
      expect(waits).toEqual([]);
    }
  });

  it("an answer of exactly the cap is read whole", async () => {
    script = [(r) => r.writeHead(200).end(Buffer.alloc(100_000, 0x62))];
    expect((await client().http.bytes(base)).length).toBe(100_000);
  });
});

describe("polite HTTP client", () => {
  it("names the client, its contact and the library", () => {
    expect(userAgent("ops@example.org")).toMatch(/^artdesc\/\d+\.\d+\.\d+ \(ops@example\.org\) undici\/\d+\.\d+\.\d+$/);
  });

  it("waits as long as Retry-After says", async () => {
    script = [(r) => r.writeHead(429, { "retry-after": "7" }).end(), (r) => r.writeHead(429, { "retry-after": "20" }).end()];
    const { http, waits } = client();
    expect(await http.json(base)).toEqual({});
    expect(waits).toEqual([7000, 20000]);
  });

  it("never asks before a Retry-After longer than RETRY_AFTER_MAX_S is over: the request fails, and that host is left alone until then", async () => {
    script = [(r) => r.writeHead(429, { "retry-after": "90" }).end()];
    const { http, waits } = client();
    served = 0;
    const err = await http.json(base).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpError);
    expect((err as Error).message).toMatch(/HTTP 429: the server asked to wait 90 s before asking again, longer than RETRY_AFTER_MAX_S \(20 s\)/);
    expect(waits).toEqual([]);
    expect(served).toBe(1);
    // The next request to the same host is not even sent.
    await expect(http.json(`${base}/other`)).rejects.toThrow(/asked to be left alone for (89|90) s more/);
    expect(served).toBe(1);
  });

  it("backs off on 5xx even with RETRY_AFTER_MAX_S=0 (a Retry-After is then never waited for)", async () => {
    script = [(r) => r.writeHead(503).end(), (r) => r.writeHead(200).end("{}")];
    const { http, waits } = client({ RETRY_AFTER_MAX_S: 0 });
    expect(await http.json(base)).toEqual({});
    expect(waits).toEqual([75]);
  });

  it("waits on a maxlag error answered with HTTP 200", async () => {
    script = [(r) => r.writeHead(200, { "retry-after": "3" }).end(JSON.stringify({ error: { code: "maxlag", info: "lagged" } }))];
    const { http, waits } = client();
    expect(await http.json(base)).toEqual({});
    expect(waits).toEqual([3000]);
  });

  it("backs off exponentially with jitter on 5xx and gives up after HTTP_MAX_RETRIES", async () => {
    script = [0, 1, 2].map(() => (r) => r.writeHead(503).end());
    const { http, waits } = client();
    await expect(http.json(base)).rejects.toThrow(/HTTP 503 after 3 attempt/);
    expect(waits).toEqual([75, 150]); // 100 * 2^n, jitter 0.5 -> three quarters
  });

  it("does not retry a 4xx", async () => {
    script = [(r) => r.writeHead(404).end()];
    const { http, waits } = client();
    await expect(http.json(base)).rejects.toBeInstanceOf(HttpError);
    expect(waits).toEqual([]);
  });

  it("retries a truncated JSON body, never returns part of it", async () => {
    script = [(r) => r.writeHead(200).end('{"head":{"vars":["item"]},"results":{"bindings":[{"item"'), (r) => r.writeHead(200).end('{"ok":true}')];
    const { http, waits } = client();
    expect(await http.json(base)).toEqual({ ok: true });
    expect(waits).toHaveLength(1);
  });

  it("reads a gzip-encoded image whole at the first try (Content-Length counts the compressed bytes); a cut-short plain one is tried again", async () => {
    const image = Buffer.from(Array.from({ length: 5_000 }, (_, i) => i % 7));
    const zipped = gzipSync(image);
    script = [(r) => r.writeHead(200, { "content-type": "image/jpeg", "content-encoding": "gzip", "content-length": zipped.length }).end(zipped)];
    const { http, waits } = client();
    expect(Buffer.compare(await http.bytes(base), image)).toBe(0);
    expect(waits).toEqual([]);
    script = [
      (r) => {
        r.writeHead(200, { "content-type": "image/jpeg", "content-length": image.length });
        r.write(image.subarray(0, 100));
        r.socket?.destroy();
      },
      (r) => r.writeHead(200, { "content-type": "image/jpeg", "content-length": image.length }).end(image),
    ];
    const again = client();
    expect(Buffer.compare(await again.http.bytes(base), image)).toBe(0);
    expect(again.waits).toHaveLength(1);
  });

  it("with allowUrl, asks only for allowed URLs: redirects are followed while they stay allowed; another host is an HttpError, never asked, never retried", async () => {
    let asked = 0;
    const other = createServer((_req, res) => (asked++, res.writeHead(200).end("secret")));
    await new Promise<void>((r) => other.listen(0, "127.0.0.1", r));
    const elsewhere = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
    try {
      const allowUrl = (u: URL) => u.host === new URL(base).host;
      const image = Buffer.from("image bytes");
      script = [(r) => r.writeHead(302, { location: "/moved.jpg" }).end(), (r) => r.writeHead(200, { "content-type": "image/jpeg" }).end(image)];
      const { http, waits } = client();
      expect((await http.bytes(`${base}/a.jpg`, { allowUrl })).toString()).toBe("image bytes");
      script = [(r) => r.writeHead(302, { location: `${elsewhere}/admin` }).end()];
      await expect(http.bytes(`${base}/b.jpg`, { allowUrl })).rejects.toThrow(new HttpError(`redirected to a host that is not allowed (${elsewhere})`, `${base}/b.jpg`));
      await expect(http.bytes(`${elsewhere}/metadata`, { allowUrl })).rejects.toThrow(/^a URL on a host that is not allowed/);
      script = Array.from({ length: 7 }, () => (r: import("node:http").ServerResponse) => r.writeHead(301, { location: "/again" }).end());
      await expect(http.bytes(`${base}/c.jpg`, { allowUrl })).rejects.toThrow("more than 5 redirects");
      expect([asked, waits]).toEqual([0, []]);
      script = [];
    } finally {
      await new Promise<void>((r) => other.close(() => r()));
    }
  });

  it("times out a stalled answer and retries it", async () => {
    script = [(r) => void setTimeout(() => r.writeHead(200).end("{}"), 3_000)];
    const { http, waits } = client({ HTTP_TIMEOUT_MS: 1_000 });
    expect(await http.json(base)).toEqual({});
    expect(waits).toHaveLength(1);
  });

  it("computes backoff within bounds and reads Retry-After dates", () => {
    for (let a = 0; a < 10; a++) {
      const d = backoff(a, 500, 10_000, Math.random);
      expect(d).toBeGreaterThanOrEqual(Math.min(10_000, 500 * 2 ** a) / 2);
      expect(d).toBeLessThanOrEqual(10_000);
    }
    expect(retryAfter("12")).toBe(12);
    expect(retryAfter(new Date(Date.now() + 5000).toUTCString())).toBeGreaterThan(3);
    expect(retryAfter("soon")).toBeUndefined();
  });
});
