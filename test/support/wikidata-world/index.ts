import { buildGoyaWorld, type WorldSize } from "./goya.js";
import type { WorldModel } from "./model.js";
import { type Fault, type LoggedRequest, type ServerOptions, startWorldServer } from "./server.js";

export { addDonkeyAquatint, addScriptTitleWork, AQUATINT, buildGoyaWorld, CASES, changeWorld, DONKEY, DONKEY_AQUATINT, GOYA, LARGE_FILE_SIZE, OTHER_PAINTER, SCRIPT_TITLE, SCRIPT_TITLE_WORK } from "./goya.js";
export type { Fault, LoggedRequest } from "./server.js";
export { WorldModel } from "./model.js";

export interface WikidataWorldOptions extends WorldSize, ServerOptions {
  /** A world built by the caller instead of the Goya fixture. */
  model?: WorldModel;
}

export interface WikidataWorld {
  model: WorldModel;
  sparqlUrl: string;
  wikidataApiUrl: string;
  commonsApiUrl: string;
  /**
   * Environment for src/config.ts that points a sync at this world, with short waits:
   * merge it into the env given to loadConfig / openRuntime / a child process.
   */
  env: Record<string, string>;
  requests: LoggedRequest[];
  fault(f: Fault): void;
  pendingFaults(): Fault[];
  clearFaults(): void;
  stop(): Promise<void>;
}

/**
 * Starts the local Wikidata + Commons on 127.0.0.1 (one random port): by default the Goya fixture
 * world (36 works with the hard cases, see goya.ts).
 */
export async function startWikidataWorld(options: WikidataWorldOptions = {}): Promise<WikidataWorld> {
  const model = options.model ?? (await buildGoyaWorld(options));
  const server = await startWorldServer(model, options);
  return {
    model,
    sparqlUrl: server.sparqlUrl,
    wikidataApiUrl: server.wikidataApiUrl,
    commonsApiUrl: server.commonsApiUrl,
    env: {
      WIKIDATA_SPARQL_URL: server.sparqlUrl,
      WIKIDATA_API_URL: server.wikidataApiUrl,
      COMMONS_API_URL: server.commonsApiUrl,
      SYNC_CREATORS: "Q5432",
      SYNC_LANGUAGES: "en,es",
      USER_AGENT_CONTACT: "https://example.org/artdesc-tests",
      IMAGE_EDGE: "256",
      HTTP_TIMEOUT_MS: "2000",
      HTTP_MAX_RETRIES: "3",
      RETRY_AFTER_MAX_S: "1",
      HTTP_RETRY_BASE_MS: "10",
    },
    requests: server.requests,
    fault: server.fault,
    pendingFaults: server.pendingFaults,
    clearFaults: server.clearFaults,
    stop: server.stop,
  };
}
