#!/usr/bin/env node
// Runs the compiled CLI (npm run build, done by npm run setup).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const compiled = fileURLToPath(new URL("../dist/cli.js", import.meta.url));
if (!existsSync(compiled)) {
  console.error("artdesc is not built yet: run `npm run setup` in the project folder first.");
  process.exit(1);
}
// glibc's malloc settings are read when a process starts: start again with them (src/ops/allocator.ts).
const { restartWithTunedAllocator } = await import(new URL("../dist/ops/allocator.js", import.meta.url).href);
restartWithTunedAllocator();
await import(compiled);
