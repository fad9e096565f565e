import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { parseSearchQuery, renderFtsQuery, type Term } from "../../src/search/fts-query.js";
import { fts5Snippet, snippetPhrases, tokenize } from "../../src/search/fts5-snippet.js";

// The index's tokenizer (prisma/migrations/…_search_fts/migration.sql).
const TOKENIZER = "unicode61 remove_diacritics 2";
const O = "\uE000";
const C = "\uE001";

/** Words of descriptions in the languages titles come in, with case, accents, digits and joined words. */
const VOCAB = [
  ..."the a of and woman man dog dogs hound horse night light soldier soldiers firing squad king queen saint".split(" "),
  ..."Woman WOMAN Dog Goya GOYA José jose JOSÉ Jose naïve naive café Café España espana Señora senora".split(" "),
  ..."Straße Übermut über Müller 1808 3rd 2de saint-denis l'atelier Saint-Denis Mañana manana øre Ærø".split(" "),
  ..."dogged doghouse womanly knight nights".split(" "),
];
const SEPARATORS = [" ", " ", " ", " ", ", ", ". ", ": ", ".\n", " — ", " (", ") ", '" ', "; ", "! ", ".  ", ":"];

function random(seed: number) {
  let x = seed >>> 0;
  return (n: number) => {
    x = (x * 1103515245 + 12345) >>> 0;
    return Math.floor((x / 2 ** 32) * n);
  };
}

function text(r: (n: number) => number, words: number): string {
  let out = "";
  for (let i = 0; i < words; i++) out += VOCAB[r(VOCAB.length)]! + (i < words - 1 ? SEPARATORS[r(SEPARATORS.length)]! : r(2) ? "." : "");
  return r(4) === 0 ? `  ${out}` : out;
}

/** A query as a person types one: words, sometimes a phrase, a star, an excluded word, or a half-typed last word. */
function query(r: (n: number) => number): string {
  const parts: string[] = [];
  const n = 1 + r(3);
  for (let i = 0; i < n; i++) {
    const w = VOCAB[r(VOCAB.length)]!;
    const kind = r(8);
    if (kind === 0) parts.push(`"${w} ${VOCAB[r(VOCAB.length)]!}"`);
    else if (kind === 1) parts.push(`${w.slice(0, Math.max(2, w.length - 2))}*`);
    else if (kind === 2 && i > 0) parts.push(`-${w}`);
    else parts.push(w);
  }
  return parts.join(" ") + (r(3) === 0 ? " " : "");
}

