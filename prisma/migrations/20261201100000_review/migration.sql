-- Review (src/review/): the history of verdicts on descriptions, the latest verdict copied onto
-- each description (so the review queue is one index scan), and the fallback ladder's state on
-- each artwork. Columns are added, not tables rebuilt (see 20261130230000_quality_signals for why);
-- the schema lists them last and in this order.

-- CreateTable
CREATE TABLE "Review" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "descriptionId" INTEGER NOT NULL,
    "verdict" TEXT NOT NULL,
    "note" TEXT,
    "reviewer" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "fallbackStep" INTEGER,
    "fallbackJobId" INTEGER,
    "exhausted" BOOLEAN NOT NULL DEFAULT false,
    CONSTRAINT "Review_descriptionId_fkey" FOREIGN KEY ("descriptionId") REFERENCES "Description" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "Review_fallbackJobId_fkey" FOREIGN KEY ("fallbackJobId") REFERENCES "Job" ("id") ON DELETE SET NULL ON UPDATE CASCADE
);

-- AlterTable
ALTER TABLE "Artwork" ADD COLUMN "needsPerson" BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE "Artwork" ADD COLUMN "fallbackStep" INTEGER;

-- AlterTable
ALTER TABLE "Description" ADD COLUMN "reviewState" TEXT;
ALTER TABLE "Description" ADD COLUMN "reviewedAt" DATETIME;
ALTER TABLE "Description" ADD COLUMN "reviewedBy" TEXT;

-- CreateIndex
CREATE INDEX "Description_reviewState_qualityRisk_idx" ON "Description"("reviewState", "qualityRisk");

-- CreateIndex
CREATE INDEX "Review_descriptionId_id_idx" ON "Review"("descriptionId", "id");

-- CreateIndex
CREATE INDEX "Review_fallbackJobId_idx" ON "Review"("fallbackJobId");

-- CreateIndex
CREATE INDEX "Review_verdict_idx" ON "Review"("verdict");
