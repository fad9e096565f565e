-- Reproduction data of each model description (`artdesc describe --like`): the exact templated
-- instruction, the markdown-cleanup flag, the decoding strategy, the batch size, the image's hash
-- and the model files' hashes. Columns are added, not the table rebuilt (see the quality_signals
-- migration for why); the schema lists them last and in this order.

-- AlterTable
ALTER TABLE "Description" ADD COLUMN "instruction" TEXT;
ALTER TABLE "Description" ADD COLUMN "cleanMarkdown" BOOLEAN;
ALTER TABLE "Description" ADD COLUMN "decoding" TEXT;
ALTER TABLE "Description" ADD COLUMN "batchSize" INTEGER;
ALTER TABLE "Description" ADD COLUMN "imageHash" TEXT;
ALTER TABLE "Description" ADD COLUMN "modelFiles" TEXT;
