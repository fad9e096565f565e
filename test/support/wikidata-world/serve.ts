/**
 * `npm run world`: the local Wikidata and Commons the tests sync from, kept running for a person
 * who wants to try artdesc without the real services (offline, or before choosing creators). It
 * serves the Goya fixture world (hand-written hard cases and generated works with their images) on
 * 127.0.0.1 and prints the environment that points artdesc at it. Ctrl-C stops it.
 *
 * Options (environment): WORLD_PORT (4100; 0 for any free port), WORLD_GENERATED (17: generated
 * works besides the hand-written ones).
 */
import { startWikidataWorld } from "./index.js";

const port = Number(process.env.WORLD_PORT ?? 4100);
const generated = Number(process.env.WORLD_GENERATED ?? 17);
if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new Error(`WORLD_PORT must be a port number, not ${process.env.WORLD_PORT}`);
if (!Number.isInteger(generated) || generated < 0 || generated > 5_000) throw new Error(`WORLD_GENERATED must be 0 to 5000, not ${process.env.WORLD_GENERATED}`);

const world = await startWikidataWorld({ port, generated });
// The tests' short waits suit a world that answers at once; a person's sync keeps the defaults.
const keep = ["WIKIDATA_SPARQL_URL", "WIKIDATA_API_URL", "COMMONS_API_URL", "SYNC_CREATORS", "SYNC_LANGUAGES", "USER_AGENT_CONTACT"];
console.log(`A local Wikidata and Commons with Goya's world (${world.model.works.size} works) answer on ${new URL(world.sparqlUrl).origin}.`);
console.log("Point artdesc at it, in the shell that runs artdesc:\n");
for (const name of keep) console.log(`export ${name}=${JSON.stringify(world.env[name])}`);
console.log("\nCtrl-C stops it.");

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    void world.stop().then(() => process.exit(0));
  });
}
