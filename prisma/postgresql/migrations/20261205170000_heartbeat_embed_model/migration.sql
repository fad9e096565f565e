-- AlterTable
ALTER TABLE "Heartbeat" ADD COLUMN     "embedModelId" TEXT;

