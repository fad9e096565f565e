#!/usr/bin/env node
// Runs the compiled CLI (npm run build, done by npm run setup).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

// package.json's engines: an older Node fails later, and less clearly (better-sqlite3 built for another
// Node version, whose message suggests a rebuild that would break the setup).
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 15)) {
  console.error(
    `artdesc needs Node.js 22.15 or newer; this is ${process.version}. ` +
      "Without it on the machine, run `source .ci/use-node22` in the project folder (once per shell): it puts the Node that `npm run setup` used first on PATH.",
  );
  process.exit(2);
}
const compiled = fileURLToPath(new URL("../dist/cli.js", import.meta.url));
if (!existsSync(compiled)) {
  console.error("artdesc is not built yet: run `npm run setup` in the project folder first.");
  process.exit(1);
}
// glibc's malloc settings are read when a process starts: start again with them (src/ops/allocator.ts).
const { restartWithTunedAllocator } = await import(new URL("../dist/ops/allocator.js", import.meta.url).href);
restartWithTunedAllocator();
await import(compiled);
