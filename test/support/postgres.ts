import { execFileSync } from "node:child_process";
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { userInfo } from "node:os";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

/**
 * A throwaway PostgreSQL server (Debian's postgresql-15, `apt-get install postgresql-15`; .ci/run
 * installs it) for one test file: its own data folder, listening only on a Unix socket in a
 * private folder (no TCP port, so nothing can race for one), trust authentication, durability off.
 * Start it in beforeAll and stop it in afterAll; `createDatabase()` gives each test its own database.
 */
export interface TestPostgres {
  /** postgresql:// URL of the maintenance database `postgres`. */
  url: string;
  /** Creates an empty database and returns its postgresql:// URL. */
  createDatabase(): Promise<string>;
  stop(): void;
}

const PG_ROOT = "/usr/lib/postgresql";

function binDir(): string {
  const versions = existsSync(PG_ROOT) ? readdirSync(PG_ROOT).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : [];
  const found = versions.map((v) => join(PG_ROOT, v, "bin")).find((dir) => existsSync(join(dir, "initdb")));
  if (!found) throw new Error(`no PostgreSQL server under ${PG_ROOT}: apt-get install postgresql-15`);
  return found;
}

/** initdb and the server refuse to run as root: run them as the `postgres` user the package creates. */
function asServerUser(): { run: (cmd: string, args: string[]) => void; owner: number | null } {
  if (process.getuid?.() !== 0) return { run: (cmd, args) => execFileSync(cmd, args, { stdio: "pipe" }), owner: null };
  const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
  return { run: (cmd, args) => execFileSync("runuser", ["-u", "postgres", "--", cmd, ...args], { stdio: "pipe", cwd: "/" }), owner: uid };
}

export async function startPostgres(): Promise<TestPostgres> {
  const bin = binDir();
  const { run, owner } = asServerUser();
  const root = mkdtempSync(join(tmpdir(), "artdesc-pg-"));
  const data = join(root, "data");
  const socket = join(root, "socket");
  mkdirSync(data);
  mkdirSync(socket);
  if (owner !== null) for (const dir of [root, data, socket]) chownSync(dir, owner, -1);
  const user = owner === null ? userInfo().username : "postgres";
  try {
    run(join(bin, "initdb"), ["-D", data, "-A", "trust", "-U", user, "--no-sync", "-E", "UTF8", "--locale", "C"]);
    // A throwaway cluster: durability off. The port only names the socket file in our private folder.
    const options = `-p 5432 -k ${socket} -c listen_addresses= -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
    run(join(bin, "pg_ctl"), ["-D", data, "-l", join(root, "server.log"), "-w", "-t", "60", "-o", options, "start"]);
  } catch (err) {
    rmSync(root, { recursive: true, force: true });
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? "";
    throw new Error(`could not start PostgreSQL in ${root}: ${stderr || (err as Error).message}`);
  }
  const urlOf = (database: string) => `postgresql://${user}@localhost/${database}?host=${encodeURIComponent(socket)}`;
  let next = 0;
  return {
    url: urlOf("postgres"),
    async createDatabase() {
      const name = `test_${process.pid}_${next++}`;
      const client = new pg.Client({ connectionString: urlOf("postgres") });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE "${name}"`);
      } finally {
        await client.end();
      }
      return urlOf(name);
    },
    stop() {
      try {
        run(join(bin, "pg_ctl"), ["-D", data, "-m", "immediate", "-w", "stop"]);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    },
  };
}
