import { PrismaPg } from "@prisma/adapter-pg";
import { QueryCompiler } from "@prisma/client/runtime/query_compiler_bg.postgresql.mjs";
import { type Db, type DbOptions, transactionWaits, withQueryLog } from "../db.js";
import { PrismaClient } from "../generated/prisma-postgresql/client.js";
import { usePlainPrismaPromises } from "./prisma-promises.js";
import { keepQueryPlans } from "./query-plans.js";

keepQueryPlans(QueryCompiler);

/**
 * A Prisma client over node-postgres (a pool) for a `postgresql://` URL, generated from
 * prisma/postgresql/schema.prisma (made from prisma/schema.prisma by `npm run db:schemas`).
 *
 * The two generated clients have the same models, fields and methods; they differ only in
 * provider-specific extras that the code does not use (PostgreSQL's `mode: "insensitive"`), so the
 * PostgreSQL client is handed out as the one `Db` type the rest of the code is written against.
 * Raw SQL is not portable: code that runs `$queryRaw`/`$executeRaw` or uses `readConnection` needs
 * a PostgreSQL version of its statement before it can run on this client.
 */
export async function createPostgresClient(databaseUrl: string, options: DbOptions): Promise<Db> {
  const adapter = new PrismaPg({
    connectionString: databaseUrl,
    // How long a query waits for a free pooled connection, and for a lock held by another session.
    connectionTimeoutMillis: options.busyTimeoutMs ?? 15_000,
    // Each process has its own pool: their sum must stay under the server's max_connections.
    max: options.poolSize ?? 10,
    options: `-c lock_timeout=${options.busyTimeoutMs ?? 15_000}`,
  });
  const db = withQueryLog(options.onQuery, (log) => new PrismaClient({ adapter, log, transactionOptions: transactionWaits(options.busyTimeoutMs) }));
  usePlainPrismaPromises(db);
  // Connects now, so a wrong URL fails here and not at the first request.
  await db.$connect();
  await db.$queryRawUnsafe("SELECT 1");
  return db as unknown as Db;
}
