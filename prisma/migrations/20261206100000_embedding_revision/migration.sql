-- AlterTable
ALTER TABLE "ArtworkEmbedding" ADD COLUMN "modelRevision" TEXT;
