-- AlterTable
ALTER TABLE "Description" ADD COLUMN "imageFile" TEXT;

-- The file of every description whose Image row is still there.
UPDATE "Description" SET "imageFile" = (SELECT "fileTitle" FROM "Image" WHERE "Image"."id" = "Description"."imageId") WHERE "imageId" IS NOT NULL;
