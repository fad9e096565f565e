-- Full-text search over active artworks on PostgreSQL (src/search/postgres-search.ts): the
-- counterpart of the SQLite migration 20261127120000_search_fts. Raw SQL that schema.prisma cannot
-- describe; every object has "artwork_fts" in its name (test/store/postgres-migrate.test.ts applies
-- this file to the schema it compares with).
--
-- One row per ACTIVE artwork, id = Artwork.id, with the indexed texts and a weighted tsvector:
-- titles A, creators B, subjects C, description D (COLUMN_WEIGHTS' order; ts_rank's weights are
-- derived from it). Triggers below rewrite an artwork's row in the same transaction as any change
-- to what it indexes, so the index never lags the store. `artdesc search-index rebuild`
-- (rebuildSearchIndex) refills it from artwork_fts_source.

-- unaccent is a trusted extension (PostgreSQL 13+): a database owner may create it.
CREATE EXTENSION IF NOT EXISTS unaccent;

-- Words as FTS5's "unicode61 remove_diacritics 2" sees them: no stemming, no stop words, accents
-- and case folded. The unaccent dictionary filters each word before `simple` lower-cases it, so
-- documents and queries are folded the same way, and ts_headline marks the original (accented)
-- words. to_tsvector(regconfig, text) is IMMUTABLE, so the vector can be a generated column.
CREATE TEXT SEARCH CONFIGURATION artwork_fts_words (COPY = pg_catalog.simple);
ALTER TEXT SEARCH CONFIGURATION artwork_fts_words
    ALTER MAPPING FOR word, hword, hword_part, numword, numhword, hword_numpart WITH unaccent, simple;

-- The values of a JSON object held as text ({"en": "…", "es": "…"}), space-separated; NULL when
-- the text is not a JSON object (SQLite's view reads such text as '{}').
CREATE FUNCTION artwork_fts_json_values(value text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  RETURN (SELECT string_agg(j.value, ' ') FROM json_each_text(value::json) j);
EXCEPTION WHEN others THEN
  RETURN NULL;
END $$;

CREATE TABLE "artwork_fts" (
    "id" INTEGER NOT NULL,
    "titles" TEXT NOT NULL,
    "description" TEXT NOT NULL,
    "creators" TEXT NOT NULL,
    "subjects" TEXT NOT NULL,
    "document" tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('artwork_fts_words'::regconfig, "titles"), 'A') ||
        setweight(to_tsvector('artwork_fts_words'::regconfig, "creators"), 'B') ||
        setweight(to_tsvector('artwork_fts_words'::regconfig, "subjects"), 'C') ||
        setweight(to_tsvector('artwork_fts_words'::regconfig, "description"), 'D')) STORED,
    CONSTRAINT "artwork_fts_pkey" PRIMARY KEY ("id")
);

CREATE INDEX "artwork_fts_document_idx" ON "artwork_fts" USING GIN ("document");

-- What the index holds for each active artwork: every title (all languages), the current
-- description, every label of every creator, and the labels of depicted things (P180), genres
-- (P136) and materials (P186).
CREATE VIEW "artwork_fts_source" AS
SELECT a."id" AS "id",
       COALESCE(artwork_fts_json_values(a."titles"), a."title", '') AS "titles",
       COALESCE((SELECT d."text" FROM "Description" d WHERE d."id" = a."currentDescriptionId"), '') AS "description",
       COALESCE(
         (SELECT string_agg(cl."label", ' ') FROM "ArtworkCreator" ac JOIN "CreatorLabel" cl ON cl."creatorId" = ac."creatorId"
          WHERE ac."artworkId" = a."id"), '') AS "creators",
       COALESCE(
         (SELECT string_agg(COALESCE(artwork_fts_json_values(li."labels"), li."label", ''), ' ')
          FROM "ArtworkLink" l JOIN "LinkedItem" li ON li."qid" = l."itemQid"
          WHERE l."artworkId" = a."id" AND l."property" IN ('P180', 'P136', 'P186')), '') AS "subjects"
FROM "Artwork" a
WHERE a."state" = 'ACTIVE';

