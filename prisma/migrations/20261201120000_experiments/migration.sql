-- Experiments (src/experiments/): a comparison of generation parameter sets on one sample of
-- works. Each description and job an experiment makes carries its id and arm. Columns are added,
-- not tables rebuilt (see 20261130230000_quality_signals for why), so they have no foreign key;
-- the schema lists them last and in this order.

-- CreateTable
CREATE TABLE "Experiment" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "name" TEXT,
    "seed" INTEGER NOT NULL,
    "sampleSize" INTEGER NOT NULL,
    "creator" TEXT,
    "arms" TEXT NOT NULL,
    "requestedBy" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "cancelledAt" DATETIME
);

-- CreateTable
CREATE TABLE "ExperimentWork" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "experimentId" INTEGER NOT NULL,
    "artworkId" INTEGER NOT NULL,
    "position" INTEGER NOT NULL,
    CONSTRAINT "ExperimentWork_experimentId_fkey" FOREIGN KEY ("experimentId") REFERENCES "Experiment" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "ExperimentWork_artworkId_fkey" FOREIGN KEY ("artworkId") REFERENCES "Artwork" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- AlterTable
ALTER TABLE "Description" ADD COLUMN "experimentId" INTEGER;
ALTER TABLE "Description" ADD COLUMN "experimentArm" TEXT;

-- AlterTable
ALTER TABLE "Job" ADD COLUMN "experimentId" INTEGER;
ALTER TABLE "Job" ADD COLUMN "experimentArm" TEXT;

-- CreateIndex
CREATE INDEX "Description_experimentId_experimentArm_idx" ON "Description"("experimentId", "experimentArm");

-- CreateIndex
CREATE INDEX "Job_experimentId_experimentArm_status_idx" ON "Job"("experimentId", "experimentArm", "status");

-- CreateIndex
CREATE INDEX "ExperimentWork_artworkId_idx" ON "ExperimentWork"("artworkId");

-- CreateIndex
CREATE UNIQUE INDEX "ExperimentWork_experimentId_artworkId_key" ON "ExperimentWork"("experimentId", "artworkId");
