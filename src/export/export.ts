import { formatInception } from "../text/facts.js";
import type { Writable } from "node:stream";
import type { Db } from "../db.js";
import { creatorWhere } from "../store/artwork-filter.js";
import { dialect } from "../store/sql.js";
import { artworkAltText } from "../text/alt-text.js";
import { commonsFilePageUrl } from "../text/web-url.js";

export type ExportFormat = "jsonl" | "csv";
export const EXPORT_FORMATS: readonly ExportFormat[] = ["jsonl", "csv"];

export interface ExportOptions {
  format: ExportFormat;
  /** Creator QIDs or label words (as `artworks(creator:)` takes them); any of them matches. */
  creators?: string[];
  /** Only artworks changed, or described, at or after this time. */
  since?: Date;
  /** Also export works that left the inventory (merged, deleted, no longer by the creator). */
  includeInactive?: boolean;
  /** ALT_TEXT_MAX_CHARS. */
  altTextMaxChars: number;
  /** Rows read per query (keyset page). */
  pageSize?: number;
}

export class ExportOptionsError extends Error {
  override name = "ExportOptionsError";
}

/** The generation parameters of a model description (null for a person's text). */
export interface ExportParameters {
  dtypes: Record<string, string> | null;
  device: string | null;
  prompt: string | null;
  numBeams: number | null;
  maxNewTokens: number | null;
  minNewTokens: number | null;
  targetWords: number | null;
  lengthPenalty: number | null;
  earlyStopping: string | null;
  noRepeatNgramSize: number | null;
  repetitionPenalty: number | null;
  imageSplitting: boolean | null;
}

/** One exported artwork: what a museum system or an alt-text pipeline ingests. */
export interface ExportRow {
  qid: string;
  wikidataUrl: string;
  state: string;
  title: string | null;
  titles: Record<string, string>;
  inception: string | null;
  creators: { qid: string; label: string | null; attribution: string }[];
  commonsFile: string | null;
  commonsUrl: string | null;
  imageUrl: string | null;
  licence: string | null;
  licenceTerms: string | null;
  attributionRequired: boolean | null;
  artist: string | null;
  credit: string | null;
  description: string | null;
  altText: string | null;
  language: string | null;
  source: "MODEL" | "HUMAN" | null;
  author: string | null;
  modelId: string | null;
  modelRevision: string | null;
  parameters: ExportParameters | null;
  describedAt: string | null;
}

/** Column order of the CSV file; nested values (titles, creators, parameters) are JSON in their cell. */
export const CSV_COLUMNS: (keyof ExportRow)[] = [
  "qid", "wikidataUrl", "state", "title", "titles", "inception", "creators", "commonsFile", "commonsUrl", "imageUrl",
  "licence", "licenceTerms", "attributionRequired", "artist", "credit", "description", "altText", "language", "source",
  "author", "modelId", "modelRevision", "parameters", "describedAt",
];

interface RawRow {
  id: number | bigint;
  qid: string;
  state: string;
  title: string | null;
  titles: string;
  inception: string | null;
  inceptionYear: number | bigint | null;
  inceptionPrecision: number | bigint | null;
  creators: string | null;
  fileTitle: string | null;
  descriptionUrl: string | null;
  originalUrl: string | null;
  licenseShortName: string | null;
  usageTerms: string | null;
  attributionRequired: boolean | number | null;
  artist: string | null;
  credit: string | null;
  text: string | null;
  reviewState: string | null;
  /** The newest description nobody rejected, read only when the current one is rejected. */
  notRejectedText: string | null;
  language: string | null;
  source: "MODEL" | "HUMAN" | null;
  author: string | null;
  createdAt: Date | string | null;
  modelId: string | null;
  modelRevision: string | null;
  dtypes: string | null;
  device: string | null;
  prompt: string | null;
  numBeams: number | bigint | null;
  maxNewTokens: number | bigint | null;
  minNewTokens: number | bigint | null;
  targetWords: number | bigint | null;
  lengthPenalty: number | null;
  earlyStopping: string | null;
  noRepeatNgramSize: number | bigint | null;
  repetitionPenalty: number | null;
  imageSplitting: boolean | number | null;
}

/**
 * Every matching artwork, in id order, read a page at a time (keyset pagination on id), so memory
 * stays flat however many there are.
 */
