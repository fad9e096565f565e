import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { sha256File } from "../../src/describe/model-files.js";

const dir = mkdtempSync(join(tmpdir(), "artdesc-sha-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("sha256File", () => {
  it("hashes files of every size through its reused buffer as one pass over the bytes would", async () => {
    const MB = 1024 * 1024;
    for (const size of [0, 1, MB - 1, MB, MB + 1, 2 * MB + MB / 2 + 3]) {
      const bytes = randomBytes(size);
      const file = join(dir, `f${size}`);
      writeFileSync(file, bytes);
      expect(await sha256File(file), `${size} bytes`).toBe(createHash("sha256").update(bytes).digest("hex"));
    }
  });

  it("stops when its signal is aborted, before a read or between two", async () => {
    const file = join(dir, "aborted");
    writeFileSync(file, randomBytes(3 * 1024 * 1024));
    const before = new AbortController();
    before.abort(new Error("stopped before"));
    await expect(sha256File(file, before.signal)).rejects.toThrow("stopped before");
    // Aborted while the file is opened or read: no further read starts.
    const during = new AbortController();
    const hashing = sha256File(file, during.signal);
    queueMicrotask(() => during.abort(new Error("stopped during")));
    await expect(hashing).rejects.toThrow("stopped during");
  });

  it("rejects a file that is not there", async () => {
    await expect(sha256File(join(dir, "missing"))).rejects.toMatchObject({ code: "ENOENT" });
  });
});
