-- CreateTable
CREATE TABLE "Creator" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "qid" TEXT NOT NULL,
    "label" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);

-- CreateTable
CREATE TABLE "CreatorLabel" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "creatorId" INTEGER NOT NULL,
    "language" TEXT NOT NULL,
    "label" TEXT NOT NULL,
    "normalized" TEXT NOT NULL,
    CONSTRAINT "CreatorLabel_creatorId_fkey" FOREIGN KEY ("creatorId") REFERENCES "Creator" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "Artwork" (
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
    "wikidataRevision" INTEGER,
    "wikidataModified" DATETIME,
    "firstSeenAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastSyncedAt" DATETIME,
    "state" TEXT NOT NULL DEFAULT 'ACTIVE',
    "mergedIntoQid" TEXT,
    "stateChangedAt" DATETIME,
    "currentDescriptionId" INTEGER,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL,
    CONSTRAINT "Artwork_currentDescriptionId_fkey" FOREIGN KEY ("currentDescriptionId") REFERENCES "Description" ("id") ON DELETE SET NULL ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "ArtworkCreator" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "artworkId" INTEGER NOT NULL,
    "creatorId" INTEGER NOT NULL,
    "attribution" TEXT NOT NULL DEFAULT 'CREATOR',
    "position" INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT "ArtworkCreator_artworkId_fkey" FOREIGN KEY ("artworkId") REFERENCES "Artwork" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "ArtworkCreator_creatorId_fkey" FOREIGN KEY ("creatorId") REFERENCES "Creator" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "LinkedItem" (
    "qid" TEXT NOT NULL PRIMARY KEY,
    "label" TEXT,
    "labels" TEXT NOT NULL DEFAULT '{}',
    "refreshedAt" DATETIME
);

-- CreateTable
CREATE TABLE "ArtworkLink" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "artworkId" INTEGER NOT NULL,
    "property" TEXT NOT NULL,
    "itemQid" TEXT NOT NULL,
    "position" INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT "ArtworkLink_artworkId_fkey" FOREIGN KEY ("artworkId") REFERENCES "Artwork" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "ArtworkLink_itemQid_fkey" FOREIGN KEY ("itemQid") REFERENCES "LinkedItem" ("qid") ON DELETE RESTRICT ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "Image" (
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
    "downloadedAt" DATETIME,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL,
    CONSTRAINT "Image_artworkId_fkey" FOREIGN KEY ("artworkId") REFERENCES "Artwork" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "Description" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "artworkId" INTEGER NOT NULL,
    "imageId" INTEGER,
    "jobId" INTEGER,
    "text" TEXT NOT NULL,
    "rawText" TEXT,
    "language" TEXT NOT NULL DEFAULT 'en',
    "source" TEXT NOT NULL,
    "author" TEXT,
    "reason" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "modelId" TEXT,
    "modelRevision" TEXT,
    "dtypes" TEXT,
    "device" TEXT,
    "prompt" TEXT,
    "numBeams" INTEGER,
    "maxNewTokens" INTEGER,
    "minNewTokens" INTEGER,
    "targetWords" INTEGER,
    "lengthPenalty" REAL,
    "earlyStopping" TEXT,
    "noRepeatNgramSize" INTEGER,
    "repetitionPenalty" REAL,
    "imageSplitting" BOOLEAN,
    "promptTokens" INTEGER,
    "imageTokens" INTEGER,
    "generatedTokens" INTEGER,
    "generatedTokenIds" TEXT,
    "sequenceScore" REAL,
    "timings" TEXT,
    "finishReason" TEXT,
    "trimmed" BOOLEAN NOT NULL DEFAULT false,
    CONSTRAINT "Description_artworkId_fkey" FOREIGN KEY ("artworkId") REFERENCES "Artwork" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "Description_imageId_fkey" FOREIGN KEY ("imageId") REFERENCES "Image" ("id") ON DELETE SET NULL ON UPDATE CASCADE,
    CONSTRAINT "Description_jobId_fkey" FOREIGN KEY ("jobId") REFERENCES "Job" ("id") ON DELETE SET NULL ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "Job" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "kind" TEXT NOT NULL DEFAULT 'describe',
    "status" TEXT NOT NULL DEFAULT 'QUEUED',
    "priority" INTEGER NOT NULL DEFAULT 0,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "maxAttempts" INTEGER NOT NULL DEFAULT 3,
    "runAfter" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "holder" TEXT,
    "heartbeatAt" DATETIME,
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
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL,
    "startedAt" DATETIME,
    "finishedAt" DATETIME,
    CONSTRAINT "Job_artworkId_fkey" FOREIGN KEY ("artworkId") REFERENCES "Artwork" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "Job_imageId_fkey" FOREIGN KEY ("imageId") REFERENCES "Image" ("id") ON DELETE SET NULL ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "SyncRun" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "status" TEXT NOT NULL DEFAULT 'RUNNING',
    "trigger" TEXT NOT NULL DEFAULT 'manual',
    "full" BOOLEAN NOT NULL DEFAULT false,
    "creators" TEXT NOT NULL DEFAULT '[]',
    "holder" TEXT,
    "startedAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finishedAt" DATETIME,
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
    "error" TEXT
);

-- CreateTable
CREATE TABLE "SyncFailure" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "syncRunId" INTEGER NOT NULL,
    "stage" TEXT NOT NULL,
    "itemQid" TEXT,
    "fileTitle" TEXT,
    "reason" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "SyncFailure_syncRunId_fkey" FOREIGN KEY ("syncRunId") REFERENCES "SyncRun" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "Lease" (
    "name" TEXT NOT NULL PRIMARY KEY,
    "holder" TEXT NOT NULL,
    "expiresAt" DATETIME NOT NULL,
    "acquiredAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- CreateTable
CREATE TABLE "Heartbeat" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "role" TEXT NOT NULL,
    "pid" INTEGER NOT NULL,
    "hostname" TEXT NOT NULL,
    "startedAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "beatAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "modelStatus" TEXT,
    "modelError" TEXT,
    "modelId" TEXT,
    "modelRevision" TEXT,
    "dtypes" TEXT,
    "device" TEXT
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
CREATE INDEX "Job_status_priority_runAfter_idx" ON "Job"("status", "priority", "runAfter");

-- CreateIndex
CREATE INDEX "Job_dedupeKey_status_idx" ON "Job"("dedupeKey", "status");

-- CreateIndex
CREATE INDEX "Job_artworkId_idx" ON "Job"("artworkId");

-- CreateIndex
CREATE INDEX "SyncRun_startedAt_idx" ON "SyncRun"("startedAt");

-- CreateIndex
CREATE INDEX "SyncFailure_syncRunId_idx" ON "SyncFailure"("syncRunId");