describe("fts5Snippet", () => {
  it("gives what SQLite's snippet() gives, on random texts and queries", () => {
    const db = new Database(":memory:");
    db.exec(`CREATE VIRTUAL TABLE t USING fts5(titles, description, tokenize = "${TOKENIZER}")`);
    const r = random(20261203);
    const insert = db.prepare("INSERT INTO t (rowid, titles, description) VALUES (?, ?, ?)");
    const texts = new Map<number, string>();
    for (let id = 1; id <= 400; id++) {
      // Short and long texts, so that windows reach both ends; some works match by title alone.
      const description = id % 50 === 0 ? "" : text(r, [3, 20, 40, 150][id % 4]!);
      texts.set(id, description);
      insert.run(id, text(r, 4), description);
    }
    let compared = 0;
    const differ: { match: string; id: number; tokens: number; fts5: string; ours: string }[] = [];
    for (let q = 0; q < 300; q++) {
      let terms: Term[];
      try {
        terms = parseSearchQuery(query(r));
      } catch {
        continue;
      }
      const match = renderFtsQuery(terms);
      const phrases = snippetPhrases(terms);
      for (const tokens of [32, 8]) {
        const rows = db
          .prepare(`SELECT rowid AS id, snippet(t, 1, '${O}', '${C}', '…', ${tokens}) AS s FROM t WHERE t MATCH ?`)
          .all(match) as { id: number; s: string }[];
        for (const row of rows) {
          const ours = fts5Snippet(texts.get(row.id)!, phrases, { open: O, close: C, ellipsis: "…", tokens });
          if (ours !== row.s) differ.push({ match, id: row.id, tokens, fts5: row.s, ours });
          compared++;
        }
      }
    }
    expect(differ.slice(0, 5)).toEqual([]);
    // The comparison must have covered a real spread of hits.
    expect(compared).toBeGreaterThan(2000);
    db.close();
  });

  it("tokenizes and folds every letter of the Latin, Greek and Cyrillic blocks as SQLite's unicode61 does", () => {
    // One work per character, between two letters: what FTS5 stored (fts5vocab's instances) against tokenize().
    const db = new Database(":memory:");
    db.exec(`CREATE VIRTUAL TABLE t USING fts5(d, tokenize = "${TOKENIZER}")`);
    db.exec(`CREATE VIRTUAL TABLE vi USING fts5vocab(t, 'instance')`);
    const insert = db.prepare("INSERT INTO t (rowid, d) VALUES (?, ?)");
    // Up to Cyrillic Supplement, and Latin Extended Additional with Greek Extended; U+037F came in
    // Unicode 7, after SQLite's tables, and unassigned code points are left out.
    const points: number[] = [];
    const ranges: [number, number][] = [
      [0x80, 0x527],
      [0x1e00, 0x1fff],
    ];
    for (const [from, to] of ranges) {
      for (let c = from; c <= to; c++) if (c !== 0x37f && !/\p{Cn}/u.test(String.fromCodePoint(c))) points.push(c);
    }
    db.transaction(() => points.forEach((c) => insert.run(c, `a${String.fromCodePoint(c)}b`)))();
    const stored = new Map<number, string[]>();
    for (const r of db.prepare("SELECT term, doc FROM vi ORDER BY doc, offset").all() as { term: string; doc: number }[]) {
      stored.set(r.doc, [...(stored.get(r.doc) ?? []), r.term]);
    }
    const differ = points
      .map((c) => ({ c: c.toString(16), fts5: stored.get(c) ?? [], ours: tokenize(`a${String.fromCodePoint(c)}b`).map((t) => t.folded) }))
      .filter((d) => d.fts5.join("|") !== d.ours.join("|"));
    expect(points.length).toBeGreaterThan(1500);
    expect(differ).toEqual([]);
    db.close();
  });

  it("tokenizes as unicode61 does: case and accents folded, punctuation splits, marks continue a word", () => {
    expect(tokenize("José-María, l'ATELIER 1808").map((t) => t.folded)).toEqual(["jose", "maria", "l", "atelier", "1808"]);
    const t = tokenize("  Cafe\u0301 noir.");
    expect(t.map((x) => [x.start, x.end, x.folded])).toEqual([
      [2, 7, "cafe"],
      [8, 12, "noir"],
    ]);
  });

  it("gives what SQLite's snippet() gives on long texts full of matches, in linear time", () => {
    const db = new Database(":memory:");
    db.exec(`CREATE VIRTUAL TABLE t USING fts5(titles, description, tokenize = "${TOKENIZER}")`);
    const r = random(20261205);
    // 20,000 characters (a person's text may be that long) of a few words: thousands of instances.
    const few = ["the dog", "a hound", "night light", "the king"];
    const long = [
      "the cat sat on the mat. ".repeat(833),
      Array.from({ length: 3000 }, () => few[r(few.length)]).join(r(2) ? " " : ". ").slice(0, 20_000),
      text(r, 3000).slice(0, 20_000),
      "a ".repeat(10_000),
      "dog ".repeat(5_000),
      "dog. ".repeat(4_000),
    ];
    const insert = db.prepare("INSERT INTO t (rowid, titles, description) VALUES (?, ?, ?)");
    long.forEach((d, i) => insert.run(i + 1, "", d));
    const queries = ["the", "the -zebra", 'dog hound night light king "the dog" th*', "the* do* ho* ki* night light", "cat mat sat on", "a", 'dog do* "dog dog"'];
    let compared = 0;
    for (const q of queries) {
      const terms = parseSearchQuery(q);
      const phrases = snippetPhrases(terms);
      for (const tokens of [64, 8, 1]) {
        const rows = db
          .prepare(`SELECT rowid AS id, snippet(t, 1, '${O}', '${C}', '…', ${tokens}) AS s FROM t WHERE t MATCH ?`)
          .all(renderFtsQuery(terms)) as { id: number; s: string }[];
        for (const row of rows) {
          const started = performance.now();
          expect(fts5Snippet(long[row.id - 1]!, phrases, { open: O, close: C, ellipsis: "…", tokens })).toBe(row.s);
          expect(performance.now() - started).toBeLessThan(1_000);
          compared++;
        }
      }
    }
    expect(compared).toBeGreaterThan(30);
    // Twice the longest description: scoring each window over every instance, as SQLite does,
    // took about 4.5 s for this one snippet (1.1 s at 20,000 characters), so a page of such hits
    // held the event loop for seconds. Linear, it takes milliseconds.
    const started = performance.now();
    fts5Snippet("dog ".repeat(10_000), snippetPhrases(parseSearchQuery('dog do* "dog dog"')), { open: O, close: C, ellipsis: "…", tokens: 64 });
    expect(performance.now() - started).toBeLessThan(1_000);
    db.close();
  });

  it("marks a phrase as one match and a prefix on its last word", () => {
    const phrases = snippetPhrases(parseSearchQuery('"firing squad" dog*'));
    expect(fts5Snippet("Soldiers of a firing squad and a doghouse.", phrases, { open: "[", close: "]", ellipsis: "…", tokens: 32 })).toBe(
      "Soldiers of a [firing squad] and a [doghouse].",
    );
  });
});
