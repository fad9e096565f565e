import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";

/**
 * Runs a module in a worker thread. Node 20 ignores `execArgv: ["--import", "tsx"]` for a .ts
 * worker entry ("Unknown file extension"), so for a .ts entry a two-line bootstrap registers tsx in
 * the thread and then imports it. The describe and embedding threads both start here; this module
 * imports nothing heavy, so the API process can load it.
 */
export function startModuleThread(entry: URL, workerData: unknown): Worker {
  if (!entry.href.endsWith(".ts")) return new Worker(entry, { workerData });
  // require.resolve finds the CJS build of tsx/esm/api; its ESM twin sits next to it.
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx/esm/api").replace(/\.cjs$/, ".mjs")).href;
  const bootstrap = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(bootstrap, { eval: true, workerData });
}

