-- AlterTable
ALTER TABLE "Job" ADD COLUMN     "forceOverId" INTEGER;

