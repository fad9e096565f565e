import type { Config } from "../config.js";
import type { Db } from "../db.js";
import { similarWorks, MAX_SIMILAR } from "../search/search.js";
import { EmbedModelMissingError, openEmbedder } from "./embedder.js";
import { embedMissing } from "./jobs.js";
import { configuredVectorModel, embedModelPresence, loadedVectorModel } from "./model-files.js";
import { countStale, REFUSED_DIMS } from "./store.js";
import { terminalLine } from "../text/controls.js";

interface Io {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

/** `artdesc embed --missing`: every missing or stale vector, now, in this process. */
export async function embedCommand(db: Db, config: Config, io: Io): Promise<number> {
  let embedder;
  try {
    embedder = await openEmbedder(config);
  } catch (err) {
    if (err instanceof EmbedModelMissingError) {
      io.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
  try {
    const stale = await countStale(db, loadedVectorModel(embedder.info));
    const started = performance.now();
    io.stderr.write(`Embedding up to ${stale} descriptions with ${embedder.info.modelId} (${embedder.info.dtype}, ${embedder.info.dims} dimensions)\n`);
    const total = await embedMissing(db, embedder, config.EMBED_BATCH, (s) => {
      io.stderr.write(`  ${s.embedded} embedded, ${s.unchanged} unchanged\n`);
      for (const r of s.refused ?? []) io.stderr.write(`  refused by the model: artwork ${r.artworkId}: ${r.error} (left out of meaning search until its text changes)\n`);
    });
    const seconds = (performance.now() - started) / 1000;
    const rate = total.embedded > 0 ? `, ${((seconds * 1000) / total.embedded).toFixed(1)} ms each` : "";
    const refused = total.refused?.length ? `, ${total.refused.length} refused by the model` : "";
    io.stdout.write(`embedded ${total.embedded} descriptions (${total.unchanged} unchanged${refused}) in ${seconds.toFixed(1)} s${rate}\n`);
    return 0;
  } finally {
    await embedder.close();
  }
}

/** `artdesc similar Q…`: the nearest works in meaning. */
export async function similarCommand(db: Db, config: Config, qid: string, o: { limit: string; sameCreator: boolean }, io: Io): Promise<number> {
  const limit = Number(o.limit);
  if (!/^\d+$/.test(o.limit) || limit < 1 || limit > MAX_SIMILAR) {
    io.stderr.write(`--limit must be a whole number from 1 to ${MAX_SIMILAR} (got ${o.limit})\n`);
    return 2;
  }
  if (!/^Q[1-9]\d{0,11}$/i.test(qid)) {
    io.stderr.write(`"${qid}" is not a Wikidata item id like Q5432\n`);
    return 2;
  }
  const art = await db.artwork.findUnique({ where: { qid: qid.toUpperCase() }, select: { id: true, qid: true, title: true, currentDescriptionId: true } });
  if (!art) {
    io.stderr.write(`No artwork ${qid.toUpperCase()} in the store\n`);
    return 1;
  }
  const presence = embedModelPresence(config);
  const similar = await similarWorks(db, art.id, { modelId: configuredVectorModel(config), limit, sameCreator: o.sameCreator });
  if (!similar) {
    const refused = !presence.missing.length && (await db.artworkEmbedding.count({ where: { artworkId: art.id, modelId: configuredVectorModel(config), dims: REFUSED_DIMS } })) > 0;
    io.stderr.write(
      presence.missing.length
        ? `Semantic search is off: no embedding model. Run ${presence.command}, then artdesc embed --missing.\n`
        : refused
          ? `${art.qid}'s description could not be embedded (the model gave a vector that is not finite): it is found by words only, until its text changes.\n`
          : art.currentDescriptionId === null
            ? `${art.qid} has no description yet, so nothing to compare by meaning: it gets one when a worker describes it.\n`
            : `${art.qid} has no description embedding yet: run artdesc embed --missing (or wait for a worker).\n`,
    );
    return 1;
  }
  const rows = await db.artwork.findMany({ where: { id: { in: similar.map((s) => s.artworkId) } }, select: { id: true, qid: true, title: true, inceptionYear: true } });
  const byId = new Map(rows.map((r) => [r.id, r]));
  io.stdout.write(`Works nearest in meaning to ${art.qid} ${terminalLine(art.title ?? "(untitled)")}${o.sameCreator ? " (same creator)" : ""}:\n`);
  similar.forEach((s, i) => {
    const a = byId.get(s.artworkId);
    if (!a) return;
    const year = a.inceptionYear != null ? ` (${a.inceptionYear})` : "";
    io.stdout.write(`${i + 1}. ${a.qid}  ${terminalLine(a.title ?? "(untitled)")}${year}  similarity ${s.similarity.toFixed(3)}\n`);
  });
  if (!similar.length) io.stdout.write("(no other embedded work)\n");
  return 0;
}
