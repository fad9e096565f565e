import { request } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthThrottle } from "../../src/api/auth-throttle.js";
import { loadConfig } from "../../src/config.js";
import { createHttpApp } from "../../src/server.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { makeArtwork } from "../support/factories.js";
import { serveOnFreePort } from "../support/http.js";

/**
 * Guessing the API token: each client address may present AUTH_MAX_FAILURES wrong tokens per
 * window, over GraphQL and the workbench's sign-in together; then every token check from it is
 * refused with 429 and Retry-After, the right token included, while other addresses and anonymous
 * reads go on.
 */

const TOKEN = "throttle-token-0123456789";
const SET = `mutation { setDescription(id: "Q4301", text: "Guessed.") { __typename } }`;
let t: TestDb;

beforeAll(async () => {
  t = await createTestDb();
  await makeArtwork(t.db, { qid: "Q4301" });
});
afterAll(() => t.close());

async function serve(env: Record<string, string> = {}) {
  const config = loadConfig({ IMAGE_DIR: join(t.dir, "images"), LOG_LEVEL: "silent", API_TOKEN: TOKEN, AUTH_MAX_FAILURES: "4", ...env });
  return serveOnFreePort(createHttpApp({ db: t.db, config }).server);
}

/** An HTTP request from a chosen loopback address (127.0.0.x are all this machine). */
function send(base: string, from: string, path: string, body: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: "POST", localAddress: from, headers: { "content-length": Buffer.byteLength(body), ...headers } }, (res) => {
      let text = "";
      res.on("data", (d) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

const gql = (base: string, from: string, query: string, token?: string) =>
  send(base, from, "/graphql", JSON.stringify({ query }), { "content-type": "application/json", ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) });
const signIn = (base: string, from: string, token: string) =>
  send(base, from, "/sign-in", new URLSearchParams({ token, name: "Guesser", next: "/" }).toString(), { "content-type": "application/x-www-form-urlencoded", origin: base });

describe("wrong API tokens", () => {
  it("over GraphQL: after the limit, every token from that address gets 429 with Retry-After, the right one too", async () => {
    const { base, close } = await serve();
    try {
      for (let i = 0; i < 4; i++) {
        const r = await gql(base, "127.0.0.2", SET, `wrong-token-${i}-0123456789`);
        expect(r.status).toBe(200);
        expect(JSON.parse(r.body).data.setDescription.__typename).toBe("UnauthorizedError");
      }
      for (const token of ["another-wrong-token-0123", TOKEN]) {
        const r = await gql(base, "127.0.0.2", SET, token);
        expect(r.status, token).toBe(429);
        expect(Number(r.headers["retry-after"])).toBeGreaterThan(200);
        expect(JSON.parse(r.body).errors[0].extensions.code).toBe("TOO_MANY_AUTH_FAILURES");
      }
      // Anonymous reads from the same address, and every request from another address, go on.
      expect(JSON.parse((await gql(base, "127.0.0.2", `{ artwork(id: "Q4301") { ... on Artwork { qid } } }`)).body).data.artwork.qid).toBe("Q4301");
      const other = await gql(base, "127.0.0.3", SET, TOKEN);
      expect(JSON.parse(other.body).data.setDescription.__typename).toBe("Description");
    } finally {
      close();
    }
  });

  it("at sign-in and over GraphQL count together; the sign-in page answers 429 with Retry-After", async () => {
    const { base, close } = await serve();
    try {
      expect((await gql(base, "127.0.0.4", SET, "wrong-token-a-0123456789")).status).toBe(200);
      expect((await signIn(base, "127.0.0.4", "wrong-token-a2-0123456789")).status).toBe(401);
      expect((await signIn(base, "127.0.0.4", "wrong-token-b-0123456789")).status).toBe(401);
      expect((await signIn(base, "127.0.0.4", "wrong-token-c-0123456789")).status).toBe(401);
      const refused = await signIn(base, "127.0.0.4", TOKEN);
      expect(refused.status).toBe(429);
      expect(Number(refused.headers["retry-after"])).toBeGreaterThan(0);
      expect(refused.body).toContain("Too many wrong tokens from your address");
      expect(refused.headers["set-cookie"]).toBeUndefined();
      expect((await gql(base, "127.0.0.4", SET, TOKEN)).status).toBe(429);
      // Another address signs in.
      expect((await signIn(base, "127.0.0.5", TOKEN)).status).toBe(303);
    } finally {
      close();
    }
  });

  it("no token is no attempt: an empty Authorization, 'Bearer' alone or another scheme (a proxy's Basic) is anonymous, never counted nor refused", async () => {
    const { base, close } = await serve();
    const read = `{ artwork(id: "Q4301") { ... on Artwork { qid } } }`;
    try {
      for (const authorization of ["", "Bearer", "Bearer   ", "bearer ", "Basic d3Jvbmc6d3Jvbmc="]) {
        for (let i = 0; i < 6; i++) {
          const r = await send(base, "127.0.0.8", "/graphql", JSON.stringify({ query: i % 2 ? SET : read }), { "content-type": "application/json", authorization });
          expect(r.status, JSON.stringify(authorization)).toBe(200);
          if (i % 2) expect(JSON.parse(r.body).data.setDescription.__typename).toBe("UnauthorizedError");
          else expect(JSON.parse(r.body).data.artwork.qid).toBe("Q4301");
        }
      }
      // Thirty of them later, the right token from the same address still works.
      expect(JSON.parse((await gql(base, "127.0.0.8", SET, TOKEN)).body).data.setDescription.__typename).toBe("Description");
    } finally {
      close();
    }
  });

  it("a right token never counts, and AUTH_MAX_FAILURES=0 sets no limit", async () => {
    const limited = await serve();
    try {
      for (let i = 0; i < 10; i++) expect(JSON.parse((await gql(limited.base, "127.0.0.6", SET, TOKEN)).body).data.setDescription.__typename).toBe("Description");
    } finally {
      limited.close();
    }
    const open = await serve({ AUTH_MAX_FAILURES: "0" });
    try {
      for (let i = 0; i < 12; i++) expect((await gql(open.base, "127.0.0.7", SET, `wrong-token-${i}-0123456789`)).status).toBe(200);
      expect(JSON.parse((await gql(open.base, "127.0.0.7", SET, TOKEN)).body).data.setDescription.__typename).toBe("Description");
    } finally {
      open.close();
    }
  });
});

describe("behind a reverse proxy (TRUSTED_PROXIES)", () => {
  it("counts each forwarded client apart, and a client that writes X-Forwarded-For itself is not believed", async () => {
    const { base, close } = await serve({ TRUSTED_PROXIES: "127.0.0.10" });
    const via = (from: string, forwarded: string, token: string) =>
      send(base, from, "/graphql", JSON.stringify({ query: SET }), { "content-type": "application/json", authorization: `Bearer ${token}`, "x-forwarded-for": forwarded });
    try {
      for (let i = 0; i < 4; i++) expect((await via("127.0.0.10", "198.51.100.7", `wrong-token-${i}-0123456789`)).status).toBe(200);
      expect((await via("127.0.0.10", "198.51.100.7", TOKEN)).status).toBe(429);
      // Another client through the same proxy, even one that forged the guesser's address on the left.
      const other = await via("127.0.0.10", "198.51.100.7, 198.51.100.8", TOKEN);
      expect(JSON.parse(other.body).data.setDescription.__typename).toBe("Description");
      // Not through the proxy: the header is the client's own and ignored, its socket counts.
      for (let i = 0; i < 4; i++) expect((await via("127.0.0.11", `198.51.100.${20 + i}`, `wrong-token-${i}-0123456789`)).status).toBe(200);
      expect((await via("127.0.0.11", "198.51.100.99", TOKEN)).status).toBe(429);
    } finally {
      close();
    }
  });
});

describe("AuthThrottle", () => {
  it("frees a client as its failures leave the window, one by one", () => {
    let now = 0;
    const throttle = new AuthThrottle({ maxFailures: 3, windowMs: 60_000, maxClients: 100 }, () => now);
    for (const at of [0, 10_000, 20_000]) {
      now = at;
      expect(throttle.retryAfterS("a")).toBe(0);
      throttle.fail("a");
    }
    expect(throttle.retryAfterS("a")).toBe(40);
    expect(throttle.retryAfterS("b")).toBe(0);
    now = 60_000;
    // The first failure has left the window: one more try, then refused until the second leaves.
    expect(throttle.retryAfterS("a")).toBe(0);
    throttle.fail("a");
    expect(throttle.retryAfterS("a")).toBe(10);
    now = 200_000;
    expect(throttle.retryAfterS("a")).toBe(0);
    expect(throttle.clients).toBe(0);
  });

  it("remembers at most maxClients addresses, forgetting the one that failed longest ago", () => {
    const throttle = new AuthThrottle({ maxFailures: 1, windowMs: 60_000, maxClients: 3 }, () => 0);
    for (const c of ["a", "b", "c"]) throttle.fail(c);
    throttle.fail("a");
    throttle.fail("d");
    expect(throttle.clients).toBe(3);
    expect(throttle.retryAfterS("b")).toBe(0);
    for (const c of ["a", "c", "d"]) expect(throttle.retryAfterS(c)).toBe(60);
  });
});
