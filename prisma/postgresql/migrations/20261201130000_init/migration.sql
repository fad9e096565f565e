-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateEnum
CREATE TYPE "AttributionKind" AS ENUM ('CREATOR', 'ATTRIBUTED_TO', 'WORKSHOP_OF', 'FOLLOWER_OF', 'CIRCLE_OF', 'MANNER_OF', 'POSSIBLE_CREATOR', 'SCHOOL_OF');

-- CreateEnum
CREATE TYPE "ArtworkState" AS ENUM ('ACTIVE', 'MERGED', 'DELETED', 'NOT_BY_CREATOR');

-- CreateEnum
CREATE TYPE "DescriptionSource" AS ENUM ('MODEL', 'HUMAN');

-- CreateEnum
CREATE TYPE "ReviewVerdict" AS ENUM ('APPROVED', 'REJECTED', 'NEEDS_WORK');

-- CreateEnum
CREATE TYPE "JobStatus" AS ENUM ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED');

-- CreateEnum
CREATE TYPE "SyncRunStatus" AS ENUM ('RUNNING', 'SUCCEEDED', 'PARTIAL', 'FAILED', 'ABORTED');

-- CreateTable
CREATE TABLE "Creator" (
    "id" SERIAL NOT NULL,
    "qid" TEXT NOT NULL,
    "label" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Creator_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "CreatorLabel" (
    "id" SERIAL NOT NULL,
    "creatorId" INTEGER NOT NULL,
    "language" TEXT NOT NULL,
    "label" TEXT NOT NULL,
    "normalized" TEXT NOT NULL,

    CONSTRAINT "CreatorLabel_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Artwork" (
    "id" SERIAL NOT NULL,
    "qid" TEXT NOT NULL,
    "qidNumber" INTEGER NOT NULL,
    "title" TEXT,
    "titles" TEXT NOT NULL DEFAULT '{}',
    "inception" TEXT,
    "inceptionPrecision" INTEGER,
    "inceptionYear" INTEGER,
    "height" DOUBLE PRECISION,
    "heightUnit" TEXT,
    "width" DOUBLE PRECISION,
    "widthUnit" TEXT,
    "wikidataRevision" INTEGER,
    "wikidataModified" TIMESTAMP(3),
    "firstSeenAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastSyncedAt" TIMESTAMP(3),
    "state" "ArtworkState" NOT NULL DEFAULT 'ACTIVE',
    "mergedIntoQid" TEXT,
    "stateChangedAt" TIMESTAMP(3),
    "currentDescriptionId" INTEGER,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    "needsPerson" BOOLEAN NOT NULL DEFAULT false,
    "fallbackStep" INTEGER,

    CONSTRAINT "Artwork_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ArtworkCreator" (
    "id" SERIAL NOT NULL,
    "artworkId" INTEGER NOT NULL,
    "creatorId" INTEGER NOT NULL,
    "attribution" "AttributionKind" NOT NULL DEFAULT 'CREATOR',
    "position" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "ArtworkCreator_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "LinkedItem" (
    "qid" TEXT NOT NULL,
    "label" TEXT,
    "labels" TEXT NOT NULL DEFAULT '{}',
    "refreshedAt" TIMESTAMP(3),
    "aliases" TEXT NOT NULL DEFAULT '{}',
    "instanceOf" TEXT NOT NULL DEFAULT '[]',

    CONSTRAINT "LinkedItem_pkey" PRIMARY KEY ("qid")
);

-- CreateTable
CREATE TABLE "ArtworkLink" (
    "id" SERIAL NOT NULL,
    "artworkId" INTEGER NOT NULL,
    "property" TEXT NOT NULL,
    "itemQid" TEXT NOT NULL,
    "position" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "ArtworkLink_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Image" (
    "id" SERIAL NOT NULL,
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
    "bytes" INTEGER,
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
    "downloadedAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    "chroma" DOUBLE PRECISION,
    "tintChroma" DOUBLE PRECISION,
    "tintHue" DOUBLE PRECISION,

    CONSTRAINT "Image_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Description" (
    "id" SERIAL NOT NULL,
    "artworkId" INTEGER NOT NULL,
    "imageId" INTEGER,
    "jobId" INTEGER,
    "text" TEXT NOT NULL,
    "rawText" TEXT,
    "language" TEXT NOT NULL DEFAULT 'en',
    "source" "DescriptionSource" NOT NULL,
    "author" TEXT,
    "reason" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "modelId" TEXT,
    "modelRevision" TEXT,
    "dtypes" TEXT,
    "device" TEXT,
    "prompt" TEXT,
    "numBeams" INTEGER,
    "maxNewTokens" INTEGER,
    "minNewTokens" INTEGER,
    "targetWords" INTEGER,
    "lengthPenalty" DOUBLE PRECISION,
    "earlyStopping" TEXT,
    "noRepeatNgramSize" INTEGER,
    "repetitionPenalty" DOUBLE PRECISION,
    "imageSplitting" BOOLEAN,
    "promptTokens" INTEGER,
    "imageTokens" INTEGER,
    "generatedTokens" INTEGER,
    "generatedTokenIds" TEXT,
    "sequenceScore" DOUBLE PRECISION,
    "timings" TEXT,
    "finishReason" TEXT,
    "trimmed" BOOLEAN NOT NULL DEFAULT false,
    "qualityAt" TIMESTAMP(3),
    "qualityChecks" TEXT,
    "qualityFlags" TEXT,
    "qualityRisk" DOUBLE PRECISION,
    "reviewState" "ReviewVerdict",
    "reviewedAt" TIMESTAMP(3),
    "reviewedBy" TEXT,
    "instruction" TEXT,
    "cleanMarkdown" BOOLEAN,
    "decoding" TEXT,
    "batchSize" INTEGER,
    "imageHash" TEXT,
    "modelFiles" TEXT,
    "experimentId" INTEGER,
    "experimentArm" TEXT,

    CONSTRAINT "Description_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Review" (
    "id" SERIAL NOT NULL,
    "descriptionId" INTEGER NOT NULL,
    "verdict" "ReviewVerdict" NOT NULL,
    "note" TEXT,
    "reviewer" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "fallbackStep" INTEGER,
    "fallbackJobId" INTEGER,
    "exhausted" BOOLEAN NOT NULL DEFAULT false,

    CONSTRAINT "Review_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Job" (
    "id" SERIAL NOT NULL,
    "kind" TEXT NOT NULL DEFAULT 'describe',
    "status" "JobStatus" NOT NULL DEFAULT 'QUEUED',
    "priority" INTEGER NOT NULL DEFAULT 0,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "maxAttempts" INTEGER NOT NULL DEFAULT 3,
    "runAfter" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "holder" TEXT,
    "heartbeatAt" TIMESTAMP(3),
    "dedupeKey" TEXT,
    "force" BOOLEAN NOT NULL DEFAULT false,
    "reason" TEXT,
    "requestedBy" TEXT,
    "error" TEXT,
    "progress" INTEGER NOT NULL DEFAULT 0,
    "progressTotal" INTEGER,
    "params" TEXT NOT NULL DEFAULT '{}',
    "artworkId" INTEGER,
    "imageId" INTEGER,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    "startedAt" TIMESTAMP(3),
    "finishedAt" TIMESTAMP(3),
    "experimentId" INTEGER,
    "experimentArm" TEXT,

    CONSTRAINT "Job_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Experiment" (
    "id" SERIAL NOT NULL,
    "name" TEXT,
    "seed" INTEGER NOT NULL,
    "sampleSize" INTEGER NOT NULL,
    "creator" TEXT,
    "arms" TEXT NOT NULL,
    "requestedBy" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "cancelledAt" TIMESTAMP(3),

    CONSTRAINT "Experiment_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ExperimentWork" (
    "id" SERIAL NOT NULL,
    "experimentId" INTEGER NOT NULL,
    "artworkId" INTEGER NOT NULL,
    "position" INTEGER NOT NULL,

    CONSTRAINT "ExperimentWork_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "SyncRun" (
    "id" SERIAL NOT NULL,
    "status" "SyncRunStatus" NOT NULL DEFAULT 'RUNNING',
    "trigger" TEXT NOT NULL DEFAULT 'manual',
    "full" BOOLEAN NOT NULL DEFAULT false,
    "creators" TEXT NOT NULL DEFAULT '[]',
    "holder" TEXT,
    "startedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finishedAt" TIMESTAMP(3),
    "seen" INTEGER NOT NULL DEFAULT 0,
    "created" INTEGER NOT NULL DEFAULT 0,
    "updated" INTEGER NOT NULL DEFAULT 0,
    "unchanged" INTEGER NOT NULL DEFAULT 0,
    "removed" INTEGER NOT NULL DEFAULT 0,
    "skippedNoImage" INTEGER NOT NULL DEFAULT 0,
    "failed" INTEGER NOT NULL DEFAULT 0,
    "imagesDownloaded" INTEGER NOT NULL DEFAULT 0,
    "imagesUnchanged" INTEGER NOT NULL DEFAULT 0,
    "jobsQueued" INTEGER NOT NULL DEFAULT 0,
    "error" TEXT,

    CONSTRAINT "SyncRun_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "SyncFailure" (
    "id" SERIAL NOT NULL,
    "syncRunId" INTEGER NOT NULL,
    "stage" TEXT NOT NULL,
    "itemQid" TEXT,
    "fileTitle" TEXT,
    "reason" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "SyncFailure_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Lease" (
    "name" TEXT NOT NULL,
    "holder" TEXT NOT NULL,
    "expiresAt" TIMESTAMP(3) NOT NULL,
    "acquiredAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "hostname" TEXT,
    "pid" INTEGER,
    "bootId" TEXT,
    "pidNamespace" TEXT,
    "startTicks" BIGINT,

    CONSTRAINT "Lease_pkey" PRIMARY KEY ("name")
);

-- CreateTable
CREATE TABLE "Heartbeat" (
    "id" TEXT NOT NULL,
    "role" TEXT NOT NULL,
    "pid" INTEGER NOT NULL,
    "hostname" TEXT NOT NULL,
    "startedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "beatAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "modelStatus" TEXT,
    "modelError" TEXT,
    "modelId" TEXT,
    "modelRevision" TEXT,
    "dtypes" TEXT,
    "device" TEXT,

    CONSTRAINT "Heartbeat_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "Creator_qid_key" ON "Creator"("qid");

-- CreateIndex
CREATE INDEX "CreatorLabel_normalized_idx" ON "CreatorLabel"("normalized");

-- CreateIndex
CREATE UNIQUE INDEX "CreatorLabel_creatorId_language_label_key" ON "CreatorLabel"("creatorId", "language", "label");

-- CreateIndex
CREATE UNIQUE INDEX "Artwork_qid_key" ON "Artwork"("qid");

-- CreateIndex
CREATE UNIQUE INDEX "Artwork_currentDescriptionId_key" ON "Artwork"("currentDescriptionId");

-- CreateIndex
CREATE INDEX "Artwork_state_inception_qidNumber_idx" ON "Artwork"("state", "inception", "qidNumber");

-- CreateIndex
CREATE INDEX "Artwork_inceptionYear_idx" ON "Artwork"("inceptionYear");

-- CreateIndex
CREATE INDEX "ArtworkCreator_creatorId_idx" ON "ArtworkCreator"("creatorId");

-- CreateIndex
CREATE UNIQUE INDEX "ArtworkCreator_artworkId_creatorId_attribution_key" ON "ArtworkCreator"("artworkId", "creatorId", "attribution");

-- CreateIndex
CREATE INDEX "ArtworkLink_property_itemQid_idx" ON "ArtworkLink"("property", "itemQid");

-- CreateIndex
CREATE UNIQUE INDEX "ArtworkLink_artworkId_property_itemQid_key" ON "ArtworkLink"("artworkId", "property", "itemQid");

-- CreateIndex
CREATE INDEX "Image_localHash_idx" ON "Image"("localHash");

-- CreateIndex
CREATE UNIQUE INDEX "Image_artworkId_fileTitle_key" ON "Image"("artworkId", "fileTitle");

-- CreateIndex
CREATE UNIQUE INDEX "Description_jobId_key" ON "Description"("jobId");

-- CreateIndex
CREATE INDEX "Description_artworkId_createdAt_idx" ON "Description"("artworkId", "createdAt");

-- CreateIndex
CREATE INDEX "Description_qualityRisk_idx" ON "Description"("qualityRisk");

-- CreateIndex
CREATE INDEX "Description_experimentId_experimentArm_idx" ON "Description"("experimentId", "experimentArm");

-- CreateIndex
CREATE INDEX "Description_reviewState_qualityRisk_idx" ON "Description"("reviewState", "qualityRisk");

-- CreateIndex
CREATE INDEX "Review_descriptionId_id_idx" ON "Review"("descriptionId", "id");

-- CreateIndex
CREATE INDEX "Review_fallbackJobId_idx" ON "Review"("fallbackJobId");

-- CreateIndex
CREATE INDEX "Review_verdict_idx" ON "Review"("verdict");

-- CreateIndex
CREATE INDEX "Job_status_priority_runAfter_idx" ON "Job"("status", "priority", "runAfter");

-- CreateIndex
CREATE INDEX "Job_dedupeKey_status_idx" ON "Job"("dedupeKey", "status");

-- CreateIndex
CREATE INDEX "Job_artworkId_idx" ON "Job"("artworkId");

-- CreateIndex
CREATE INDEX "Job_experimentId_experimentArm_status_idx" ON "Job"("experimentId", "experimentArm", "status");

-- CreateIndex
CREATE INDEX "ExperimentWork_artworkId_idx" ON "ExperimentWork"("artworkId");

-- CreateIndex
CREATE UNIQUE INDEX "ExperimentWork_experimentId_artworkId_key" ON "ExperimentWork"("experimentId", "artworkId");

-- CreateIndex
CREATE INDEX "SyncRun_startedAt_idx" ON "SyncRun"("startedAt");

-- CreateIndex
CREATE INDEX "SyncFailure_syncRunId_idx" ON "SyncFailure"("syncRunId");

-- AddForeignKey
ALTER TABLE "CreatorLabel" ADD CONSTRAINT "CreatorLabel_creatorId_fkey" FOREIGN KEY ("creatorId") REFERENCES "Creator"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Artwork" ADD CONSTRAINT "Artwork_currentDescriptionId_fkey" FOREIGN KEY ("currentDescriptionId") REFERENCES "Description"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ArtworkCreator" ADD CONSTRAINT "ArtworkCreator_artworkId_fkey" FOREIGN KEY ("artworkId") REFERENCES "Artwork"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ArtworkCreator" ADD CONSTRAINT "ArtworkCreator_creatorId_fkey" FOREIGN KEY ("creatorId") REFERENCES "Creator"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ArtworkLink" ADD CONSTRAINT "ArtworkLink_artworkId_fkey" FOREIGN KEY ("artworkId") REFERENCES "Artwork"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ArtworkLink" ADD CONSTRAINT "ArtworkLink_itemQid_fkey" FOREIGN KEY ("itemQid") REFERENCES "LinkedItem"("qid") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Image" ADD CONSTRAINT "Image_artworkId_fkey" FOREIGN KEY ("artworkId") REFERENCES "Artwork"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Description" ADD CONSTRAINT "Description_artworkId_fkey" FOREIGN KEY ("artworkId") REFERENCES "Artwork"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Description" ADD CONSTRAINT "Description_imageId_fkey" FOREIGN KEY ("imageId") REFERENCES "Image"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Description" ADD CONSTRAINT "Description_jobId_fkey" FOREIGN KEY ("jobId") REFERENCES "Job"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Review" ADD CONSTRAINT "Review_descriptionId_fkey" FOREIGN KEY ("descriptionId") REFERENCES "Description"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Review" ADD CONSTRAINT "Review_fallbackJobId_fkey" FOREIGN KEY ("fallbackJobId") REFERENCES "Job"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Job" ADD CONSTRAINT "Job_artworkId_fkey" FOREIGN KEY ("artworkId") REFERENCES "Artwork"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Job" ADD CONSTRAINT "Job_imageId_fkey" FOREIGN KEY ("imageId") REFERENCES "Image"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ExperimentWork" ADD CONSTRAINT "ExperimentWork_experimentId_fkey" FOREIGN KEY ("experimentId") REFERENCES "Experiment"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ExperimentWork" ADD CONSTRAINT "ExperimentWork_artworkId_fkey" FOREIGN KEY ("artworkId") REFERENCES "Artwork"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "SyncFailure" ADD CONSTRAINT "SyncFailure_syncRunId_fkey" FOREIGN KEY ("syncRunId") REFERENCES "SyncRun"("id") ON DELETE CASCADE ON UPDATE CASCADE;

