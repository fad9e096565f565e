-- CreateTable
CREATE TABLE "ArtworkEmbedding" (
    "artworkId" INTEGER NOT NULL,
    "modelId" TEXT NOT NULL,
    "descriptionId" INTEGER NOT NULL,
    "textHash" TEXT NOT NULL,
    "dims" INTEGER NOT NULL,
    "vector" BYTEA NOT NULL,
    "embeddedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ArtworkEmbedding_pkey" PRIMARY KEY ("artworkId")
);

-- CreateIndex
CREATE INDEX "ArtworkEmbedding_embeddedAt_idx" ON "ArtworkEmbedding"("embeddedAt");

-- AddForeignKey
ALTER TABLE "ArtworkEmbedding" ADD CONSTRAINT "ArtworkEmbedding_artworkId_fkey" FOREIGN KEY ("artworkId") REFERENCES "Artwork"("id") ON DELETE CASCADE ON UPDATE CASCADE;

