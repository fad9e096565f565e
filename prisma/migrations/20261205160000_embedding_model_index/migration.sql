-- CreateIndex
CREATE INDEX "ArtworkEmbedding_modelId_dims_embeddedAt_idx" ON "ArtworkEmbedding"("modelId", "dims", "embeddedAt");
