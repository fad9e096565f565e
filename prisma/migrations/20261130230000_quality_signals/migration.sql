-- Quality signals (docs/quality.md): the stored assessment of each description, the chroma figure
-- of each image, and the aliases and P31 of linked items that DEPICTS_MISSING needs.
-- Columns are added, not tables rebuilt: migrations run in a transaction with foreign keys on, where
-- dropping Description or Image would fire ON DELETE SET NULL on the rows that point at them, and
-- dropping LinkedItem is refused (ArtworkLink restricts it). The schema lists these columns last
-- and in this order, so a pushed database defines the tables the same way.

-- AlterTable
ALTER TABLE "Image" ADD COLUMN "chroma" REAL;
ALTER TABLE "Image" ADD COLUMN "tintChroma" REAL;
ALTER TABLE "Image" ADD COLUMN "tintHue" REAL;

-- AlterTable
ALTER TABLE "Description" ADD COLUMN "qualityAt" DATETIME;
ALTER TABLE "Description" ADD COLUMN "qualityChecks" TEXT;
ALTER TABLE "Description" ADD COLUMN "qualityFlags" TEXT;
ALTER TABLE "Description" ADD COLUMN "qualityRisk" REAL;

-- AlterTable
ALTER TABLE "LinkedItem" ADD COLUMN "aliases" TEXT NOT NULL DEFAULT '{}';
ALTER TABLE "LinkedItem" ADD COLUMN "instanceOf" TEXT NOT NULL DEFAULT '[]';

-- CreateIndex
CREATE INDEX "Description_qualityRisk_idx" ON "Description"("qualityRisk");
