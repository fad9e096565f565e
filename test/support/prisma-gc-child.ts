// Run by test/store/prisma-promises.test.ts under --trace-gc-nvp: reads 10 artworks at a time
// through the app's Prisma client, one call after another (measureCalls).
import { join } from "node:path";
import { createDb } from "../../src/db.js";
import { migrate } from "../../src/store/migrate.js";
import { insertBulkArtworks } from "./bulk.js";
import { measureCalls } from "./gc-trace.js";

const dir = process.argv[2]!;
const file = join(dir, "gc.db");
migrate(file);
insertBulkArtworks(file, 200, { words: 150 });
const db = await createDb(`file:${file}`);
const read = (i: number) => db.artwork.findMany({ where: { id: { in: Array.from({ length: 10 }, (_, k) => ((i * 10 + k) % 200) + 1) } } });
await measureCalls(read, 200);
await db.$disconnect();
