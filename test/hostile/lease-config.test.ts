import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";
import { httpGql, listeningBase, spawnArtdesc, waitForHealth } from "../support/processes.js";

/**
 * SYNC_CRON and SYNC_TIMEZONE are checked with the rest of the configuration: every long-running
 * command and `sync` refuse a bad one with one message naming every bad variable, exit 2, before
 * anything listens (they used to start, then exit 1, or answer "Unexpected error." to nextSyncAt).
 */

const dir = mkdtempSync(join(tmpdir(), "artdesc-lease-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const base = { DATABASE_URL: `file:${join(dir, "a.db")}`, IMAGE_DIR: join(dir, "images"), HOST: "127.0.0.1", USER_AGENT_CONTACT: "https://example.org/tests" };

const cases: { command: string; env: Record<string, string>; bad: string[] }[] = [
  { command: "start", env: { SYNC_CRON: "bad", SYNC_TIMEZONE: "Mars/Base", PORT: "eighty" }, bad: ['SYNC_CRON="bad"', 'SYNC_TIMEZONE="Mars/Base"', 'PORT="eighty"'] },
  { command: "serve", env: { SYNC_CRON: "61 * * * *", SYNC_TIMEZONE: " " }, bad: ['SYNC_CRON="61 * * * *"', 'SYNC_TIMEZONE=" "'] },
  { command: "daemon", env: { SYNC_CRON: "1 2 3 4 5 6 7", SYNC_TIMEZONE: "Europe/Atlantis" }, bad: ['SYNC_CRON="1 2 3 4 5 6 7"', 'SYNC_TIMEZONE="Europe/Atlantis"'] },
  { command: "sync", env: { SYNC_CRON: "0 0 30 2 *", SYNC_TIMEZONE: "GMT+25" }, bad: ['SYNC_CRON="0 0 30 2 *"', 'SYNC_TIMEZONE="GMT+25"'] },
  { command: "serve", env: { SYNC_CRON: "0 3 * *" }, bad: ['SYNC_CRON="0 3 * *"'] },
  { command: "start", env: { SYNC_CRON: "0 25 * * *", SYNC_TIMEZONE: "Europe/Madrid" }, bad: ['SYNC_CRON="0 25 * * *"'] },
  { command: "daemon", env: { SYNC_CRON: "   " }, bad: ['SYNC_CRON="   "'] },
];

describe("a bad SYNC_CRON or SYNC_TIMEZONE", () => {
  it("stops start, serve, daemon and sync with exit 2 and one message naming each bad variable, before anything listens", async () => {
    const results = await Promise.all(
      cases.map(async (c) => {
        const p = spawnArtdesc([c.command], { ...base, PORT: "0", ...c.env });
        return { c, code: await p.exited, output: p.output() };
      }),
    );
    for (const { c, code, output } of results) {
      const what = `${c.command} ${JSON.stringify(c.env)}:\n${output}`;
      expect(code, what).toBe(2);
      expect(output, what).toMatch(/Invalid configuration/);
      for (const b of c.bad) expect(output, what).toContain(`${b}: `);
      expect(output.match(/Invalid configuration/g), what).toHaveLength(1);
      expect(output, what).not.toMatch(/API listening|sync scheduled|worker started/);
      if (!c.bad.some((b) => b.startsWith("SYNC_TIMEZONE"))) expect(output, what).not.toContain("SYNC_TIMEZONE=");
    }
  }, 180_000);

  it("is named in-process too; an empty value takes the default, and six fields (seconds) are node-cron's own syntax", () => {
    expect(() => loadConfig({ SYNC_CRON: "*/0 * * * *" })).toThrow(ConfigError);
    expect(() => loadConfig({ SYNC_CRON: "0 3 * * 8", SYNC_TIMEZONE: "Mars/Base" })).toThrow(/SYNC_CRON="0 3 \* \* 8"[\s\S]*SYNC_TIMEZONE="Mars\/Base"/);
    expect(loadConfig({ SYNC_CRON: "", SYNC_TIMEZONE: "" })).toMatchObject({ SYNC_CRON: "0 3 * * *", SYNC_TIMEZONE: "UTC" });
    expect(loadConfig({ SYNC_CRON: "*/10 * * * * *" }).SYNC_CRON).toBe("*/10 * * * * *");
  });

  it("a good one in another time zone: serve answers nextSyncAt", async () => {
    const p = spawnArtdesc(["serve"], { ...base, PORT: "0", SYNC_CRON: "30 2 * * *", SYNC_TIMEZONE: "America/Argentina/Buenos_Aires" });
    try {
      const url = await listeningBase(p);
      await waitForHealth(url, 90_000);
      const r = await httpGql<{ nextSyncAt: string }>(`${url}/graphql`, "{ nextSyncAt }");
      expect(r.errors, p.output()).toBeUndefined();
      const next = new Date(r.data!.nextSyncAt);
      // 02:30 in Buenos Aires (UTC-3, no daylight saving) is 05:30 UTC, within the next day.
      expect([next.getUTCHours(), next.getUTCMinutes()]).toEqual([5, 30]);
      expect(next.getTime() - Date.now()).toBeGreaterThan(0);
      expect(next.getTime() - Date.now()).toBeLessThanOrEqual(86_400_000);
    } finally {
      expect(await p.stop("SIGTERM")).toBe(0);
    }
  }, 120_000);
});
