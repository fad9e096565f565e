import Database from "better-sqlite3";
const db = new Database("/tmp/benchprof.db");
const time = (label: string, sql: string, ...p: unknown[]) => {
  const st = db.prepare(sql); st.all(...p);
  const s = performance.now(); let r; for (let i = 0; i < 20; i++) r = st.all(...p);
  console.log(label, ((performance.now() - s) / 20).toFixed(2), "ms", JSON.stringify(r).slice(0, 60));
};
const q = `("woman" "dog")`;
time("vocab dog", `SELECT 1 FROM artwork_fts_vocab WHERE term = ? LIMIT 1`, "dog");
time("vocab woman", `SELECT 1 FROM artwork_fts_vocab WHERE term = ? LIMIT 1`, "woman");
time("bm25", `SELECT rowid, bm25(artwork_fts,10,1,4,2) r FROM artwork_fts WHERE artwork_fts MATCH ? ORDER BY r, rowid LIMIT 11`, q);
time("full", `SELECT f.rowid AS id, bm25(artwork_fts,10,1,4,2) AS rank, snippet(artwork_fts, 1, '[', ']', '…', 32) AS snippet FROM artwork_fts f WHERE artwork_fts MATCH ? ORDER BY rank, f.rowid LIMIT 11`, q);
time("cte", `WITH top AS (SELECT f.rowid AS id, bm25(artwork_fts,10,1,4,2) AS rank FROM artwork_fts f WHERE artwork_fts MATCH ? ORDER BY rank, f.rowid LIMIT 11 OFFSET 0)
  SELECT top.id, top.rank, snippet(artwork_fts, 1, '[', ']', '…', 32) AS snippet FROM top JOIN artwork_fts ON artwork_fts.rowid = top.id WHERE artwork_fts MATCH ? ORDER BY top.rank, top.id`, q, q);
console.log(db.prepare(`EXPLAIN QUERY PLAN WITH top AS (SELECT f.rowid AS id, bm25(artwork_fts,10,1,4,2) AS rank FROM artwork_fts f WHERE artwork_fts MATCH ? ORDER BY rank, f.rowid LIMIT 11 OFFSET 0)
  SELECT top.id, top.rank, snippet(artwork_fts, 1, '[', ']', '…', 32) AS snippet FROM top JOIN artwork_fts ON artwork_fts.rowid = top.id WHERE artwork_fts MATCH ? ORDER BY top.rank, top.id`).all(q, q));