export async function* exportRows(db: Db, options: ExportOptions): AsyncGenerator<ExportRow> {
  const sql = dialect(db);
  // The first parameter is the page's start (keyset), bound anew for every page.
  const params: unknown[] = [];
  const where: string[] = [`a.id > ${sql.param(params, 0)}`];
  // Unary + keeps SQLite from choosing the (state, ...) index over the id range: with it, every
  // page would rescan all active works. (PostgreSQL has no unary + on text, nor needs it.)
  if (!options.includeInactive) where.push(sql.kind === "sqlite" ? `+a.state = 'ACTIVE'` : `a.state = 'ACTIVE'`);
  if (options.creators?.length) {
    const found = await db.creator.findMany({ where: { OR: options.creators.map(creatorWhere) }, select: { id: true } });
    if (!found.length) return;
    where.push(`EXISTS (SELECT 1 FROM "ArtworkCreator" ac WHERE ac."artworkId" = a.id AND ac."creatorId" IN (${sql.jsonIntegers(sql.param(params, JSON.stringify(found.map((c) => c.id))))}))`);
  }
  if (options.since) {
    // The main image's row too: a sync changes a file's licence, attribution and URLs there, not on the work.
    const since = () => sql.timeParam(sql.param(params, sql.time(options.since!)));
    where.push(`(a."updatedAt" >= ${since()} OR d."createdAt" >= ${since()} OR i."updatedAt" >= ${since()})`);
  }
  const pageSize = options.pageSize ?? 500;
  const creators = sql.jsonArrayOfObjects({ qid: "c.qid", label: "c.label", attribution: "x.attribution" });
  const query = `
    SELECT a.id, a.qid, a.state, a.title, a.titles, a.inception, a."inceptionYear", a."inceptionPrecision",
      (SELECT ${creators}
         FROM (SELECT * FROM "ArtworkCreator" WHERE "artworkId" = a.id ORDER BY position, id) x JOIN "Creator" c ON c.id = x."creatorId") AS creators,
      i."fileTitle", i."descriptionUrl", i."originalUrl", i."licenseShortName", i."usageTerms", i."attributionRequired", i.artist, i.credit,
      d.text, d."reviewState",
      CASE WHEN d."reviewState" = 'REJECTED' THEN (SELECT h.text FROM "Description" h WHERE h."artworkId" = a.id
        AND (h."reviewState" IS NULL OR h."reviewState" <> 'REJECTED') AND h."experimentId" IS NULL ORDER BY h.id DESC LIMIT 1) END AS "notRejectedText",
      d.language, d.source, d.author, d."createdAt", d."modelId", d."modelRevision", d.dtypes, d.device, d.prompt,
      d."numBeams", d."maxNewTokens", d."minNewTokens", d."targetWords", d."lengthPenalty", d."earlyStopping", d."noRepeatNgramSize",
      d."repetitionPenalty", d."imageSplitting"
    FROM "Artwork" a
    LEFT JOIN "Image" i ON i.id = (SELECT id FROM "Image" WHERE "artworkId" = a.id AND ${sql.isTrue('"isMain"')} ORDER BY position, id LIMIT 1)
    LEFT JOIN "Description" d ON d.id = a."currentDescriptionId"
    WHERE ${where.join(" AND ")}
    ORDER BY a.id
    LIMIT ${pageSize}`;
  let after = 0;
  for (;;) {
    params[0] = after;
    const page = await db.$queryRawUnsafe<RawRow[]>(query, ...params);
    for (const raw of page) yield toRow(raw, options.altTextMaxChars);
    if (page.length < pageSize) return;
    after = Number(page.at(-1)!.id);
  }
}

const int = (v: number | bigint | null) => (v == null ? null : Number(v));
const bool = (v: boolean | number | null) => (v == null ? null : Boolean(v));
const json = <T>(v: string | null, fallback: T): T => {
  if (!v) return fallback;
  try {
    return JSON.parse(v) as T;
  } catch {
    return fallback;
  }
};

function toRow(r: RawRow, altTextMaxChars: number): ExportRow {
  const model = r.source === "MODEL";
  return {
    qid: r.qid,
    wikidataUrl: `https://www.wikidata.org/wiki/${r.qid}`,
    state: r.state,
    title: r.title,
    titles: json(r.titles, {}),
    inception: r.inception,
    creators: json(r.creators, []),
    commonsFile: r.fileTitle,
    commonsUrl: r.fileTitle ? (r.descriptionUrl ?? commonsFilePageUrl(r.fileTitle)) : null,
    imageUrl: r.originalUrl,
    licence: r.licenseShortName,
    licenceTerms: r.usageTerms,
    attributionRequired: bool(r.attributionRequired),
    artist: r.artist,
    credit: r.credit,
    description: r.text,
    altText: artworkAltText(
      {
        current: r.text == null ? null : { text: r.text, rejected: r.reviewState === "REJECTED" },
        newestNotRejected: r.notRejectedText,
        title: r.title,
        creators: json<{ label: string | null }[]>(r.creators, []).map((c) => c.label),
        year: int(r.inceptionYear),
        date: formatInception(r.inception, int(r.inceptionPrecision)),
      },
      altTextMaxChars,
    ),
    language: r.language,
    source: r.source,
    author: r.author,
    modelId: model ? r.modelId : null,
    modelRevision: model ? r.modelRevision : null,
    parameters: model
      ? {
          dtypes: json(r.dtypes, null),
          device: r.device,
          prompt: r.prompt,
          numBeams: int(r.numBeams),
          maxNewTokens: int(r.maxNewTokens),
          minNewTokens: int(r.minNewTokens),
          targetWords: int(r.targetWords),
          lengthPenalty: r.lengthPenalty,
          earlyStopping: r.earlyStopping,
          noRepeatNgramSize: int(r.noRepeatNgramSize),
          repetitionPenalty: r.repetitionPenalty,
          imageSplitting: bool(r.imageSplitting),
        }
      : null,
    describedAt: r.createdAt == null ? null : new Date(r.createdAt).toISOString(),
  };
}

