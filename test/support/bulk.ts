import Database from "better-sqlite3";

// Function words first, then words a description of a painting uses, then a long tail of
// rarer words (made-up syllable words stand in for names, places and specific objects). Words
// are drawn by Zipf's law over this order, as in natural text: "the" is in every description,
// "woman" in about two of five, "dog" in one of three, a tail word in a few dozen of 20,000.
const FUNCTION_WORDS = (
  "the a of and in with is on her his at to by from an its their who which are has behind near while " +
  "one two over under"
).split(" ");
export const ART_WORDS = (
  "woman man child dog horse donkey cat bird owl giant queen king saint soldier priest monk beggar " +
  "dress coat hat fan sword book letter table chair window door curtain wall floor sky cloud tree river " +
  "hill field road bridge church house tower ship boat night day light shadow fire smoke water " +
  "red blue green black white grey yellow brown gold dark bright pale " +
  "stands sits lies holds reads writes looks walks rides sleeps eats drinks plays prays fights waits"
).split(" ");
const SYLLABLES = "ba be bi bo da de di do ka ke ki ko la le li lo ma me mi mo na ne ni no ra re ri ro sa se si so ta te ti to va ve vi vo".split(" ");
export const TAIL_WORDS = Array.from({ length: 3000 }, (_, i) => {
  let w = "";
  for (let n = i + 7; w.length < 6; n = Math.floor(n / SYLLABLES.length) + n * 7 + 3) w += SYLLABLES[n % SYLLABLES.length];
  return `${w}${i}`;
});
const VOCAB = [...FUNCTION_WORDS, ...ART_WORDS, ...TAIL_WORDS];
// Cumulative Zipf weights (s = 1) for sampling a rank.
const CUMULATIVE = (() => {
  const out: number[] = [];
  let sum = 0;
  for (let r = 1; r <= VOCAB.length; r++) out.push((sum += 1 / r));
  return out.map((c) => c / sum);
})();

function zipfWord(u: number): string {
  let lo = 0;
  let hi = CUMULATIVE.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (CUMULATIVE[mid]! < u) lo = mid + 1;
    else hi = mid;
  }
  return VOCAB[lo]!;
}

/** Deterministic text of `words` words in sentences of twelve, Zipf-distributed (see VOCAB). */
export function bulkText(seed: number, words: number): string {
  const out: string[] = [];
  let x = (seed * 2654435761 + 12345) >>> 0;
  for (let i = 0; i < words; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    let w = zipfWord(x / 4294967296);
    if (i % 12 === 0) w = w[0]!.toUpperCase() + w.slice(1);
    out.push(i % 12 === 11 || i === words - 1 ? `${w}.` : w);
  }
  return out.join(" ");
}

/**
 * Inserts `count` active artworks, each with a main image and a current model description of
 * `words` words, with plain SQL in one transaction (seconds for 100,000 rows, where the factories
 * would take minutes). Descriptions go in first, so each artwork is indexed once, complete. Use
 * it on a database no PrismaClient is writing to.
 *
 * `searchIndex: false` leaves the new rows out of the full-text index (the insert trigger is
 * suspended inside the transaction and restored before it commits): four times faster, for tests
 * that never search.
 */
export function insertBulkArtworks(
  file: string,
  count: number,
  options: { words?: number; firstQid?: number; searchIndex?: boolean } = {},
): void {
  const words = options.words ?? 40;
  const first = options.firstQid ?? 1_000_000;
  const db = new Database(file, { timeout: 15_000 });
  try {
    db.pragma("foreign_keys = OFF");
    const now = new Date().toISOString().replace("Z", "+00:00");
    const desc = db.prepare(
      `INSERT INTO Description (id, artworkId, text, language, source, createdAt, modelId, modelRevision, dtypes, device, prompt,
         numBeams, maxNewTokens, minNewTokens, targetWords, lengthPenalty, earlyStopping, noRepeatNgramSize, repetitionPenalty,
         imageSplitting, generatedTokens, timings, finishReason, trimmed)
       VALUES (?, ?, ?, 'en', 'MODEL', ?, 'HuggingFaceTB/SmolVLM-500M-Instruct', 'main', '{"vision_encoder":"fp32"}', 'cpu',
         'Describe the painting.', 4, 256, 0, 150, 1.0, 'true', 0, 1.0, 0, 200, '{"totalMs":12000}', 'eos', 0)`,
    );
    const art = db.prepare(
      `INSERT INTO Artwork (id, qid, qidNumber, title, titles, inception, inceptionYear, state, currentDescriptionId, createdAt, updatedAt, firstSeenAt)
       VALUES (?, ?, ?, ?, ?, ?, ?, 'ACTIVE', ?, ?, ?, ?)`,
    );
    const img = db.prepare(
      `INSERT INTO Image (artworkId, fileTitle, isMain, position, originalUrl, licenseShortName, artist, credit, descriptionUrl, missing, createdAt, updatedAt)
       VALUES (?, ?, 1, 0, ?, 'Public domain', 'Francisco de Goya', 'Museo del Prado', ?, 0, ?, ?)`,
    );
    const base = (db.prepare(`SELECT COALESCE(MAX(id), 0) AS m FROM Artwork`).get() as { m: number }).m;
    const baseDesc = (db.prepare(`SELECT COALESCE(MAX(id), 0) AS m FROM Description`).get() as { m: number }).m;
    const trigger = db.prepare(`SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'artwork_fts_artwork_insert'`).get() as
      | { sql: string }
      | undefined;
    db.transaction(() => {
      if (options.searchIndex === false && trigger) db.exec(`DROP TRIGGER artwork_fts_artwork_insert`);
      for (let i = 1; i <= count; i++) {
        const id = base + i;
        const descId = baseDesc + i;
        const qidNumber = first + i;
        const title = `${bulkText(id, 3).replace(/\.$/, "")} ${i}`;
        desc.run(descId, id, bulkText(id, words), now);
        art.run(id, `Q${qidNumber}`, qidNumber, title, JSON.stringify({ en: title }), "1800-01-01T00:00:00Z", 1800, descId, now, now, now);
        const file = `File:Bulk ${i}.jpg`;
        img.run(id, file, `https://upload.wikimedia.org/wikipedia/commons/x/${i}.jpg`, `https://commons.wikimedia.org/wiki/File:Bulk_${i}.jpg`, now, now);
      }
      if (options.searchIndex === false && trigger) db.exec(trigger.sql);
    })();
  } finally {
    db.close();
  }
}
