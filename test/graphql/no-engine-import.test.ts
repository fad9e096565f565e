import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../support/cli.js";

/**
 * The API layer must not load the description engine: an API process would otherwise pull in
 * onnxruntime and transformers.js (hundreds of MB) and the generation vocabulary would drift back
 * into the engine. Checked twice: statically over the import graph of every file under
 * src/graphql (type-only imports excluded, dynamic imports included), and by importing the schema
 * and the app in a fresh node process and looking at what it loaded.
 */

const ENGINE_PACKAGES = ["onnxruntime-node", "onnxruntime-common", "@huggingface/transformers"];
const ENGINE_FILES = ["src/describe/engine.ts", "src/describe/describer.ts", "src/describe/worker.ts", "src/describe/kv-cache.ts", "src/jobs/worker.ts"];

/** Specifiers a module loads when it runs: static and dynamic imports and re-exports, not `import type`. */
export function runtimeSpecifiers(source: string): string[] {
  const out: string[] = [];
  const statement = /(?:^|[;\n])\s*(import|export)\s+(type\s+)?([^;'"]*?)\s*from\s*["']([^"']+)["']/g;
  for (const m of source.matchAll(statement)) if (!m[2]) out.push(m[4]!);
  for (const m of source.matchAll(/(?:^|[;\n])\s*import\s*["']([^"']+)["']/g)) out.push(m[1]!);
  for (const m of source.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) out.push(m[1]!);
  return out;
}

function resolveLocal(from: string, spec: string): string | null {
  const base = resolve(dirname(from), spec);
  for (const candidate of [base.replace(/\.js$/, ".ts"), base, `${base}.ts`, join(base, "index.ts")]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  return null;
}

/** Every file reachable from `entries` and the packages they name, each with the chain that reached it. */
function importGraph(entries: string[]): { files: Map<string, string[]>; packages: Map<string, string[]> } {
  const files = new Map<string, string[]>();
  const packages = new Map<string, string[]>();
  const queue: [string, string[]][] = entries.map((f) => [f, [relative(ROOT, f)]]);
  for (let item = queue.shift(); item; item = queue.shift()) {
    const [file, chain] = item;
    if (files.has(file)) continue;
    files.set(file, chain);
    for (const spec of runtimeSpecifiers(readFileSync(file, "utf8"))) {
      if (spec.startsWith(".")) {
        const target = resolveLocal(file, spec);
        if (target?.endsWith(".ts") && !files.has(target)) queue.push([target, [...chain, relative(ROOT, target)]]);
      } else if (!spec.startsWith("node:")) {
        const name = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!;
        if (!packages.has(name)) packages.set(name, [...chain, name]);
      }
    }
  }
  return { files, packages };
}

function tsFilesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tsFilesUnder(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

describe("the API layer does not load the engine", () => {
  it("reads import specifiers as node would load them", () => {
    const src = [
      'import type { A } from "./a.js";',
      'import { b, type C } from "./b.js";',
      'export type { D } from "./d.js";',
      'export { e } from "./e.js";',
      'import "./f.js";',
      'const g = await import("./g.js");',
      "import {\n  h,\n  i,\n} from \"pkg/sub\";",
    ].join("\n");
    expect(runtimeSpecifiers(src)).toEqual(["./b.js", "./e.js", "pkg/sub", "./f.js", "./g.js"]);
  });

  it("no file under src/graphql reaches the engine or its packages (static import graph)", () => {
    const { files, packages } = importGraph(tsFilesUnder(join(ROOT, "src/graphql")));
    expect(files.size).toBeGreaterThan(20);
    expect(files.has(join(ROOT, "src/generation/params.ts"))).toBe(true);
    const reached = ENGINE_FILES.filter((f) => files.has(join(ROOT, f))).map((f) => files.get(join(ROOT, f))!.join(" -> "));
    expect(reached).toEqual([]);
    const loaded = ENGINE_PACKAGES.filter((p) => packages.has(p)).map((p) => packages.get(p)!.join(" -> "));
    expect(loaded).toEqual([]);
    // The walk does see the engine when it is there: from the describe command it must.
    const cli = importGraph([join(ROOT, "src/describe/command.ts")]);
    expect(cli.files.has(join(ROOT, "src/describe/describer.ts"))).toBe(true);
    expect(cli.packages.has("onnxruntime-node")).toBe(true);
  });

  it("importing the schema and the GraphQL app in a fresh process loads no onnxruntime", () => {
    const script = [
      'import { createRequire } from "node:module";',
      'await import("./src/graphql/schema/index.ts");',
      'await import("./src/graphql/yoga.ts");',
      "const cache = Object.keys(createRequire(import.meta.url).cache);",
      'process.stdout.write(JSON.stringify({ loaded: cache.length, engine: cache.filter((f) => /onnxruntime|@huggingface[\\\\/]transformers/.test(f)) }));',
    ].join("\n");
    const run = (code: string) =>
      JSON.parse(execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { cwd: ROOT, encoding: "utf8" })) as {
        loaded: number;
        engine: string[];
      };
    const api = run(script);
    expect(api.loaded).toBeGreaterThan(0);
    expect(api.engine).toEqual([]);
    // The same probe sees onnxruntime when the engine is imported.
    expect(run(script.replace('await import("./src/graphql/yoga.ts");', 'await import("./src/describe/engine.ts");')).engine.length).toBeGreaterThan(0);
  });
});
