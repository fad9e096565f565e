import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { capturingLogger } from "../support/log.js";
import { serveOnFreePort } from "../support/http.js";

// Running out of file descriptors or a failing disk cannot be made to happen here (the tests may run
// as root, whom permissions do not stop): fs's realpath fails with that code for one file.
vi.mock("node:fs/promises", async (importOriginal) => {
  const fs = await importOriginal<typeof import("node:fs/promises")>();
  return {
    ...fs,
    realpath: vi.fn(async (path: string) => {
      if (String(path).endsWith("emfile.jpg")) throw Object.assign(new Error("EMFILE: too many open files"), { code: "EMFILE" });
      return fs.realpath(path);
    }),
  };
});

const { imageRoute } = await import("../../src/api/images.js");

let dir: string;
let base: string;
let close: () => void;
const captured = capturingLogger();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "artdesc-image-errors-"));
  mkdirSync(join(dir, "ab"));
  writeFileSync(join(dir, "ab", "emfile.jpg"), "an image");
  const route = imageRoute(dir, captured.log);
  ({ base, close } = await serveOnFreePort(createServer((req, res) => void route(req, res))));
});
afterAll(() => {
  close();
  rmSync(dir, { recursive: true, force: true });
});

it("a file that cannot be read now is the server's failure (503, not kept by caches, logged), not a 404", async () => {
  const r = await fetch(`${base}/images/ab/emfile.jpg`);
  expect(r.status).toBe(503);
  expect(r.headers.get("cache-control")).toBe("no-store");
  expect(captured.lines.some((l) => l.msg === "a stored image could not be read: answering 503")).toBe(true);
  // Not there, or a name too long for the file system: 404 as before.
  expect((await fetch(`${base}/images/ab/missing.jpg`)).status).toBe(404);
  expect((await fetch(`${base}/images/ab/${"x".repeat(300)}.jpg`)).status).toBe(404);
});