-- Brings the rows of these artworks up to artwork_fts_source: gone or no longer active rows are
-- deleted; a row whose texts did not change is left alone (not rewritten).
CREATE FUNCTION artwork_fts_refresh(ids integer[]) RETURNS void LANGUAGE sql AS $$
  DELETE FROM "artwork_fts" f WHERE f."id" = ANY(ids) AND NOT EXISTS (SELECT 1 FROM "artwork_fts_source" s WHERE s."id" = f."id");
  INSERT INTO "artwork_fts" ("id", "titles", "description", "creators", "subjects")
    SELECT "id", "titles", "description", "creators", "subjects" FROM "artwork_fts_source" WHERE "id" = ANY(ids)
  ON CONFLICT ("id") DO UPDATE SET "titles" = EXCLUDED."titles", "description" = EXCLUDED."description",
    "creators" = EXCLUDED."creators", "subjects" = EXCLUDED."subjects"
  WHERE ("artwork_fts"."titles", "artwork_fts"."description", "artwork_fts"."creators", "artwork_fts"."subjects")
    IS DISTINCT FROM (EXCLUDED."titles", EXCLUDED."description", EXCLUDED."creators", EXCLUDED."subjects");
$$;

-- Artwork: new, changed (titles, state, current description) or gone.
CREATE FUNCTION artwork_fts_artwork_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM artwork_fts_refresh(ARRAY[NEW."id"]);
  ELSIF TG_OP = 'UPDATE' THEN
    PERFORM artwork_fts_refresh(ARRAY[OLD."id", NEW."id"]);
  ELSE
    DELETE FROM "artwork_fts" WHERE "id" = OLD."id";
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER "artwork_fts_artwork_insert" AFTER INSERT ON "Artwork"
  FOR EACH ROW EXECUTE FUNCTION artwork_fts_artwork_changed();
-- A sync rewrites every work's fields each run: the WHEN clause skips updates that change nothing indexed.
CREATE TRIGGER "artwork_fts_artwork_update" AFTER UPDATE OF "id", "title", "titles", "state", "currentDescriptionId" ON "Artwork"
  FOR EACH ROW WHEN (OLD."title" IS DISTINCT FROM NEW."title" OR OLD."titles" IS DISTINCT FROM NEW."titles"
    OR OLD."state" IS DISTINCT FROM NEW."state" OR OLD."currentDescriptionId" IS DISTINCT FROM NEW."currentDescriptionId"
    OR OLD."id" IS DISTINCT FROM NEW."id")
  EXECUTE FUNCTION artwork_fts_artwork_changed();
CREATE TRIGGER "artwork_fts_artwork_delete" AFTER DELETE ON "Artwork"
  FOR EACH ROW EXECUTE FUNCTION artwork_fts_artwork_changed();

-- Description rows are history and normally never change; if one is corrected in place, the
-- artwork it is current for follows.
CREATE FUNCTION artwork_fts_description_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM artwork_fts_refresh(ARRAY(SELECT "id" FROM "Artwork" WHERE "currentDescriptionId" = NEW."id"));
  RETURN NULL;
END $$;

CREATE TRIGGER "artwork_fts_description_update" AFTER UPDATE OF "text" ON "Description"
  FOR EACH ROW WHEN (OLD."text" IS DISTINCT FROM NEW."text")
  EXECUTE FUNCTION artwork_fts_description_changed();

-- Attributions: an artwork gains or loses a creator.
CREATE FUNCTION artwork_fts_artworkcreator_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM artwork_fts_refresh(ARRAY[NEW."artworkId"]);
  ELSIF TG_OP = 'UPDATE' THEN
    PERFORM artwork_fts_refresh(ARRAY[OLD."artworkId", NEW."artworkId"]);
  ELSE
    PERFORM artwork_fts_refresh(ARRAY[OLD."artworkId"]);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER "artwork_fts_artworkcreator_insert" AFTER INSERT ON "ArtworkCreator"
  FOR EACH ROW EXECUTE FUNCTION artwork_fts_artworkcreator_changed();
CREATE TRIGGER "artwork_fts_artworkcreator_update" AFTER UPDATE OF "artworkId", "creatorId" ON "ArtworkCreator"
  FOR EACH ROW WHEN (OLD."artworkId" IS DISTINCT FROM NEW."artworkId" OR OLD."creatorId" IS DISTINCT FROM NEW."creatorId")
  EXECUTE FUNCTION artwork_fts_artworkcreator_changed();
