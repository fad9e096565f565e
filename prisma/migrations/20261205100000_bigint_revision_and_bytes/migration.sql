-- Artwork.wikidataRevision and Image.bytes become BIGINT: Wikidata's revision ids have passed
-- 2^31, and a Commons file can be larger than 2 GiB. SQLite's INTEGER already holds 64 bits, so no
-- value changes; the tables are rebuilt (Prisma's RedefineTables, SQLite's "other kinds of table
-- schema changes", https://www.sqlite.org/lang_altertable.html#otheralter) so that their definitions
-- read as the schema's, which the drift check (.ci/migration-drift) compares. Beyond Prisma's script:
-- * foreign keys must be off, or DROP TABLE deletes the old rows first and cascades to every
--   image, description, job and embedding: src/store/migrate.ts turns them off around each
--   migration (the pragma below does nothing inside its transaction) and checks them before commit;
-- * legacy_alter_table keeps the RENAME from checking the view and triggers that name "Artwork"
--   (search_fts) while that table is gone; they name the new table once it has the old name;
-- * the sequences and the triggers on "Artwork" carry over.
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
PRAGMA legacy_alter_table=ON;
-- RedefineTables
CREATE TABLE "new_Artwork" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "qid" TEXT NOT NULL,
    "qidNumber" INTEGER NOT NULL,
    "title" TEXT,
    "titles" TEXT NOT NULL DEFAULT '{}',
    "inception" TEXT,
    "inceptionPrecision" INTEGER,
    "inceptionYear" INTEGER,
    "height" REAL,
    "heightUnit" TEXT,
    "width" REAL,
    "widthUnit" TEXT,
    "wikidataRevision" BIGINT,
    "wikidataModified" DATETIME,
    "firstSeenAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastSyncedAt" DATETIME,
    "state" TEXT NOT NULL DEFAULT 'ACTIVE',
    "mergedIntoQid" TEXT,
    "stateChangedAt" DATETIME,
    "currentDescriptionId" INTEGER,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL,
    "needsPerson" BOOLEAN NOT NULL DEFAULT false,
    "fallbackStep" INTEGER,
    CONSTRAINT "Artwork_currentDescriptionId_fkey" FOREIGN KEY ("currentDescriptionId") REFERENCES "Description" ("id") ON DELETE SET NULL ON UPDATE CASCADE
);
INSERT INTO "new_Artwork" ("createdAt", "currentDescriptionId", "fallbackStep", "firstSeenAt", "height", "heightUnit", "id", "inception", "inceptionPrecision", "inceptionYear", "lastSyncedAt", "mergedIntoQid", "needsPerson", "qid", "qidNumber", "state", "stateChangedAt", "title", "titles", "updatedAt", "width", "widthUnit", "wikidataModified", "wikidataRevision") SELECT "createdAt", "currentDescriptionId", "fallbackStep", "firstSeenAt", "height", "heightUnit", "id", "inception", "inceptionPrecision", "inceptionYear", "lastSyncedAt", "mergedIntoQid", "needsPerson", "qid", "qidNumber", "state", "stateChangedAt", "title", "titles", "updatedAt", "width", "widthUnit", "wikidataModified", "wikidataRevision" FROM "Artwork";
-- AUTOINCREMENT never reuses an id: the new table continues the old one's sequence.
DELETE FROM "sqlite_sequence" WHERE "name" = 'new_Artwork';
INSERT INTO "sqlite_sequence" ("name", "seq") SELECT 'new_Artwork', "seq" FROM "sqlite_sequence" WHERE "name" = 'Artwork';
DROP TABLE "Artwork";
ALTER TABLE "new_Artwork" RENAME TO "Artwork";
CREATE UNIQUE INDEX "Artwork_qid_key" ON "Artwork"("qid");
CREATE UNIQUE INDEX "Artwork_currentDescriptionId_key" ON "Artwork"("currentDescriptionId");
CREATE INDEX "Artwork_state_inception_qidNumber_idx" ON "Artwork"("state", "inception", "qidNumber");
CREATE INDEX "Artwork_inceptionYear_idx" ON "Artwork"("inceptionYear");
-- Dropping "Artwork" dropped its full-text triggers: the ones of 20261127120000_search_fts, unchanged.
CREATE TRIGGER "artwork_fts_artwork_insert" AFTER INSERT ON "Artwork" BEGIN
  INSERT INTO "artwork_fts" (rowid, titles, description, creators, subjects)
    SELECT "id", "titles", "description", "creators", "subjects" FROM "artwork_fts_source" WHERE "id" = NEW."id";
