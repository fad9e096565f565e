import { defineConfig } from "prisma/config";
import { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3";
import { PrismaPg } from "@prisma/adapter-pg";

// Prisma's CLI reads this file, not src/config.ts; it needs only the database URL. A postgresql://
// (or postgres://) URL selects the PostgreSQL schema, generated from prisma/schema.prisma by
// `npm run db:schemas`; anything else is a SQLite file. `prisma migrate deploy` does not work on
// PostgreSQL with adapter-pg 6.19 (prisma/orm#27403): `artdesc migrate` applies those migrations.
process.env.DATABASE_URL ??= "file:./data/artdesc.db";
const url = process.env.DATABASE_URL;
const postgres = /^postgres(ql)?:\/\//i.test(url);

export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: postgres ? "prisma/postgresql/schema.prisma" : "prisma/schema.prisma",
  async adapter() {
    return postgres ? new PrismaPg({ connectionString: url }) : new PrismaBetterSQLite3({ url });
  },
});
