import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { runCli } from "../support/cli.js";

const dir = mkdtempSync(join(tmpdir(), "artdesc-store-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const env = { DATABASE_URL: `file:${join(dir, "ok.db")}`, IMAGE_DIR: join(dir, "images"), PORT: "0", HOST: "127.0.0.1" };

/** Runs the command and expects exit 2 with one message naming `variable`, and no stack trace. */
async function refuses(args: string[], overrides: Record<string, string>, variable: string): Promise<string> {
  const p = runCli(args, { ...env, ...overrides });
  const { code } = await p.exit;
  const out = p.output();
  expect(code, out).toBe(2);
  expect(out).toMatch(/Invalid configuration/);
  expect(out).toContain(`${variable}=`);
  expect(out, "no stack trace").not.toMatch(/^\s+at .+[(:]\d+/m);
  return out;
}

const notADatabase = join(dir, "notes.txt");
writeFileSync(notADatabase, "this is a text file, long enough to have a header that is not SQLite's. ".repeat(20));
const aFile = join(dir, "plain-file");
writeFileSync(aFile, "x");
const locked = join(dir, "locked");
mkdirSync(locked);
chmodSync(locked, 0o500);
const asRoot = process.getuid?.() === 0;

const badUrls: [string, string][] = [
  ["a folder", `file:${dir}`],
  ["a file that is not SQLite", `file:${notADatabase}`],
  ["a path under a plain file", `file:${join(aFile, "sub", "a.db")}`],
  ["a path in /proc, which cannot be created", "file:/proc/artdesc/a.db"],
];
// Root ignores permission bits, so the read-only folder only counts for other users.
if (!asRoot) badUrls.push(["a folder without write permission", `file:${join(locked, "a.db")}`]);

for (const [what, url] of badUrls) {
  it(`serve refuses a DATABASE_URL that is ${what}, with exit 2`, async () => {
    await refuses(["serve"], { DATABASE_URL: url }, "DATABASE_URL");
  });
}

it("one-shot commands refuse an unopenable DATABASE_URL the same way", async () => {
  await refuses(["status"], { DATABASE_URL: `file:${dir}` }, "DATABASE_URL");
});

for (const host of ["no-such-host.invalid", "bad host name", "203.0.113.7"]) {
  it(`serve refuses HOST=${host} (does not resolve, or is not ours) with exit 2`, async () => {
    await refuses(["serve"], { HOST: host }, "HOST");
  });
}

it("serve with API_WORKERS=2 refuses an unresolvable HOST before forking", async () => {
  const out = await refuses(["serve"], { HOST: "no-such-host.invalid", API_WORKERS: "2" }, "HOST");
  expect(out).not.toMatch(/API worker died/);
});

it("serve refuses a PORT already in use with exit 2", async () => {
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, "127.0.0.1", r));
  const port = (taken.address() as { port: number }).port;
  try {
    const out = await refuses(["serve"], { PORT: String(port) }, "PORT");
    expect(out).toContain("stop it, or set PORT to a free port");
  } finally {
    taken.close();
  }
});
