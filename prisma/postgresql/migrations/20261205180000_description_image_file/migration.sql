-- AlterTable
ALTER TABLE "Description" ADD COLUMN     "imageFile" TEXT;


-- The file of every description whose Image row is still there.
UPDATE "Description" d SET "imageFile" = i."fileTitle" FROM "Image" i WHERE i."id" = d."imageId";