END;
CREATE TRIGGER "artwork_fts_artwork_update" AFTER UPDATE OF "title", "titles", "state", "currentDescriptionId" ON "Artwork"
WHEN OLD."title" IS NOT NEW."title" OR OLD."titles" IS NOT NEW."titles" OR OLD."state" IS NOT NEW."state"
  OR OLD."currentDescriptionId" IS NOT NEW."currentDescriptionId" OR OLD."id" IS NOT NEW."id" BEGIN
  DELETE FROM "artwork_fts" WHERE rowid IN (OLD."id", NEW."id");
  INSERT INTO "artwork_fts" (rowid, titles, description, creators, subjects)
    SELECT "id", "titles", "description", "creators", "subjects" FROM "artwork_fts_source" WHERE "id" = NEW."id";
END;
CREATE TRIGGER "artwork_fts_artwork_delete" AFTER DELETE ON "Artwork" BEGIN
  DELETE FROM "artwork_fts" WHERE rowid = OLD."id";
END;

CREATE TABLE "new_Image" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "artworkId" INTEGER NOT NULL,
    "fileTitle" TEXT NOT NULL,
    "isMain" BOOLEAN NOT NULL DEFAULT false,
    "position" INTEGER NOT NULL DEFAULT 0,
    "originalUrl" TEXT,
    "thumbUrl" TEXT,
    "thumbWidth" INTEGER,
    "thumbHeight" INTEGER,
    "width" INTEGER,
    "height" INTEGER,
    "bytes" BIGINT,
    "mime" TEXT,
    "sha1" TEXT,
    "licenseShortName" TEXT,
    "usageTerms" TEXT,
    "attributionRequired" BOOLEAN,
    "artist" TEXT,
    "credit" TEXT,
    "descriptionUrl" TEXT,
    "missing" BOOLEAN NOT NULL DEFAULT false,
    "localPath" TEXT,
    "localWidth" INTEGER,
    "localHeight" INTEGER,
    "localBytes" INTEGER,
    "localHash" TEXT,
    "localSourceSha1" TEXT,
    "downloadedAt" DATETIME,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL,
    "chroma" REAL,
    "tintChroma" REAL,
    "tintHue" REAL,
    CONSTRAINT "Image_artworkId_fkey" FOREIGN KEY ("artworkId") REFERENCES "Artwork" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);
INSERT INTO "new_Image" ("artist", "artworkId", "attributionRequired", "bytes", "chroma", "createdAt", "credit", "descriptionUrl", "downloadedAt", "fileTitle", "height", "id", "isMain", "licenseShortName", "localBytes", "localHash", "localHeight", "localPath", "localSourceSha1", "localWidth", "mime", "missing", "originalUrl", "position", "sha1", "thumbHeight", "thumbUrl", "thumbWidth", "tintChroma", "tintHue", "updatedAt", "usageTerms", "width") SELECT "artist", "artworkId", "attributionRequired", "bytes", "chroma", "createdAt", "credit", "descriptionUrl", "downloadedAt", "fileTitle", "height", "id", "isMain", "licenseShortName", "localBytes", "localHash", "localHeight", "localPath", "localSourceSha1", "localWidth", "mime", "missing", "originalUrl", "position", "sha1", "thumbHeight", "thumbUrl", "thumbWidth", "tintChroma", "tintHue", "updatedAt", "usageTerms", "width" FROM "Image";
-- AUTOINCREMENT never reuses an id: the new table continues the old one's sequence.
DELETE FROM "sqlite_sequence" WHERE "name" = 'new_Image';
INSERT INTO "sqlite_sequence" ("name", "seq") SELECT 'new_Image', "seq" FROM "sqlite_sequence" WHERE "name" = 'Image';
DROP TABLE "Image";
ALTER TABLE "new_Image" RENAME TO "Image";
CREATE INDEX "Image_localHash_idx" ON "Image"("localHash");
CREATE UNIQUE INDEX "Image_artworkId_fileTitle_key" ON "Image"("artworkId", "fileTitle");
PRAGMA legacy_alter_table=OFF;
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;
