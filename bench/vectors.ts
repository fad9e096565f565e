import Database from "better-sqlite3";
import { encodeVector } from "../src/embed/store.js";

/**
 * A random unit vector per described work, straight into ArtworkEmbedding (as `embed --missing`
 * stores them): an exact scan costs the same whatever the values. Returns how many were stored.
 */
export function insertRandomVectors(file: string, modelId: string, dims: number): number {
  const db = new Database(file);
  try {
    const rows = db.prepare(`SELECT id, currentDescriptionId AS d FROM Artwork WHERE currentDescriptionId IS NOT NULL`).all() as { id: number; d: number }[];
    const insert = db.prepare(`INSERT INTO ArtworkEmbedding (artworkId, modelId, descriptionId, textHash, dims, vector, embeddedAt) VALUES (?, ?, ?, ?, ?, ?, ?)`);
    const now = new Date().toISOString().replace("Z", "+00:00");
    let x = 987654321;
    const rand = () => ((x = (x * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
    db.transaction(() => {
      for (const r of rows) {
        const v = Float32Array.from({ length: dims }, rand);
        const n = Math.hypot(...v);
        for (let i = 0; i < dims; i++) v[i]! /= n;
        insert.run(r.id, modelId, r.d, "bench", dims, encodeVector(v), now);
      }
    })();
    return rows.length;
  } finally {
    db.close();
  }
}
