import { type APQStore, useAPQ } from "@graphql-yoga/plugin-apq";
import type { Plugin } from "graphql-yoga";

export interface PersistedQueryBounds {
  /** Documents kept at most. */
  maxEntries: number;
  /** UTF-8 bytes of all kept documents together at most; a larger document is not kept. */
  maxBytes: number;
}

/**
 * The documents of automatic persisted queries, by SHA-256 hash, bounded by count and by bytes:
 * the least recently used go first, so a client that registers document after document only
 * pushes out older entries (whose clients then send the document again, as APQ provides).
 */
export class PersistedQueryStore implements APQStore {
  readonly #entries = new Map<string, { query: string; bytes: number }>();
  #bytes = 0;

  constructor(readonly bounds: PersistedQueryBounds) {}

  get size(): number {
    return this.#entries.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get(hash: string): string | null {
    const entry = this.#entries.get(hash);
    if (!entry) return null;
    // A Map iterates in insertion order: re-inserting makes this entry the most recently used.
    this.#entries.delete(hash);
    this.#entries.set(hash, entry);
    return entry.query;
  }

  set(hash: string, query: string): void {
    const bytes = Buffer.byteLength(query) + Buffer.byteLength(hash);
    this.#remove(hash);
    if (bytes > this.bounds.maxBytes || this.bounds.maxEntries < 1) return;
    this.#entries.set(hash, { query, bytes });
    this.#bytes += bytes;
    for (const oldest of this.#entries.keys()) {
      if (this.#entries.size <= this.bounds.maxEntries && this.#bytes <= this.bounds.maxBytes) break;
      this.#remove(oldest);
    }
  }

  #remove(hash: string): void {
    const entry = this.#entries.get(hash);
    if (!entry) return;
    this.#entries.delete(hash);
    this.#bytes -= entry.bytes;
  }
}

/**
 * Automatic persisted queries (https://github.com/apollographql/apollo-link-persisted-queries#apollo-engine):
 * a request with `extensions.persistedQuery.sha256Hash` and no query runs the document stored
 * under that hash, or answers PERSISTED_QUERY_NOT_FOUND (HTTP 404) so the client sends it with
 * the query; a hash with a query is checked against the query's SHA-256 (PERSISTED_QUERY_MISMATCH,
 * 400) before it is stored. POST and GET both work; every request limit applies to a stored
 * document as to one sent in full.
 */
export function usePersistedQueries(store: PersistedQueryStore): Plugin {
  return useAPQ({ store });
}
