/**
 * Turns what a person types into a safe FTS5 MATCH expression
 * (https://sqlite.org/fts5.html#full_text_query_syntax), or on PostgreSQL a tsquery text
 * (renderWantedTsQuery, renderExcludedTsQuery). Every word is emitted as a quoted
 * string, so FTS5 operators typed by a user (AND, OR, NOT, NEAR(, column filters, ^, +) are
 * just words, and no input can produce an FTS5 syntax error. What is kept from search habits:
 *  - "a phrase" in double quotes matches the words next to each other (an unpaired quote is ignored);
 *  - word* matches words that start with it (two letters or more before the star, at most
 *    MAX_PREFIX_TERMS such terms); the last word gets an implied * while the person is still typing
 *    it (no space or punctuation after it, three letters or more);
 *  - -word (a dash at the start of a word) excludes works containing the word;
 *  - words joined by punctuation ("saint-denis", "l'atelier") match as a phrase.
 * A query's size is limited (characters, words, stars; a repeated term counts once) so that no
 * query costs the index much more than an ordinary one: see the limits below.
 */

/** Longest query accepted, in characters. */
export const MAX_QUERY_CHARS = 500;
/** Most words a query may have, the words of its phrases included (a repeated term counts once). */
export const MAX_QUERY_WORDS = 32;
/**
 * Most terms ending in * a query may have. Each one reads the entries of every indexed word it
 * starts, so a query of many stars over common beginnings ("th* an* wo* …") is the most expensive
 * one to answer (a statement blocks the API's event loop while it runs); four is more than people type.
 */
export const MAX_PREFIX_TERMS = 4;
/**
 * Fewest letters before a typed *. The index keeps two- and three-letter prefixes (the migration's
 * prefix = '2 3'); a one-letter prefix has none and would read every word starting with that letter.
 */
export const MIN_EXPLICIT_PREFIX = 2;

/** A last word shorter than this gets no implied prefix ("a" would match half the index). */
const MIN_IMPLIED_PREFIX = 3;

export class SearchQueryError extends Error {
  override name = "SearchQueryError";
}

export interface Term {
  words: string[];
  /** Match words starting with the (last) word: typed with a star, or implied while typing. */
  prefix: false | "explicit" | "implied";
  negated: boolean;
}

// A word as the unicode61 tokenizer sees one: letters, digits and combining marks.
const WORD = /[\p{L}\p{N}\p{M}]+/gu;
const words = (s: string) => s.match(WORD) ?? [];

/** Parses user input into terms; throws SearchQueryError for an empty, oversized or word-less query. */
export function parseSearchQuery(input: string): Term[] {
  const text = input.normalize("NFC");
  if (text.trim() === "") throw new SearchQueryError("The search query is empty: type a few words.");
  if (text.length > MAX_QUERY_CHARS) {
    throw new SearchQueryError(`The search query is too long (${text.length} characters; at most ${MAX_QUERY_CHARS}).`);
  }
  const terms: Term[] = [];
  // Split into quoted phrases and the unquoted stretches between them.
  const parts = text.split('"');
  // With an odd number of quotes the last one is unpaired: treat what follows it as unquoted.
  const paired = parts.length % 2 === 1 ? parts.length : parts.length - 1;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const quoted = i % 2 === 1 && i < paired;
    if (quoted) {
      const ws = words(part);
      const negated = /(^|\s)-$/.test(parts[i - 1] ?? "");
      const prefix = (parts[i + 1] ?? "").startsWith("*") ? "explicit" : false;
      if (ws.length) terms.push({ words: ws, prefix, negated });
      continue;
    }
    // Brackets and sentence punctuation separate words; dashes, apostrophes, dots and colons join them.
    const chunks = part.split(/[\s()[\]{}<>,;!?]+/);
    for (const [j, chunk] of chunks.entries()) {
      const ws = words(chunk);
      if (!ws.length) continue;
      const negated = /^-+[\p{L}\p{N}\p{M}]/u.test(chunk);
      const lastChunk = j === chunks.length - 1;
      const atEnd = lastChunk && i === parts.length - 1;
      // Explicit star after the (last) word, or implied while typing the query's last word.
      const prefix = /[\p{L}\p{N}\p{M}]\*+$/u.test(chunk)
        ? "explicit"
        : atEnd && !negated && /[\p{L}\p{N}\p{M}]$/u.test(chunk) && ws.at(-1)!.length >= MIN_IMPLIED_PREFIX
          ? "implied"
          : false;
      terms.push({ words: ws, prefix, negated });
    }
  }
  const unique = withoutRepeats(terms);
  if (!unique.some((t) => !t.negated)) {
    throw new SearchQueryError(
      unique.length ? "The search query only excludes words: add a word to look for." : "The search query has no words to look for.",
    );
  }
  const wordCount = unique.reduce((n, t) => n + t.words.length, 0);
  if (wordCount > MAX_QUERY_WORDS) {
    throw new SearchQueryError(`The search query has too many words (${wordCount}; at most ${MAX_QUERY_WORDS}).`);
  }
  const short = unique.find((t) => t.prefix === "explicit" && t.words.at(-1)!.length < MIN_EXPLICIT_PREFIX);
  if (short) {
    throw new SearchQueryError(`A word ending in * needs at least ${MIN_EXPLICIT_PREFIX} letters before the star ("${short.words.at(-1)}*").`);
  }
  const starred = unique.filter((t) => t.prefix === "explicit").length;
  if (starred > MAX_PREFIX_TERMS) {
    throw new SearchQueryError(`The search query has too many words ending in * (${starred}; at most ${MAX_PREFIX_TERMS}).`);
  }
  // The prefix implied while typing is a convenience: dropped rather than refused past the limit.
  const implied = unique.find((t) => t.prefix === "implied");
  if (implied && starred === MAX_PREFIX_TERMS) implied.prefix = false;
  return withoutRepeats(unique);
}