CREATE TRIGGER "artwork_fts_artworkcreator_delete" AFTER DELETE ON "ArtworkCreator"
  FOR EACH ROW EXECUTE FUNCTION artwork_fts_artworkcreator_changed();

-- Creator labels: every artwork of the creator follows.
CREATE FUNCTION artwork_fts_creatorlabel_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE creators integer[];
BEGIN
  IF TG_OP = 'INSERT' THEN
    creators := ARRAY[NEW."creatorId"];
  ELSIF TG_OP = 'UPDATE' THEN
    creators := ARRAY[OLD."creatorId", NEW."creatorId"];
  ELSE
    creators := ARRAY[OLD."creatorId"];
  END IF;
  PERFORM artwork_fts_refresh(ARRAY(SELECT DISTINCT "artworkId" FROM "ArtworkCreator" WHERE "creatorId" = ANY(creators)));
  RETURN NULL;
END $$;

CREATE TRIGGER "artwork_fts_creatorlabel_insert" AFTER INSERT ON "CreatorLabel"
  FOR EACH ROW EXECUTE FUNCTION artwork_fts_creatorlabel_changed();
CREATE TRIGGER "artwork_fts_creatorlabel_update" AFTER UPDATE OF "label", "creatorId" ON "CreatorLabel"
  FOR EACH ROW WHEN (OLD."label" IS DISTINCT FROM NEW."label" OR OLD."creatorId" IS DISTINCT FROM NEW."creatorId")
  EXECUTE FUNCTION artwork_fts_creatorlabel_changed();
CREATE TRIGGER "artwork_fts_creatorlabel_delete" AFTER DELETE ON "CreatorLabel"
  FOR EACH ROW EXECUTE FUNCTION artwork_fts_creatorlabel_changed();

-- Linked items (depicts, genre, material): a link added or removed, or an item relabelled.
CREATE FUNCTION artwork_fts_artworklink_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM artwork_fts_refresh(ARRAY[NEW."artworkId"]);
  ELSIF TG_OP = 'UPDATE' THEN
    PERFORM artwork_fts_refresh(ARRAY[OLD."artworkId", NEW."artworkId"]);
  ELSE
    PERFORM artwork_fts_refresh(ARRAY[OLD."artworkId"]);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER "artwork_fts_artworklink_insert" AFTER INSERT ON "ArtworkLink"
  FOR EACH ROW WHEN (NEW."property" IN ('P180', 'P136', 'P186'))
  EXECUTE FUNCTION artwork_fts_artworklink_changed();
CREATE TRIGGER "artwork_fts_artworklink_update" AFTER UPDATE OF "artworkId", "property", "itemQid" ON "ArtworkLink"
  FOR EACH ROW WHEN (OLD."artworkId" IS DISTINCT FROM NEW."artworkId" OR OLD."property" IS DISTINCT FROM NEW."property"
    OR OLD."itemQid" IS DISTINCT FROM NEW."itemQid")
  EXECUTE FUNCTION artwork_fts_artworklink_changed();
CREATE TRIGGER "artwork_fts_artworklink_delete" AFTER DELETE ON "ArtworkLink"
  FOR EACH ROW WHEN (OLD."property" IN ('P180', 'P136', 'P186'))
  EXECUTE FUNCTION artwork_fts_artworklink_changed();

CREATE FUNCTION artwork_fts_linkeditem_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM artwork_fts_refresh(ARRAY(
    SELECT DISTINCT "artworkId" FROM "ArtworkLink" WHERE "itemQid" = NEW."qid" AND "property" IN ('P180', 'P136', 'P186')));
  RETURN NULL;
END $$;

CREATE TRIGGER "artwork_fts_linkeditem_update" AFTER UPDATE OF "label", "labels" ON "LinkedItem"
  FOR EACH ROW WHEN (OLD."label" IS DISTINCT FROM NEW."label" OR OLD."labels" IS DISTINCT FROM NEW."labels")
  EXECUTE FUNCTION artwork_fts_linkeditem_changed();

-- Fills the index for the artworks already in the store.
INSERT INTO "artwork_fts" ("id", "titles", "description", "creators", "subjects")
  SELECT "id", "titles", "description", "creators", "subjects" FROM "artwork_fts_source";
