import { spawn } from "node:child_process";
import { join } from "node:path";
import { expect, it } from "vitest";
import { ROOT } from "../support/cli.js";

/** `npm run world` (README, "Trying it without Hugging Face or Wikidata"): the local world for a person. */
it("npm run world serves Goya's world and prints the settings that point artdesc at it; SIGINT stops it", async () => {
  const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "test/support/wikidata-world/serve.ts")], {
    cwd: ROOT,
    env: { ...process.env, WORLD_PORT: "0", WORLD_GENERATED: "2" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  try {
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const deadline = Date.now() + 60_000;
    while (!out.includes("Ctrl-C") && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const exports = Object.fromEntries([...out.matchAll(/^export (\w+)=("[^"]*")$/gm)].map((m) => [m[1]!, JSON.parse(m[2]!) as string]));
    expect(Object.keys(exports)).toEqual(["WIKIDATA_SPARQL_URL", "WIKIDATA_API_URL", "COMMONS_API_URL", "SYNC_CREATORS", "SYNC_LANGUAGES", "USER_AGENT_CONTACT"]);
    const labels = await (await fetch(`${exports.WIKIDATA_API_URL}?action=wbgetentities&ids=Q5432&props=labels&format=json`)).json();
    expect(labels.entities.Q5432.labels.es.value).toBe("Francisco de Goya");
    const sparql = await fetch(`${exports.WIKIDATA_SPARQL_URL}?query=${encodeURIComponent("SELECT (COUNT(*) AS ?n) WHERE { ?w <http://www.wikidata.org/prop/direct/P170> <http://www.wikidata.org/entity/Q5432> }")}`, {
      headers: { accept: "application/sparql-results+json" },
    });
    expect(Number((await sparql.json()).results.bindings[0].n.value)).toBeGreaterThan(2);
    expect(out).toMatch(/Goya's world \(\d+ works\)/);
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill("SIGINT");
    expect(await exited).toBe(0);
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
  }
});
