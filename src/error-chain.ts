/** An error and the errors in its `cause`, outermost first, at most `max` deep (a cycle cannot loop). */
export function errorChain(err: unknown, max = 5): unknown[] {
  const out: unknown[] = [];
  for (let e = err, depth = 0; e && depth < max; depth++, e = (e as { cause?: unknown }).cause) out.push(e);
  return out;
}

/** An error's first line, at most 120 characters: what tells one kind of failure from another (a rate-limited log's key). */
export function errorKind(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0]!.slice(0, 120);
}
