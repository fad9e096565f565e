import { type APQStore, useAPQ } from "@graphql-yoga/plugin-apq";
import type { Plugin } from "graphql-yoga";
import { BoundedLru, type LruBounds } from "./bounded-lru.js";

export type PersistedQueryBounds = LruBounds;

/**
 * The documents of automatic persisted queries, by SHA-256 hash, bounded by count and by bytes:
 * the least recently used go first, so a client that registers document after document only
 * pushes out older entries (whose clients then send the document again, as APQ provides).
 */
export class PersistedQueryStore implements APQStore {
  readonly #documents: BoundedLru<string>;

  constructor(readonly bounds: PersistedQueryBounds) {
    this.#documents = new BoundedLru(bounds);
  }

  get size(): number {
    return this.#documents.size;
  }

  get bytes(): number {
    return this.#documents.bytes;
  }

  get(hash: string): string | null {
    return this.#documents.get(hash) ?? null;
  }

  set(hash: string, query: string): void {
    this.#documents.set(hash, query, Buffer.byteLength(query) + Buffer.byteLength(hash));
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
