import { migrate } from "../src/store/migrate.js";
import { insertBulkArtworks } from "./support/bulk.js";
migrate("/tmp/benchprof.db"); insertBulkArtworks("/tmp/benchprof.db", 20000, { words: 150 });
