import { redactPassword } from "../config.js";
import { type DatabaseKind, databaseKind } from "../db.js";

/** `--to` is not a database URL artdesc can open. The message never shows a password. */
export class TargetUrlError extends Error {
  constructor(readonly problem: string) {
    super(`--to: ${problem}`);
    this.name = "TargetUrlError";
  }
}

const MAX_URL = 4096;

/**
 * Checks a `--to` URL before anything opens it: a SQLite `file:<path>` URL or a PostgreSQL
 * `postgresql://` / `postgres://` URL that parses, with a database name. Anything else (another
 * scheme, control characters, an empty path) is refused: `databaseKind` would take it for a SQLite
 * file name and create a file called `mysql://…`. Pure.
 */
export function parseTargetUrl(text: string): { url: string; kind: DatabaseKind; shown: string } {
  if (text.length === 0) throw new TargetUrlError("empty: give file:<path> or postgresql://user@host/database");
  if (text.length > MAX_URL) throw new TargetUrlError(`longer than ${MAX_URL} characters`);
  // Control characters (NUL, newlines) have no place in a URL or a file name we would create.
  if (/[\u0000-\u001f\u007f]/.test(text)) throw new TargetUrlError("contains control characters");
  if (databaseKind(text) === "postgresql") {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new TargetUrlError(`not a valid PostgreSQL URL: ${JSON.stringify(redactPassword(text))}`);
    }
    const shown = redactPassword(text);
    // A Unix socket is given as ?host=/path, with an empty host part.
    if (!url.hostname && !url.searchParams.get("host")) throw new TargetUrlError(`no host in ${JSON.stringify(shown)}`);
    if (url.pathname.replace(/^\//, "") === "") throw new TargetUrlError(`no database name in ${JSON.stringify(shown)}`);
    return { url: text, kind: "postgresql", shown };
  }
  if (!/^file:/i.test(text)) {
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(text)?.[1];
    throw new TargetUrlError(
      `${scheme ? `${JSON.stringify(scheme)} is not a database artdesc supports` : "not a database URL"}: give file:<path> (SQLite) or postgresql://user@host/database`,
    );
  }
  if (text.replace(/^file:/i, "").replace(/\?.*$/, "").trim() === "") throw new TargetUrlError("file: needs a path, e.g. file:./data/artdesc.db");
  return { url: text, kind: "sqlite", shown: text };
}
