import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { STALE_TEMP_MS, sweepStaleTempFiles, tempPathFor } from "../../src/store/file-writes.js";

const root = mkdtempSync(join(tmpdir(), "artdesc-sweep-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Writes `rel` under root, last modified `ageMs` ago. */
function file(rel: string, ageMs: number): string {
  const path = join(root, rel);
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, "x");
  const at = new Date(Date.now() - ageMs);
  utimesSync(path, at, at);
  return path;
}

describe("sweepStaleTempFiles", () => {
  it("removes the old temporary files of the two-level layout, and nothing else", async () => {
    const old = STALE_TEMP_MS + 60_000;
    const image = file("ab/abcd.jpg", old);
    const leftImage = file("ab/abcd.jpg.1234.x7k2p9.tmp", old);
    const leftThumb = file("cd/cdef-320.webp.99.q1.tmp", old);
    const writing = file("ab/abef.jpg.1234.z9.tmp", 1_000);
    const notOurs = file("ab/notes.tmp", old);
    const deeper = file("ab/sub/abcd.jpg.1.a.tmp", old);
    const topLevel = file("abcd.jpg.1.a.tmp", old);
    const otherFolder = file("abc/abcd.jpg.1.a.tmp", old);

    expect(await sweepStaleTempFiles(root)).toBe(2);
    expect(existsSync(leftImage)).toBe(false);
    expect(existsSync(leftThumb)).toBe(false);
    for (const kept of [image, writing, notOurs, deeper, topLevel, otherFolder]) expect(existsSync(kept)).toBe(true);
    expect(await sweepStaleTempFiles(root)).toBe(0);
  });

  it("recognises the names writers take (tempPathFor)", async () => {
    const left = file(tempPathFor("ef/efab.jpg"), STALE_TEMP_MS + 60_000);
    expect(await sweepStaleTempFiles(root)).toBe(1);
    expect(existsSync(left)).toBe(false);
  });

  it("takes a folder that does not exist for an empty one", async () => {
    expect(await sweepStaleTempFiles(join(root, "missing"))).toBe(0);
  });
});
