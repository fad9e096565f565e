import { createHash } from "node:crypto";
import { type Db, writeTransaction } from "../db.js";
import { dbTime } from "../store/db-clock.js";
import { dialect } from "../store/sql.js";
import { type Embedder, EmbedRequestError } from "./embedder.js";
import { type VectorModel, vectorModelId } from "./model-files.js";

/**
 * Description embeddings in ArtworkEmbedding: one float32 vector per active work with a current
 * description, for the model that made it. A vector is stale when the model, the weights' revision
 * (embedModelRevision) or the embedded text (title and description, hashed) is no longer the current
 * one; stale vectors stay usable for search while their replacement is made, unless their model or
 * file differs (then they are never compared).
 * Staleness rests on what the row records (model, description id, the title it was made with,
 * the text's hash), never on times: an artwork's updatedAt and a vector's embeddedAt are written by
 * different processes, whose clocks may differ (a remote worker, a clock step), and comparing them
 * kept unchanged texts stale for ever (`embed --missing` never ended) or missed changed ones.
 */

/** What is embedded for a work: its title and its current description. */
export function passageText(title: string | null, description: string): string {
  const t = title?.trim();
  return t ? `${t}. ${description.trim()}` : description.trim();
}

export const textHash = (text: string) => createHash("sha256").update(text).digest("hex");

/** float32, little-endian (the byte order of every platform Node's prebuilt onnxruntime runs on). */
export function encodeVector(v: Float32Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength) as ArrayBuffer);
}

export function decodeVector(bytes: Uint8Array): Float32Array {
  // A copy: a blob's bytes need not be 4-byte aligned.
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Float32Array(copy.buffer, 0, bytes.byteLength / 4);
}

/**
 * Candidates: no vector, another model's, another revision's of its weights (a vector made before
 * revisions were recorded has none: made again once), another description's (a description row is
 * never updated, so its id stands for its text), or made with another title (a vector made before
 * the title was recorded has none: checked once against its hash). `model` and `revision` are the
 * bound values' placeholders (src/store/sql.ts: SQLite and PostgreSQL).
 */
const staleWhere = (model: string, revision: string) => `a."state" = 'ACTIVE' AND a."currentDescriptionId" IS NOT NULL
  AND (e."artworkId" IS NULL OR e."modelId" <> ${model} OR e."modelRevision" IS DISTINCT FROM ${revision}
    OR e."descriptionId" <> a."currentDescriptionId" OR e."title" IS DISTINCT FROM a."title")`;


interface Candidate {
  artworkId: number;
  title: string | null;
  descriptionId: number;
  text: string;
  modelId: string | null;
  modelRevision: string | null;
  textHash: string | null;
}

/** Works whose vector is missing or stale (an upper bound only for vectors made before titles were recorded, until each is checked once). */
export async function countStale(db: Db, model: VectorModel): Promise<number> {
  const params: unknown[] = [];
  const sql = dialect(db);
  const [row] = await db.$queryRawUnsafe<{ n: number | bigint }[]>(
    `SELECT COUNT(*) AS n FROM "Artwork" a LEFT JOIN "ArtworkEmbedding" e ON e."artworkId" = a."id" WHERE ${staleWhere(sql.param(params, model.id), sql.param(params, model.revision))}`,
    ...params,
  );
  return Number(row?.n ?? 0);
}

export interface EmbedRunSummary {
  /** Vectors made. */
  embedded: number;
  /** Candidates whose text had not changed (a new description row with the same words, a title changed back, an old vector checked): only the row's description id and title moved. */
  unchanged: number;
  /**
   * Texts the model refused (a vector that is not finite, say), with why: each is recorded as a
   * row with no vector (dims 0) for that text, so it leaves the candidates until its text changes
   * instead of failing every batch it lands in; searches never see it. Absent when none.
   */
  refused?: { artworkId: number; error: string }[];
}

/** A recorded text the model refused: no vector, never searched or counted as embedded. */
export const REFUSED_DIMS = 0;

/**
 * Embeds up to `limit` works whose vector is missing or stale, missing ones first, and stores the
 * vectors (one transaction). `embedder` runs the model off this thread. Every candidate leaves the
 * candidates by this run (a vector made, or the same text found: its row then names the current
 * description and title), so a run that finds nothing to do is the end, never a loop.
 */
