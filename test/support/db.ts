import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeDb, createDb, type Db } from "../../src/db.js";
import { migrate } from "../../src/store/migrate.js";

export interface TestDb {
  db: Db;
  url: string;
  file: string;
  dir: string;
  /** SQL statements seen since the last reset (when created with countQueries). */
  queries: string[];
  close(): Promise<void>;
}

/** A real SQLite file in a temporary folder, with the committed migrations applied. */
export async function createTestDb(options: { countQueries?: boolean } = {}): Promise<TestDb> {
  const dir = mkdtempSync(join(tmpdir(), "artdesc-test-"));
  const file = join(dir, "test.db");
  migrate(file);
  const url = `file:${file}`;
  const queries: string[] = [];
  const db = await createDb(url, options.countQueries ? { onQuery: (q) => queries.push(q) } : {});
  return {
    db,
    url,
    file,
    dir,
    queries,
    async close() {
      await closeDb(db);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
