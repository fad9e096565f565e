import { describe, expect, it } from "vitest";
import { CONFIG_KEYS, ConfigError, loadConfig } from "../src/config.js";

describe("loadConfig", () => {
  it("gives documented defaults for an empty environment", () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      DATABASE_URL: "file:./data/artdesc.db",
      PORT: 4000,
      IMAGE_DIR: "data/images",
      LOG_LEVEL: "info",
      SYNC_CREATORS: ["Q5432"],
      SYNC_LANGUAGES: ["en", "es"],
      SYNC_CRON: "0 3 * * *",
      IMAGE_EDGE: 1024,
      DESCRIBE_NUM_BEAMS: 4,
      DESCRIBE_MAX_NEW_TOKENS: 256,
      DESCRIBE_TARGET_WORDS: 150,
      DESCRIBE_IMAGE_SPLITTING: false,
      MODEL_DEVICE: "cpu",
    });
    expect(c.API_TOKEN).toBeUndefined();
    expect(c.MODEL_DTYPE).toBeUndefined();
  });

  it("parses lists, booleans and per-module dtypes; empty strings count as unset", () => {
    const c = loadConfig({
      SYNC_CREATORS: "Q5432, Q296",
      DESCRIBE_IMAGE_SPLITTING: "true",
      MODEL_DTYPE: "vision_encoder=fp16,embed_tokens=fp32,decoder_model_merged=q4",
      PORT: "",
    });
    expect(c.SYNC_CREATORS).toEqual(["Q5432", "Q296"]);
    expect(c.DESCRIBE_IMAGE_SPLITTING).toBe(true);
    expect(c.MODEL_DTYPE).toEqual({ vision_encoder: "fp16", embed_tokens: "fp32", decoder_model_merged: "q4" });
    expect(c.PORT).toBe(4000);
    expect(loadConfig({ MODEL_DTYPE: "q4f16" }).MODEL_DTYPE).toBe("q4f16");
  });

  it("names every bad variable and why, in one error", () => {
    let error: unknown;
    try {
      loadConfig({
        PORT: "http",
        SYNC_CREATORS: "Q5432,Goya",
        API_TOKEN: "short",
        MODEL_DTYPE: "vision_encoder=fp99",
        DESCRIBE_NUM_BEAMS: "9",
        WIKIDATA_SPARQL_URL: "ftp://example.org",
        DATABASE_URL: "mysql://x",
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    for (const key of ["PORT", "SYNC_CREATORS", "API_TOKEN", "MODEL_DTYPE", "DESCRIBE_NUM_BEAMS", "WIKIDATA_SPARQL_URL", "DATABASE_URL"]) {
      expect(message).toContain(`${key}=`);
    }
    expect(message).toContain('"Goya": not a Wikidata item id like Q5432');
    expect(message).toContain("at least 16 characters");
    expect((error as ConfigError).problems).toHaveLength(8); // MODEL_DTYPE reports the bad dtype and the modules left without one
  });

  it("shows no secret in its errors, and says in words what a number must be", () => {
    const message = (() => {
      try {
        loadConfig({ API_TOKEN: "almost-a-token", SESSION_SECRET: "too-short-secret", DATABASE_URL: "mysql://me:hunter2@db/x", PORT: "abc", API_WORKERS: "1.5", GRAPHQL_MAX_DEPTH: "0" });
      } catch (e) {
        return (e as ConfigError).message;
      }
      throw new Error("accepted");
    })();
    expect(message).toContain("API_TOKEN=<secret, 14 characters>: must be at least 16 characters");
    expect(message).toContain("SESSION_SECRET=<secret, 16 characters>");
    expect(message).toContain('DATABASE_URL="mysql://me:***@db/x"');
    for (const secret of ["almost-a-token", "too-short-secret", "hunter2"]) expect(message).not.toContain(secret);
    expect(message).toContain('PORT="abc": must be a number');
    expect(message).toContain('API_WORKERS="1.5": must be a whole number');
    expect(message).toMatch(/GRAPHQL_MAX_DEPTH="0": must be between \d+ and \d+/);
  });

  it("refuses bad values of the connection, body and similarity limits, naming each; empty means the default", () => {
    const bad: [string, string, RegExp][] = [
      ["HTTP_MAX_CONNECTIONS_PER_CLIENT", "many", /must be a number/],
      ["HTTP_MAX_CONNECTIONS_PER_CLIENT", "-1", /must be between 0 and 1000000/],
      ["HTTP_MAX_CONNECTIONS_PER_CLIENT", "2.5", /must be a whole number/],
      ["HTTP_BODY_BYTES_IN_FLIGHT", "999", /must be between 1000000 and 100000000000/],
      ["HTTP_BODY_BYTES_IN_FLIGHT", "1e300", /must be between/],
      ["SEARCH_SEMANTIC_MIN_SIMILARITY", "1", /must be between -1 and 0.999/],
      ["SEARCH_SEMANTIC_MIN_SIMILARITY", "NaN", /must be a number/],
    ];
    for (const [key, value, why] of bad) expect(() => loadConfig({ [key]: value }), `${key}=${value}`).toThrow(new RegExp(`${key}="${value.replace(/[.+]/g, "\\$&")}": ${why.source}`));
    const defaults = loadConfig({ HTTP_MAX_CONNECTIONS_PER_CLIENT: "", HTTP_BODY_BYTES_IN_FLIGHT: "", SEARCH_SEMANTIC_MIN_SIMILARITY: "" });
    expect([defaults.HTTP_MAX_CONNECTIONS_PER_CLIENT, defaults.HTTP_BODY_BYTES_IN_FLIGHT, defaults.SEARCH_SEMANTIC_MIN_SIMILARITY]).toEqual([256, 64 * 1024 * 1024, 0]);
    expect(loadConfig({ HTTP_MAX_CONNECTIONS_PER_CLIENT: "0", SEARCH_SEMANTIC_MIN_SIMILARITY: "-0.5" })).toMatchObject({ HTTP_MAX_CONNECTIONS_PER_CLIENT: 0, SEARCH_SEMANTIC_MIN_SIMILARITY: -0.5 });
  });

  it("refuses a heartbeat that would look stale between two beats", () => {
    expect(() => loadConfig({ HEARTBEAT_INTERVAL_S: "10", HEARTBEAT_STALE_S: "15" })).toThrow(/HEARTBEAT_STALE_S=15: must be at least twice HEARTBEAT_INTERVAL_S \(10\)/);
    expect(loadConfig({ HEARTBEAT_INTERVAL_S: "10", HEARTBEAT_STALE_S: "20" }).HEARTBEAT_STALE_S).toBe(20);
  });

  it("names every bad variable in one message: a value bad alone and values bad together", () => {
    let err: unknown;
    try {
      loadConfig({ PORT: "abc", HEARTBEAT_STALE_S: "5", UI_REQUIRE_SIGN_IN: "true", API_TOKEN: "" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems;
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/^PORT="abc": /);
    expect(problems.some((p) => p.startsWith("UI_REQUIRE_SIGN_IN=true: needs API_TOKEN"))).toBe(true);
    expect(problems.some((p) => p.startsWith("HEARTBEAT_STALE_S=5: must be at least twice"))).toBe(true);
    // A check across a variable that is bad alone is left out: it would reason from its default.
    let second: unknown;
    try {
      loadConfig({ HEARTBEAT_INTERVAL_S: "often", HEARTBEAT_STALE_S: "5" });
    } catch (e) {
      second = e;
    }
    expect((second as ConfigError).problems).toEqual([expect.stringMatching(/^HEARTBEAT_INTERVAL_S="often": /)]);
  });

  it("refuses malformed image hosts and pool sizes, naming the variable", () => {
    for (const hosts of ["http://upload.wikimedia.org", "a b", "host:port", "../etc", ",", "upload.wikimedia.org:70000", "[:::]"]) {
      expect(() => loadConfig({ IMAGE_HOSTS: hosts }), hosts).toThrow(/IMAGE_HOSTS=/);
    }
    expect(loadConfig({ IMAGE_HOSTS: "upload.wikimedia.org, 127.0.0.1:4100,[::1]:8080" }).IMAGE_HOSTS).toEqual(["upload.wikimedia.org", "127.0.0.1:4100", "[::1]:8080"]);
    expect(loadConfig({}).IMAGE_HOSTS).toBeUndefined();
    for (const size of ["0", "-1", "1001", "ten", "2.5"]) expect(() => loadConfig({ DATABASE_POOL_SIZE: size }), size).toThrow(/DATABASE_POOL_SIZE=/);
    expect(loadConfig({ DATABASE_POOL_SIZE: "40" }).DATABASE_POOL_SIZE).toBe(40);
  });

  it("documents every variable in the README's configuration table", async () => {
    const { readFileSync } = await import("node:fs");
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    const missing = CONFIG_KEYS.filter((k) => !readme.includes(`| \`${k}\``));
    expect(missing).toEqual([]);
  });

  it("passes every variable from the shell or .env to the compose file's containers (but the paths and port the image sets)", async () => {
    const { readFileSync } = await import("node:fs");
    const compose = readFileSync(new URL("../docker-compose.yml", import.meta.url), "utf8");
    const start = compose.indexOf("x-settings: &settings\n");
    const settings = compose.slice(start, compose.indexOf("\n\n", start));
    const passed = [...settings.matchAll(/^ {2}([A-Z0-9_]+): \$\{\1:-\}$/gm)].map((m) => m[1]);
    expect(passed).toEqual(CONFIG_KEYS.filter((k) => !["DATABASE_URL", "IMAGE_DIR", "MODEL_DIR", "HOST", "PORT"].includes(k)));
    // Both the services on the image and the scale-out worker take them.
    expect(compose.match(/^ {4,6}<<: \*settings$/gm)).toHaveLength(2);
  });
});
