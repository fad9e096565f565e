-- Full-text search over active artworks (src/search). FTS5 cannot be described in
-- schema.prisma, so this migration is raw SQL; every object here has "_fts" in its name, which
-- the drift check (.ci/schema-dump.cjs) leaves out.
--
-- One row per ACTIVE artwork, rowid = Artwork.id. Triggers below rewrite an artwork's row in
-- the same transaction as any change to what it indexes, so the index never lags the store.
-- `artdesc search-index rebuild` (rebuildSearchIndex) refills it from artwork_fts_source.

CREATE VIRTUAL TABLE "artwork_fts" USING fts5(
    titles,
    description,
    creators,
    subjects,
    tokenize = "unicode61 remove_diacritics 2",
    prefix = '2 3'
);

-- What the index holds for each active artwork: every title (all languages), the current
-- description, every label of every creator, and the labels of depicted things (P180),
-- genres (P136) and materials (P186).
CREATE VIEW "artwork_fts_source" AS
SELECT a."id" AS "id",
       COALESCE(
         (SELECT group_concat(t."value", ' ') FROM json_each(CASE WHEN json_valid(a."titles") THEN a."titles" ELSE '{}' END) t),
         a."title", '') AS "titles",
       COALESCE((SELECT d."text" FROM "Description" d WHERE d."id" = a."currentDescriptionId"), '') AS "description",
       COALESCE(
         (SELECT group_concat(cl."label", ' ') FROM "ArtworkCreator" ac JOIN "CreatorLabel" cl ON cl."creatorId" = ac."creatorId"
          WHERE ac."artworkId" = a."id"), '') AS "creators",
       COALESCE(
         (SELECT group_concat(COALESCE(
                   (SELECT group_concat(j."value", ' ') FROM json_each(CASE WHEN json_valid(li."labels") THEN li."labels" ELSE '{}' END) j),
                   li."label", ''), ' ')
          FROM "ArtworkLink" l JOIN "LinkedItem" li ON li."qid" = l."itemQid"
          WHERE l."artworkId" = a."id" AND l."property" IN ('P180', 'P136', 'P186')), '') AS "subjects"
FROM "Artwork" a
WHERE a."state" = 'ACTIVE';

-- Artwork: new, changed (titles, state, current description) or gone.
CREATE TRIGGER "artwork_fts_artwork_insert" AFTER INSERT ON "Artwork" BEGIN
  INSERT INTO "artwork_fts" (rowid, titles, description, creators, subjects)
    SELECT "id", "titles", "description", "creators", "subjects" FROM "artwork_fts_source" WHERE "id" = NEW."id";
END;

-- A sync rewrites every work's fields each run: the WHEN clauses skip updates that change nothing indexed.
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

-- Description rows are history and normally never change; if one is corrected in place, the
-- artwork it is current for follows.
CREATE TRIGGER "artwork_fts_description_update" AFTER UPDATE OF "text" ON "Description" WHEN OLD."text" IS NOT NEW."text" BEGIN
  DELETE FROM "artwork_fts" WHERE rowid IN (SELECT "id" FROM "Artwork" WHERE "currentDescriptionId" = NEW."id");
  INSERT INTO "artwork_fts" (rowid, titles, description, creators, subjects)
    SELECT "id", "titles", "description", "creators", "subjects" FROM "artwork_fts_source"
    WHERE "id" IN (SELECT "id" FROM "Artwork" WHERE "currentDescriptionId" = NEW."id");
END;

-- Attributions: an artwork gains or loses a creator.
CREATE TRIGGER "artwork_fts_artworkcreator_insert" AFTER INSERT ON "ArtworkCreator" BEGIN
  DELETE FROM "artwork_fts" WHERE rowid = NEW."artworkId";
  INSERT INTO "artwork_fts" (rowid, titles, description, creators, subjects)
    SELECT "id", "titles", "description", "creators", "subjects" FROM "artwork_fts_source" WHERE "id" = NEW."artworkId";
END;

CREATE TRIGGER "artwork_fts_artworkcreator_update" AFTER UPDATE OF "artworkId", "creatorId" ON "ArtworkCreator"
WHEN OLD."artworkId" IS NOT NEW."artworkId" OR OLD."creatorId" IS NOT NEW."creatorId" BEGIN
  DELETE FROM "artwork_fts" WHERE rowid IN (OLD."artworkId", NEW."artworkId");
  INSERT INTO "artwork_fts" (rowid, titles, description, creators, subjects)
    SELECT "id", "titles", "description", "creators", "subjects" FROM "artwork_fts_source" WHERE "id" IN (OLD."artworkId", NEW."artworkId");
END;

CREATE TRIGGER "artwork_fts_artworkcreator_delete" AFTER DELETE ON "ArtworkCreator" BEGIN
  DELETE FROM "artwork_fts" WHERE rowid = OLD."artworkId";
  INSERT INTO "artwork_fts" (rowid, titles, description, creators, subjects)
    SELECT "id", "titles", "description", "creators", "subjects" FROM "artwork_fts_source" WHERE "id" = OLD."artworkId";
END;

