-- The review queue's page (src/review/queue.ts, queuePageSql) orders by "qualityRisk" DESC NULLS
-- LAST, id ASC among descriptions not yet reviewed. On SQLite the index
-- Description(reviewState, qualityRisk) serves that order (NULL sorts below every number there);
-- PostgreSQL sorts NULL above, orders equal keys by row position rather than id, and does not take
-- `"reviewState" IS NULL` as fixing the index's first column, so without this partial index every
-- page sorts the whole queue. Backwards, it serves the inverted pages. schema.prisma cannot describe
-- NULLS LAST or a partial index: raw SQL.
CREATE INDEX "Description_review_queue_idx" ON "Description" ("qualityRisk" DESC NULLS LAST, "id") WHERE "reviewState" IS NULL;
