-- DropIndex
DROP INDEX "Artwork_state_inception_qidNumber_idx";

-- CreateIndex
CREATE INDEX "Artwork_state_inceptionYear_inception_qidNumber_idx" ON "Artwork"("state", "inceptionYear", "inception", "qidNumber");