/**
 * One CSV field (RFC 4180): quoted when it holds a comma, quote, CR or LF; nested values as JSON.
 * A text that a spreadsheet would take for a formula (it starts with =, +, -, @, a tab or a CR:
 * titles come from Wikidata, which anyone may edit, and descriptions from a model) gets a leading
 * apostrophe, as OWASP advises against CSV injection; numbers and booleans are written as they are.
 */
function csvField(v: unknown): string {
  if (v == null) return "";
  const raw = typeof v === "object" ? JSON.stringify(v) : String(v);
  const s = typeof v === "string" && /^[=+\-@\t\r]/.test(v) ? `'${raw}` : raw;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvLine(values: unknown[]): string {
  return `${values.map(csvField).join(",")}\r\n`;
}

/**
 * Writes the export to `out`, waiting for 'drain' whenever the stream's buffer is full
 * (backpressure), so a slow reader never makes rows pile up in memory. Returns the row count.
 * Does not end `out`.
 */
export async function writeExport(db: Db, out: Writable, options: ExportOptions): Promise<number> {
  if (!EXPORT_FORMATS.includes(options.format)) {
    throw new ExportOptionsError(`Unknown export format "${options.format}": use ${EXPORT_FORMATS.join(" or ")}`);
  }
  if (options.since && Number.isNaN(options.since.getTime())) throw new ExportOptionsError("--since is not a valid date");
  // A reader that goes away (`| head`) makes the stream emit 'error' (EPIPE): stop and rethrow it.
  let failed: Error | undefined;
  const onError = (err: Error) => {
    failed = err;
  };
  out.on("error", onError);
  const write = async (chunk: string) => {
    if (failed) throw failed;
    if (!out.write(chunk)) await drained(out);
  };
  try {
    const n = await writeRows(db, options, write);
    // The last chunk fit the buffer: whether it reached the file or pipe (a full disk, a reader
    // gone) is only known once it is written; until then the export has not succeeded.
    await new Promise<void>((resolve, reject) => {
      if (failed) return reject(failed);
      out.write("", (err) => (err ? reject(failed ?? err) : resolve()));
    });
    return n;
  } finally {
    out.off("error", onError);
  }
}

/** Resolves on 'drain'; rejects when the stream fails or closes first (it would never drain). */
function drained(out: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const closed = () => Object.assign(new Error("the output closed before the export was written"), { code: "ERR_STREAM_DESTROYED" });
    // Destroyed already ('close' came before this wait): nothing more will come.
    if (out.destroyed) return reject(closed());
    const done = (err?: Error) => {
      out.off("drain", onDrain).off("error", onFail).off("close", onClose);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onFail = (err: Error) => done(err);
    const onClose = () => done(closed());
    out.on("drain", onDrain).on("error", onFail).on("close", onClose);
  });
}

async function writeRows(db: Db, options: ExportOptions, write: (chunk: string) => Promise<void>): Promise<number> {
  // Rows are gathered into chunks of about 64 kB: one write per chunk, not per row.
  let chunk = options.format === "csv" ? csvLine(CSV_COLUMNS) : "";
  let n = 0;
  for await (const row of exportRows(db, options)) {
    chunk += options.format === "csv" ? csvLine(CSV_COLUMNS.map((c) => row[c])) : `${JSON.stringify(row)}\n`;
    n++;
    if (chunk.length >= 65_536) {
      await write(chunk);
      chunk = "";
    }
  }
  if (chunk) await write(chunk);
  return n;
}

/** Parses --since: an ISO date ("2026-11-01") or date-time; throws ExportOptionsError otherwise. */
export function parseSince(value: string): Date {
  const text = value.trim();
  const m = /^(\d{4})-(\d{2})-(\d{2})([T ](\d{2}):(\d{2})(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.exec(text);
  const d = new Date(text);
  // Date rolls an impossible day over (2026-02-31 is 2026-03-03): the calendar date must be real.
  const real = m !== null && isCalendarDate(Number(m[1]), Number(m[2]), Number(m[3])) && (m[5] === undefined || (Number(m[5]) < 24 && Number(m[6]) < 60));
  if (!real || Number.isNaN(d.getTime())) {
    throw new ExportOptionsError(`--since "${value}" is not a date: use YYYY-MM-DD or an ISO date-time`);
  }
  return d;
}

function isCalendarDate(year: number, month: number, day: number): boolean {
  const d = new Date(Date.UTC(year, month - 1, day));
  return d.getUTCFullYear() === year && d.getUTCMonth() === month - 1 && d.getUTCDate() === day;
}