/**
 * The terms with each repeat dropped (the same words in any case, star and exclusion): a repeat
 * matches the same works, and each one would read the word's entries in the index again.
 */
function withoutRepeats(terms: Term[]): Term[] {
  const seen = new Set<string>();
  return terms.filter((t) => {
    const key = JSON.stringify([t.words.map((w) => w.toLowerCase()), t.prefix !== false, t.negated]);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function render(t: Term): string {
  // Words only hold letters, digits and marks, so a quote never needs escaping; keep the
  // doubling anyway so the function stays safe if WORD ever widens.
  const quoted = `"${t.words.join(" ").replace(/"/g, '""')}"`;
  return t.prefix ? `${quoted}*` : quoted;
}

/** The FTS5 expression for parsed terms: all wanted terms (implicit AND), then NOT each excluded one. */
export function renderFtsQuery(terms: Term[]): string {
  const wanted = terms.filter((t) => !t.negated).map(render);
  const excluded = terms.filter((t) => t.negated).map(render);
  const base = wanted.length > 1 ? `(${wanted.join(" ")})` : wanted[0]!;
  return [base, ...excluded].join(" NOT ");
}

/** parseSearchQuery, then renderFtsQuery. */
export function toFtsQuery(input: string): string {
  return renderFtsQuery(parseSearchQuery(input));
}

/** The FTS5 expression matching any of the excluded terms, or null when none is excluded. */
export function renderExcludedQuery(terms: readonly Term[]): string | null {
  const excluded = terms.filter((t) => t.negated).map(render);
  return excluded.length ? excluded.join(" OR ") : null;
}

/**
 * One term as a PostgreSQL tsquery (https://www.postgresql.org/docs/current/datatype-textsearch.html#DATATYPE-TSQUERY):
 * each word a quoted lexeme (a quote doubled, a backslash escaped, so no input can be read as an
 * operator), a phrase's words joined by <-> (next to each other), a prefix as :* on the last word.
 * to_tsquery then folds each lexeme the way the index does (the artwork_fts_words configuration).
 */
function renderTs(t: Term): string {
  const lexemes = t.words.map((w) => `'${w.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`);
  if (t.prefix) lexemes[lexemes.length - 1] += ":*";
  return lexemes.length > 1 ? `(${lexemes.join(" <-> ")})` : lexemes[0]!;
}

/** The tsquery text of the wanted terms, all of them (&); excluded terms are left out (renderExcludedTsQuery). */
export function renderWantedTsQuery(terms: readonly Term[]): string {
  return terms
    .filter((t) => !t.negated)
    .map(renderTs)
    .join(" & ");
}

/** The tsquery text matching any of the excluded terms, or null when none is excluded. */
export function renderExcludedTsQuery(terms: readonly Term[]): string | null {
  const excluded = terms.filter((t) => t.negated).map(renderTs);
  return excluded.length ? excluded.join(" | ") : null;
}

/** The words a semantic search embeds: the wanted terms as typed words (no quotes, stars or excluded words). */
export function meaningText(terms: readonly Term[]): string {
  return terms
    .filter((t) => !t.negated)
    .map((t) => t.words.join(" "))
    .join(" ");
}
