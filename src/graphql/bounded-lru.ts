export interface LruBounds {
  /** Entries kept at most. */
  maxEntries: number;
  /** Bytes of all kept entries together at most; a larger entry is not kept. */
  maxBytes: number;
}

/**
 * Values by key, bounded by count and by bytes (the caller measures each value): the least
 * recently used go first. The persisted-query and response caches keep their entries in one.
 */
export class BoundedLru<V> {
  readonly #entries = new Map<string, { value: V; bytes: number }>();
  #bytes = 0;

  constructor(readonly bounds: LruBounds) {}

  get size(): number {
    return this.#entries.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get(key: string): V | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    // A Map iterates in insertion order: re-inserting makes this entry the most recently used.
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return entry.value;
  }

  /** The value under `key`, without making it the most recently used. */
  peek(key: string): V | undefined {
    return this.#entries.get(key)?.value;
  }

  /** Keeps `value` under `key` (replacing what was there), unless it alone is over the bounds. */
  set(key: string, value: V, bytes: number): void {
    this.delete(key);
    if (bytes > this.bounds.maxBytes || this.bounds.maxEntries < 1) return;
    this.#entries.set(key, { value, bytes });
    this.#bytes += bytes;
    for (const oldest of this.#entries.keys()) {
      if (this.#entries.size <= this.bounds.maxEntries && this.#bytes <= this.bounds.maxBytes) break;
      this.delete(oldest);
    }
  }

  delete(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#entries.delete(key);
    this.#bytes -= entry.bytes;
  }

  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }
}
