/**
 * npm run bench:cli — how long an `artdesc` command takes from start to exit, and the CPU it uses:
 * `artdesc --help`, and `artdesc status --check`, which docker-compose.yml runs every minute as
 * the daemon's and the workers' health check, beside a busy describe worker. Each runs the
 * launcher users run (bin/artdesc.js, with its restart under the malloc settings) BENCH_RUNS (7)
 * times against a migrated, empty SQLite store; the median and the range are printed. CPU is the
 * children's user plus system time (Linux: /proc/self/stat). Target: status --check under 1 s
 * (it loads the database client, and neither the API, the sync nor the models).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { migrate } from "../src/store/migrate.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const TARGET_S = 1;
const TICKS_PER_S = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout?.trim()) || 100;

/** CPU seconds used so far by this process's waited-for children (cutime + cstime), or null off Linux. */
function childCpuS(): number | null {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[13]) + Number(f[14])) / TICKS_PER_S;
  } catch {
    return null;
  }
}

const dir = mkdtempSync(join(tmpdir(), "artdesc-cli-bench-"));
try {
  const file = join(dir, "a.db");
  migrate(file);
  const env = { ...process.env, DATABASE_URL: `file:${file}`, MODEL_DIR: join(dir, "models"), LOG_LEVEL: "warn" };
  const spread = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return `median ${s[Math.floor(s.length / 2)]!.toFixed(2)} s (${s[0]!.toFixed(2)}–${s.at(-1)!.toFixed(2)})`;
  };
  let met = true;
  for (const args of [["--help"], ["status", "--check"]]) {
    const wall: number[] = [];
    const cpu: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const c0 = childCpuS();
      const started = performance.now();
      const r = spawnSync(process.execPath, ["bin/artdesc.js", ...args], { env, encoding: "utf8" });
      wall.push((performance.now() - started) / 1000);
      const c1 = childCpuS();
      if (c0 !== null && c1 !== null) cpu.push(c1 - c0);
      // status --check exits 1 here (no process ever beat); anything else is a failure of the command.
      if (r.status !== 0 && !(args[0] === "status" && r.status === 1 && /no heartbeat recorded/.test(r.stderr))) {
        throw new Error(`artdesc ${args.join(" ")} exited ${r.status}:\n${r.stderr}`);
      }
    }
    console.log(`artdesc ${args.join(" ")}: ${RUNS} runs, start to exit ${spread(wall)}${cpu.length ? `; CPU ${spread(cpu)}` : ""}`);
    if (args[0] === "status") met = [...wall].sort((a, b) => a - b)[Math.floor(wall.length / 2)]! < TARGET_S;
  }
  console.log(met ? `OK: status --check under ${TARGET_S} s (median)` : `MISSED: status --check median over ${TARGET_S} s`);
  process.exitCode = met ? 0 : 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
