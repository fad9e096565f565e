import { expect, it } from "vitest";
import { RateLimitedLog } from "../../src/ops/rate-limited-log.js";
import { capturingLogger } from "../support/log.js";

it("logs each kind at most once per interval and counts what it held back", async () => {
  const { lines, log } = capturingLogger();
  let now = 0;
  const limited = new RateLimitedLog(log, 60_000, () => now);
  for (let second = 0; second < 60; second++, now += 1_000) limited.warn("read-probe", { probe: "read" }, "cannot read");
  // Another kind is not held back by the first.
  expect(limited.warn("write-probe", { probe: "write" }, "cannot write")).toBe(true);
  now = 60_000;
  expect(limited.warn("read-probe", { probe: "read" }, "cannot read")).toBe(true);
  await new Promise((r) => setImmediate(r));
  expect(lines.map((l) => [l.level, l.msg, l.repeated])).toEqual([
    [40, "cannot read", undefined],
    [40, "cannot write", undefined],
    [40, "cannot read", 59],
  ]);
});

it("keys per client stay bounded: past maxKeys the key logged longest ago is forgotten, its next line a first one", async () => {
  const { lines, log } = capturingLogger();
  let now = 0;
  const limited = new RateLimitedLog(log, 60_000, () => now, 2);
  const warn = (client: string) => limited.warn(`pipelining ${client}`, { client }, "closed");
  warn("a");
  warn("a");
  warn("b");
  now = 59_999;
  warn("a");
  now = 60_000;
  warn("a");
  warn("b");
  // Past two keys, the one logged longest ago ("a") is forgotten: its next warning is a first line again.
  warn("c");
  now = 60_001;
  warn("b");
  warn("a");
  await new Promise((r) => setImmediate(r));
  expect(lines.map((l) => [l.client, l.repeated])).toEqual([
    ["a", undefined],
    ["b", undefined],
    ["a", 2],
    ["b", undefined],
    ["c", undefined],
    ["a", undefined],
  ]);
});

it("error() is held back the same way, at error level, sharing the key space with warn()", async () => {
  const { lines, log } = capturingLogger();
  let now = 0;
  const limited = new RateLimitedLog(log, 60_000, () => now);
  for (let i = 0; i < 5; i++, now += 1_000) limited.error("database write failed: write: disk full", { what: "write" }, "database write failed");
  now = 60_000;
  expect(limited.error("database write failed: write: disk full", { what: "write" }, "database write failed")).toBe(true);
  await new Promise((r) => setImmediate(r));
  expect(lines.map((l) => [l.level, l.msg, l.repeated])).toEqual([
    [50, "database write failed", undefined],
    [50, "database write failed", 4],
  ]);
});
