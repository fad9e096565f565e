import Database from "better-sqlite3";
import { existsSync } from "node:fs";
import { migrate } from "../src/store/migrate.js";
import { insertBulkArtworks } from "./support/bulk.js";
const file = "/tmp/benchprof.db";
if (!existsSync(file)) { migrate(file); insertBulkArtworks(file, 20000, { words: 150 }); }
const db = new Database(file, { readonly: true });
const time = (label: string, sql: string, ...p: unknown[]) => {
  const st = db.prepare(sql); st.all(...p);
  const s = performance.now(); let r; for (let i = 0; i < 5; i++) r = st.all(...p);
  console.log(label, ((performance.now() - s) / 5).toFixed(1), "ms", (r as unknown[]).length);
};


time("bm25 only", `SELECT rowid, bm25(artwork_fts,10,1,4,2) r FROM artwork_fts WHERE artwork_fts MATCH ? ORDER BY r LIMIT 11`, `("woman" "dog"*)`);


time("full", `SELECT f.rowid AS id, bm25(artwork_fts,10,1,4,2) AS rank, snippet(artwork_fts, 1, '[', ']', '…', 32) AS snippet, f.description <> '' AS h FROM artwork_fts f WHERE artwork_fts MATCH ? ORDER BY rank, f.rowid LIMIT 11 OFFSET 0`, `("woman" "dog"*)`);
console.log(db.prepare(`SELECT count(*) n FROM artwork_fts`).get());
const df = (w: string) => (db.prepare(`SELECT count(*) n FROM artwork_fts WHERE artwork_fts MATCH ?`).get(`"${w}"`) as { n: number }).n;
for (const w of ["the", "woman", "dog", "donkey", "book", "owl", "waits", "babe1"]) console.log(w, df(w));
time("woman dog bm25 full", `SELECT f.rowid AS id, bm25(artwork_fts,10,1,4,2) AS rank, snippet(artwork_fts, 1, '[', ']', '…', 32) AS snippet, f.description <> '' AS h FROM artwork_fts f WHERE artwork_fts MATCH ? ORDER BY rank, f.rowid LIMIT 11 OFFSET 0`, `("woman" "dog"*)`);
time("donkey book full", `SELECT f.rowid AS id, bm25(artwork_fts,10,1,4,2) AS rank, snippet(artwork_fts, 1, '[', ']', '…', 32) AS snippet, f.description <> '' AS h FROM artwork_fts f WHERE artwork_fts MATCH ? ORDER BY rank, f.rowid LIMIT 11 OFFSET 0`, `("donkey" "book"*)`);
