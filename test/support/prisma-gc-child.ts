// Run by test/store/prisma-promises.test.ts under --trace-gc-nvp: reads 10 artworks at a time
// through the app's Prisma client, between two marker lines on stderr, one call after another.
import { join } from "node:path";
import { createDb } from "../../src/db.js";
import { migrate } from "../../src/store/migrate.js";
import { insertBulkArtworks } from "./bulk.js";

const [dir, callsText] = process.argv.slice(2);
const file = join(dir!, "gc.db");
migrate(file);
insertBulkArtworks(file, 200, { words: 150 });
const db = await createDb(`file:${file}`);
const read = (i: number) => db.artwork.findMany({ where: { id: { in: Array.from({ length: 10 }, (_, k) => ((i * 10 + k) % 200) + 1) } } });
for (let i = 0; i < 200; i++) await read(i);
console.error("MEASURE-START");
for (let i = 0; i < Number(callsText); i++) await read(i);
console.error("MEASURE-END");
await db.$disconnect();
