#!/usr/bin/env node
// Runs the compiled CLI (npm run build, done by npm run setup).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const compiled = fileURLToPath(new URL("../dist/cli.js", import.meta.url));
if (!existsSync(compiled)) {
  console.error("artdesc is not built yet: run `npm run setup` in the project folder first.");
  process.exit(1);
}
await import(compiled);
