import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ISOLATED_TEST_FILES } from "./support/isolation.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

describe("test files that need a module graph of their own (vitest.config.ts)", () => {
  const files = readdirSync(join(ROOT, "test"), { recursive: true })
    .map(String)
    .filter((f) => f.endsWith(".test.ts"))
    .map((f) => `test/${f}`);

  it("every file that mocks a module with vi.mock runs isolated", () => {
    const mocking = files.filter((f) => /\bvi\.(do)?[mM]ock\(/.test(readFileSync(join(ROOT, f), "utf8")));
    expect(mocking.length).toBeGreaterThan(0);
    expect(mocking.filter((f) => !ISOLATED_TEST_FILES.includes(f))).toEqual([]);
  });

  it("every isolated file exists", () => {
    expect(ISOLATED_TEST_FILES.filter((f) => !files.includes(f))).toEqual([]);
  });
});
