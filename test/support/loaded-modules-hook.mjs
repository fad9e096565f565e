// Loaded with `node --import` by test/cli/lazy-load.test.ts: appends the URL of every module the
// process loads (ESM and CommonJS alike, through node:module's synchronous hooks) to the file
// named by ARTDESC_LOADED_MODULES, one per line, as it loads.
import { appendFileSync } from "node:fs";
import { registerHooks } from "node:module";

const out = process.env.ARTDESC_LOADED_MODULES;
if (out) {
  registerHooks({
    load(url, context, nextLoad) {
      appendFileSync(out, `${url}\n`);
      return nextLoad(url, context);
    },
  });
}
