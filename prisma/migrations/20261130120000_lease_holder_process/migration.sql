-- The lease records its holder's process (hostname, pid, boot id, pid namespace, start time), so a
-- lease held by a process that died on this host is taken over at once. The table is rebuilt
-- rather than altered so that its definition reads exactly as the schema's (no foreign keys point
-- at it, and its rows are short-lived claims).
CREATE TABLE "new_Lease" (
    "name" TEXT NOT NULL PRIMARY KEY,
    "holder" TEXT NOT NULL,
    "expiresAt" DATETIME NOT NULL,
    "acquiredAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "hostname" TEXT,
    "pid" INTEGER,
    "bootId" TEXT,
    "pidNamespace" TEXT,
    "startTicks" BIGINT
);
INSERT INTO "new_Lease" ("name", "holder", "expiresAt", "acquiredAt") SELECT "name", "holder", "expiresAt", "acquiredAt" FROM "Lease";
DROP TABLE "Lease";
ALTER TABLE "new_Lease" RENAME TO "Lease";
