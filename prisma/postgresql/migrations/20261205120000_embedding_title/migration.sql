-- AlterTable
ALTER TABLE "ArtworkEmbedding" ADD COLUMN     "title" TEXT;

