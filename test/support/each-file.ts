import { afterAll } from "vitest";
import { stopFileServer } from "./db.js";
import { resetFactories } from "./factories.js";

/**
 * vitest runs this before each test file (setupFiles), also in a worker that has already run
 * others (isolate: false), where the modules the file imports are loaded already: what must happen
 * once per file is done or registered here, not at a module's top level.
 */

// A PostgreSQL server started for this file's databases stops after its last test.
afterAll(stopFileServer);

// The factories number QIDs, names and default years from the same start in every file.
resetFactories();
