-- Wikidata's revision ids have passed 2^31 (integer's limit), and a Commons file can be larger than
-- 2 GiB: both columns become bigint, values kept. Each ALTER rewrites its table under an exclusive lock.
-- AlterTable
ALTER TABLE "Artwork" ALTER COLUMN "wikidataRevision" SET DATA TYPE BIGINT;

-- AlterTable
ALTER TABLE "Image" ALTER COLUMN "bytes" SET DATA TYPE BIGINT;

