import { createHash } from "node:crypto";
import type { Db } from "../db.js";
import { dialect } from "../store/sql.js";
import type { Embedder } from "./embedder.js";
import { vectorModelId } from "./model-files.js";

/**
 * Description embeddings in ArtworkEmbedding: one float32 vector per active work with a current
 * description, for the model that made it. A vector is stale when the model or the embedded text
 * (title and description, hashed) is no longer the current one; stale vectors stay usable for
 * search while their replacement is made, unless their model differs (then they are never compared).
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
 * Candidates: no vector, another model's, another description's, or the work changed since (its
 * title may have). `model` is the bound model id's placeholder (src/store/sql.ts: SQLite and PostgreSQL).
 */
const staleWhere = (model: string) => `a."state" = 'ACTIVE' AND a."currentDescriptionId" IS NOT NULL
  AND (e."artworkId" IS NULL OR e."modelId" <> ${model} OR e."descriptionId" <> a."currentDescriptionId" OR a."updatedAt" > e."embeddedAt")`;

interface Candidate {
  artworkId: number;
  title: string | null;
  descriptionId: number;
  text: string;
  modelId: string | null;
  textHash: string | null;
}

/** Works whose vector may be missing or stale (at most this many; an upper bound: a re-synced work whose text did not change counts until checked). */
export async function countStale(db: Db, modelId: string): Promise<number> {
  const params: unknown[] = [];
  const [row] = await db.$queryRawUnsafe<{ n: number | bigint }[]>(
    `SELECT COUNT(*) AS n FROM "Artwork" a LEFT JOIN "ArtworkEmbedding" e ON e."artworkId" = a."id" WHERE ${staleWhere(dialect(db).param(params, modelId))}`,
    ...params,
  );
  return Number(row?.n ?? 0);
}

export interface EmbedRunSummary {
  /** Vectors made. */
  embedded: number;
  /** Candidates whose text had not changed (only their check time moved). */
  unchanged: number;
}

/**
 * Embeds up to `limit` works whose vector is missing or stale, missing ones first, and stores the
 * vectors (one transaction). `embedder` runs the model off this thread.
 */
export async function embedStale(db: Db, embedder: Pick<Embedder, "embed" | "info">, limit: number): Promise<EmbedRunSummary> {
  const modelId = vectorModelId(embedder.info.modelId, embedder.info.dtype);
  const params: unknown[] = [];
  const sql = dialect(db);
  const candidates = (
    await db.$queryRawUnsafe<(Omit<Candidate, "artworkId" | "descriptionId"> & { artworkId: number | bigint; descriptionId: number | bigint })[]>(
      `SELECT a."id" AS "artworkId", a."title" AS "title", d."id" AS "descriptionId", d."text" AS "text", e."modelId" AS "modelId", e."textHash" AS "textHash"
       FROM "Artwork" a JOIN "Description" d ON d."id" = a."currentDescriptionId" LEFT JOIN "ArtworkEmbedding" e ON e."artworkId" = a."id"
       WHERE ${staleWhere(sql.param(params, modelId))} ORDER BY (e."artworkId" IS NULL) DESC, a."id" LIMIT ${sql.param(params, limit)}`,
      ...params,
    )
  ).map((c) => ({ ...c, artworkId: Number(c.artworkId), descriptionId: Number(c.descriptionId) }));
  const now = new Date();
  const work = candidates.map((c) => {
    const text = passageText(c.title, c.text);
    return { ...c, passage: text, hash: textHash(text) };
  });
  const unchanged = work.filter((w) => w.modelId === modelId && w.textHash === w.hash);
  const changed = work.filter((w) => !(w.modelId === modelId && w.textHash === w.hash));
  const vectors = await embedder.embed(changed.map((w) => w.passage), "passage");
  await db.$transaction([
    ...changed.map((w, i) => {
      const data = {
        modelId,
        descriptionId: w.descriptionId,
        textHash: w.hash,
        dims: vectors[i]!.length,
        vector: encodeVector(vectors[i]!),
        embeddedAt: now,
      };
      return db.artworkEmbedding.upsert({ where: { artworkId: w.artworkId }, create: { artworkId: w.artworkId, ...data }, update: data });
    }),
    // Same text (a re-synced work, or a new description row with the same words): only the check time and the row it names move.
    ...unchanged.map((w) => db.artworkEmbedding.update({ where: { artworkId: w.artworkId }, data: { embeddedAt: now, descriptionId: w.descriptionId } })),
  ]);
  return { embedded: changed.length, unchanged: unchanged.length };
}

/** How many works have a vector of this model, and how many active described works there are. */
export async function embeddingCounts(db: Db, modelId: string): Promise<{ embedded: number; described: number; stale: number }> {
  const [embedded, described, stale] = await Promise.all([
    db.artworkEmbedding.count({ where: { modelId, artwork: { state: "ACTIVE" } } }),
    db.artwork.count({ where: { state: "ACTIVE", currentDescriptionId: { not: null } } }),
    countStale(db, modelId),
  ]);
  return { embedded, described, stale };
}
