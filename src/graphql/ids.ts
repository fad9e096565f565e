import { decodeGlobalID } from "@pothos/plugin-relay";
import { InvalidIdError } from "./errors.js";

export type ArtworkKey = { qid: string } | { id: number };

/** An artwork id as users give it: a QID ("Q5432") or a Relay global id of an Artwork. */
export function parseArtworkId(raw: string): ArtworkKey {
  const id = raw.trim();
  if (/^Q[1-9]\d*$/i.test(id)) return { qid: id.toUpperCase() };
  try {
    const { typename, id: local } = decodeGlobalID(id);
    if (typename === "Artwork" && /^[1-9]\d*$/.test(local)) return { id: Number(local) };
  } catch {
    // falls through to the typed error
  }
  throw new InvalidIdError(raw);
}
