import { decodeGlobalID } from "@pothos/plugin-relay";
import { InvalidIdError } from "./errors.js";

export type ArtworkKey = { qid: string } | { id: number };

/** The largest row id: Prisma's Int is a signed 32-bit integer, and a larger number fails in the query. */
const MAX_DB_ID = 2 ** 31 - 1;

/** A database id as a global id carries it ("42"), or null when it is not one (0, "007", 20 digits). */
export function parseDbId(local: string): number | null {
  if (!/^[1-9]\d{0,9}$/.test(local)) return null;
  const n = Number(local);
  return n <= MAX_DB_ID ? n : null;
}

/** A Relay global id's type name and row id, or null when it is not a well-formed one. */
export function parseGlobalId(raw: string): { typename: string; id: number } | null {
  try {
    const { typename, id } = decodeGlobalID(raw.trim());
    const n = parseDbId(id);
    return n == null ? null : { typename, id: n };
  } catch {
    return null;
  }
}

/**
 * The longest id text that is looked at: every id of this API is far shorter. A longer one is
 * refused without being decoded, and its echo in the error is cut to this length.
 */
export const MAX_ID_LENGTH = 200;

const shown = (raw: string) => (raw.length > MAX_ID_LENGTH ? `${raw.slice(0, MAX_ID_LENGTH)}…` : raw);

/** An artwork id as users give it: a QID ("Q5432") or a Relay global id of an Artwork. */
export function parseArtworkId(raw: string): ArtworkKey {
  if (raw.length <= MAX_ID_LENGTH) {
    const id = raw.trim();
    if (/^Q[1-9]\d*$/i.test(id)) return { qid: id.toUpperCase() };
    const global = parseGlobalId(id);
    if (global?.typename === "Artwork") return { id: global.id };
  }
  throw new InvalidIdError(shown(raw));
}

/**
 * The id of a `typename` row as users give it: the Relay global id, or the plain database number
 * (surrounding spaces ignored). Anything else, or a number beyond any row's, is an InvalidIdError
 * that says what was expected (`what`).
 */
export function parseNumberedId(raw: string, typename: string, what: string): number {
  const id = numberedIdOrNull(raw, typename);
  if (id === null) throw new InvalidIdError(shown(raw), what);
  return id;
}

/** As parseNumberedId, with null for anything that is not such an id (the CLI says so itself). */
export function numberedIdOrNull(raw: string, typename: string): number | null {
  if (raw.length > MAX_ID_LENGTH) return null;
  const id = raw.trim();
  const plain = parseDbId(id);
  if (plain !== null) return plain;
  const global = parseGlobalId(id);
  return global?.typename === typename ? global.id : null;
}

export const parseJobId = (raw: string): number => parseNumberedId(raw, "Job", "a job's global id or number");

export const parseDescriptionId = (raw: string): number => parseNumberedId(raw, "Description", "a description's global id or number");
