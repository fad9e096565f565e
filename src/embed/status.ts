import type { Config } from "../config.js";
import type { Db } from "../db.js";
import { embedModelPresence, type EmbedConfig, installedVectorModel, type VectorModel } from "./model-files.js";
import { untilNextCommit } from "../store/data-version.js";
import { embeddingCounts } from "./store.js";

/** Whether semantic search is on, and if not, the command that turns it on (GraphQL status, the web /status page). */
export interface SemanticSearchStatus {
  /** An embedding model is installed and works have vectors: HYBRID is the default search mode. */
  enabled: boolean;
  modelId: string;
  installed: boolean;
  /** Active works with a vector of this model. */
  embedded: number;
  /** Active works with a current description. */
  described: number;
  /** Works whose vector is missing or may be stale (a worker refreshes them; an upper bound). */
  stale: number;
  /** What to run next, or null when nothing is needed. */
  command: string | null;
  message: string;
}

/**
 * `loadError`: why this process could not load the installed model (the API's query embedder, which
 * loads it at start), or null: files that are all there but damaged (a cut-short download) then say
 * so, instead of "not embedded yet".
 */
export async function semanticSearchStatus(db: Db, config: EmbedConfig & Pick<Config, "EMBED_MODEL_ID">, loadError: string | null = null): Promise<SemanticSearchStatus> {
  const presence = embedModelPresence(config);
  const installed = presence.missing.length === 0;
  const counts = await countsUntilNextCommit(db, installedVectorModel(config));
  const enabled = installed && counts.embedded > 0 && loadError === null;
  const base = { modelId: config.EMBED_MODEL_ID, installed, enabled, ...counts };
  if (!installed) {
    return { ...base, command: presence.command, message: `Semantic search is off: no embedding model (${config.EMBED_MODEL_ID}). Run ${presence.command}; search is by words until then.` };
  }
  if (loadError !== null) {
    return {
      ...base,
      command: presence.command,
      message: `Semantic search is off: the embedding model (${config.EMBED_MODEL_ID}) is installed but did not load (${loadError}). Fetch it again with ${presence.command}; search is by words until then.`,
    };
  }
  if (counts.embedded === 0) {
    return { ...base, command: "artdesc embed --missing", message: "Semantic search is off until descriptions are embedded: run artdesc embed --missing, or start a worker, which embeds them in the background." };
  }
  if (counts.stale > 0) {
    return { ...base, command: "artdesc embed --missing", message: `Semantic search is on; ${counts.stale === 1 ? "1 description waits" : `${counts.stale} descriptions wait`} to be embedded (a worker does it in the background, or run artdesc embed --missing).` };
  }
  return { ...base, command: null, message: `Semantic search is on: ${counts.embedded} descriptions embedded with ${config.EMBED_MODEL_ID}.` };
}

/** embeddingCounts (whole-table counts anyone may ask for: `status`, /status) once per database version. */
const countsByModel = new Map<string, (db: Db) => ReturnType<typeof embeddingCounts>>();
function countsUntilNextCommit(db: Db, model: VectorModel): ReturnType<typeof embeddingCounts> {
  const key = `${model.id}@${model.revision}`;
  let read = countsByModel.get(key);
  // One per configured model and revision: the few this process's configurations and pulls name.
  if (!read) countsByModel.set(key, (read = untilNextCommit((d) => embeddingCounts(d, model))));
  return read(db);
}