-- Creator labels: every artwork of the creator follows.
CREATE TRIGGER "artwork_fts_creatorlabel_insert" AFTER INSERT ON "CreatorLabel" BEGIN
  DELETE FROM "artwork_fts" WHERE rowid IN (SELECT "artworkId" FROM "ArtworkCreator" WHERE "creatorId" = NEW."creatorId");
  INSERT INTO "artwork_fts" (rowid, titles, description, creators, subjects)
    SELECT "id", "titles", "description", "creators", "subjects" FROM "artwork_fts_source"
    WHERE "id" IN (SELECT "artworkId" FROM "ArtworkCreator" WHERE "creatorId" = NEW."creatorId");
END;

CREATE TRIGGER "artwork_fts_creatorlabel_update" AFTER UPDATE OF "label", "creatorId" ON "CreatorLabel"
WHEN OLD."label" IS NOT NEW."label" OR OLD."creatorId" IS NOT NEW."creatorId" BEGIN
  DELETE FROM "artwork_fts" WHERE rowid IN (SELECT "artworkId" FROM "ArtworkCreator" WHERE "creatorId" IN (OLD."creatorId", NEW."creatorId"));
  INSERT INTO "artwork_fts" (rowid, titles, description, creators, subjects)
    SELECT "id", "titles", "description", "creators", "subjects" FROM "artwork_fts_source"
    WHERE "id" IN (SELECT "artworkId" FROM "ArtworkCreator" WHERE "creatorId" IN (OLD."creatorId", NEW."creatorId"));
END;

CREATE TRIGGER "artwork_fts_creatorlabel_delete" AFTER DELETE ON "CreatorLabel" BEGIN
  DELETE FROM "artwork_fts" WHERE rowid IN (SELECT "artworkId" FROM "ArtworkCreator" WHERE "creatorId" = OLD."creatorId");
  INSERT INTO "artwork_fts" (rowid, titles, description, creators, subjects)
    SELECT "id", "titles", "description", "creators", "subjects" FROM "artwork_fts_source"
    WHERE "id" IN (SELECT "artworkId" FROM "ArtworkCreator" WHERE "creatorId" = OLD."creatorId");
END;

-- Linked items (depicts, genre, material): a link added or removed, or an item relabelled.
CREATE TRIGGER "artwork_fts_artworklink_insert" AFTER INSERT ON "ArtworkLink" WHEN NEW."property" IN ('P180', 'P136', 'P186') BEGIN
  DELETE FROM "artwork_fts" WHERE rowid = NEW."artworkId";
  INSERT INTO "artwork_fts" (rowid, titles, description, creators, subjects)
    SELECT "id", "titles", "description", "creators", "subjects" FROM "artwork_fts_source" WHERE "id" = NEW."artworkId";
END;

CREATE TRIGGER "artwork_fts_artworklink_update" AFTER UPDATE OF "artworkId", "property", "itemQid" ON "ArtworkLink"
WHEN OLD."artworkId" IS NOT NEW."artworkId" OR OLD."property" IS NOT NEW."property" OR OLD."itemQid" IS NOT NEW."itemQid" BEGIN
  DELETE FROM "artwork_fts" WHERE rowid IN (OLD."artworkId", NEW."artworkId");
  INSERT INTO "artwork_fts" (rowid, titles, description, creators, subjects)
    SELECT "id", "titles", "description", "creators", "subjects" FROM "artwork_fts_source" WHERE "id" IN (OLD."artworkId", NEW."artworkId");
END;

CREATE TRIGGER "artwork_fts_artworklink_delete" AFTER DELETE ON "ArtworkLink" WHEN OLD."property" IN ('P180', 'P136', 'P186') BEGIN
  DELETE FROM "artwork_fts" WHERE rowid = OLD."artworkId";
  INSERT INTO "artwork_fts" (rowid, titles, description, creators, subjects)
    SELECT "id", "titles", "description", "creators", "subjects" FROM "artwork_fts_source" WHERE "id" = OLD."artworkId";
END;

CREATE TRIGGER "artwork_fts_linkeditem_update" AFTER UPDATE OF "label", "labels" ON "LinkedItem"
WHEN OLD."label" IS NOT NEW."label" OR OLD."labels" IS NOT NEW."labels" BEGIN
  DELETE FROM "artwork_fts" WHERE rowid IN (
    SELECT "artworkId" FROM "ArtworkLink" WHERE "itemQid" = NEW."qid" AND "property" IN ('P180', 'P136', 'P186'));
  INSERT INTO "artwork_fts" (rowid, titles, description, creators, subjects)
    SELECT "id", "titles", "description", "creators", "subjects" FROM "artwork_fts_source"
    WHERE "id" IN (SELECT "artworkId" FROM "ArtworkLink" WHERE "itemQid" = NEW."qid" AND "property" IN ('P180', 'P136', 'P186'));
END;

-- The index's vocabulary (one row per indexed word), for deciding whether a query's last word is
-- complete or still being typed.
CREATE VIRTUAL TABLE "artwork_fts_vocab" USING fts5vocab("artwork_fts", 'row');