export async function embedStale(db: Db, embedder: Pick<Embedder, "embed" | "info">, limit: number): Promise<EmbedRunSummary> {
  const { revision } = embedder.info;
  const modelId = vectorModelId(embedder.info.modelId, embedder.info.dtype);
  const params: unknown[] = [];
  const sql = dialect(db);
  const candidates = (
    await db.$queryRawUnsafe<(Omit<Candidate, "artworkId" | "descriptionId"> & { artworkId: number | bigint; descriptionId: number | bigint })[]>(
      `SELECT a."id" AS "artworkId", a."title" AS "title", d."id" AS "descriptionId", d."text" AS "text", e."modelId" AS "modelId",
         e."modelRevision" AS "modelRevision", e."textHash" AS "textHash"
       FROM "Artwork" a JOIN "Description" d ON d."id" = a."currentDescriptionId" LEFT JOIN "ArtworkEmbedding" e ON e."artworkId" = a."id"
       WHERE ${staleWhere(sql.param(params, modelId), sql.param(params, revision))} ORDER BY (e."artworkId" IS NULL) DESC, a."id" LIMIT ${sql.param(params, limit)}`,
      ...params,
    )
  ).map((c) => ({ ...c, artworkId: Number(c.artworkId), descriptionId: Number(c.descriptionId) }));
  if (candidates.length === 0) return { embedded: 0, unchanged: 0 };
  const work = candidates.map((c) => {
    const text = passageText(c.title, c.text);
    return { ...c, passage: text, hash: textHash(text) };
  });
  const same = (w: (typeof work)[number]) => w.modelId === modelId && w.modelRevision === revision && w.textHash === w.hash;
  const unchanged = work.filter(same);
  const changed = work.filter((w) => !same(w));
  const vectors = await embedEach(embedder, changed.map((w) => w.passage));
  const refused = changed.flatMap((w, i) => (vectors[i] instanceof Error ? [{ artworkId: w.artworkId, error: (vectors[i] as Error).message }] : []));
  // Read before the transaction: inside it, a second connection would be needed while the lock is held.
  const clock = await dbTime(db);
  await writeTransaction(db, async (tx) => {
    // The vector index loads the rows embedded since the newest stamp it has seen (vector-index.ts),
    // so stamps must follow the order of commits: taken inside the write lock (write transactions
    // take turns), from the database's clock, and never before the newest stamp there. A stamp taken
    // before embedding was older than that of a second embedder's run that committed first, and a
    // vector it replaced stayed out of the index. Strictly after the newest: a run whose clock was
    // read before another's commit would otherwise take the same stamp, leave the index's (count,
    // newest stamp) as they were, and its vectors would not be loaded.
    const newest = (await tx.artworkEmbedding.aggregate({ where: { modelId }, _max: { embeddedAt: true } }))._max.embeddedAt;
    const now = new Date(Math.max(clock.getTime(), newest ? newest.getTime() + 1 : 0));
    for (const [i, w] of changed.entries()) {
      const v = vectors[i]!;
      const vector = v instanceof Error ? new Float32Array(REFUSED_DIMS) : v;
      const data = {
        modelId,
        modelRevision: revision,
        descriptionId: w.descriptionId,
        title: w.title,
        textHash: w.hash,
        dims: vector.length,
        vector: encodeVector(vector),
        embeddedAt: now,
      };
      await tx.artworkEmbedding.upsert({ where: { artworkId: w.artworkId }, create: { artworkId: w.artworkId, ...data }, update: data });
    }
    // Same text: the vector and its embeddedAt stay (the vector index reloads nothing); the row
    // names the description and title it now stands for.
    for (const w of unchanged) await tx.artworkEmbedding.update({ where: { artworkId: w.artworkId }, data: { descriptionId: w.descriptionId, title: w.title } });
  });
  return { embedded: changed.length - refused.length, unchanged: unchanged.length, ...(refused.length ? { refused } : {}) };
}

/**
 * The passages' vectors in one run; when the run fails on its texts, each passage alone, so that
 * only the texts the model refuses fail (as the refusal, in their place).
 */
async function embedEach(embedder: Pick<Embedder, "embed">, passages: string[]): Promise<(Float32Array | Error)[]> {
  if (!passages.length) return [];
  try {
    return await embedder.embed(passages, "passage");
  } catch (err) {
    if (!(err instanceof EmbedRequestError)) throw err;
    // Alone, a text the model refuses is recorded as such; any other failure fails the run (the
    // vectors there stay, searched, until a later run replaces them).
    if (passages.length === 1) {
      if (err.refusal) return [err];
      throw err;
    }
    const each: (Float32Array | Error)[] = [];
    for (const p of passages) each.push(...(await embedEach(embedder, [p])));
    return each;
  }
}

/** How many works have a vector of this model, and how many active described works there are. */
export async function embeddingCounts(db: Db, model: VectorModel): Promise<{ embedded: number; described: number; stale: number }> {
  const [embedded, described, stale] = await Promise.all([
    db.artworkEmbedding.count({ where: { modelId: model.id, dims: { gt: REFUSED_DIMS }, artwork: { state: "ACTIVE" } } }),
    db.artwork.count({ where: { state: "ACTIVE", currentDescriptionId: { not: null } } }),
    countStale(db, model),
  ]);
  return { embedded, described, stale };
}

/**
 * A live process (its heartbeat fresh within `staleMs`) whose background embedder makes vectors of
 * another model, file or revision than `key` (embedderKey): two such embedders take each other's
 * vectors for stale and make them again, for ever. `self` is this process's own heartbeat. Null
 * when there is none.
 */
export async function rivalEmbedder(db: Db, key: string, self: string | null, staleMs: number): Promise<{ id: string; embedModelId: string } | null> {
  const since = new Date((await dbTime(db)).getTime() - staleMs);
  const row = await db.heartbeat.findFirst({
    where: { embedModelId: { not: null }, NOT: [{ embedModelId: key }, ...(self ? [{ id: self }] : [])], beatAt: { gte: since } },
    orderBy: { beatAt: "desc" },
    select: { id: true, embedModelId: true },
  });
  return row ? { id: row.id, embedModelId: row.embedModelId! } : null;
}
