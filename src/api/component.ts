import cluster from "node:cluster";
import { ConfigError } from "../config.js";
import { meaningSource } from "../embed/embedder.js";
import { ConnectionBalancer, serveHandedConnections } from "./balancer.js";
import { createMetricsRegistry, metricsRoute } from "../ops/metrics.js";
import type { Component, Runtime } from "../runtime.js";
import { createHttpApp, listen, type RouteHandler } from "../server.js";

/**
 * The HTTP API in this process: listening on PORT, or, in a process forked by startApiService,
 * serving the connections its primary hands over.
 */
export async function startApi(rt: Runtime, extraRoutes: RouteHandler[] = []): Promise<Component & { url: string }> {
  const metrics = metricsRoute(createMetricsRegistry(rt.db));
  const { server, drain } = createHttpApp({ db: rt.db, config: rt.config, log: rt.log }, [metrics, ...extraRoutes]);
  let stopHandOver = () => {};
  // A forked process's address is its primary's (which logs it).
  let url = shownUrl(rt.config.HOST, rt.config.PORT);
  if (cluster.isWorker) stopHandOver = serveHandedConnections(server, rt.log);
  else {
    const { port, host } = await listen(server, rt.config.PORT, rt.config.HOST).catch((err: unknown) => {
      throw listenFailure(rt.config.HOST, rt.config.PORT, err) ?? err;
    });
    url = shownUrl(host, port);
    rt.log.info({ url: `${url}/graphql` }, "API listening");
  }
  // The query embedding thread loads now (when a model is installed), not on the first search.
  const meaning = meaningSource(rt.config);
  meaning.warm().catch((err: unknown) => rt.log.error({ err }, "the embedding model did not load: searches run by words only"));
  return {
    name: "api",
    url,
    stop: async () => {
      stopHandOver();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        // Server-sent event streams stay open: end them after a short grace.
        setTimeout(() => server.closeAllConnections(), 2_000).unref();
      });
      // Requests cut off by closing their connections may still be executing: the database (closed
      // after this) and the query embedder stay until they finish, at most one GraphQL timeout.
      await drain(rt.config.GRAPHQL_TIMEOUT_MS + 1_000);
      await meaning.close();
    },
  };
}

const shownUrl = (host: string, port: number) => `http://${host === "0.0.0.0" || host === "::" ? "localhost" : host}:${port}`;

/**
 * Each forked API process's V8 young generation may grow to this many MB per semi-space (V8's own
 * limit is 16). A search allocates its rows and lists, garbage a moment later: with more room they
 * die young instead of being copied and promoted, which took HYBRID search's tail under load down
 * (BENCHMARKS.md, "Young generation"). The room is used only by a process that allocates that fast.
 */
export const API_SEMI_SPACE_MB = 64;

/** The forked API processes' Node flags: this process's, plus API_SEMI_SPACE_MB unless the flags or NODE_OPTIONS set a semi-space size already. */
export function apiProcessExecArgv(execArgv: readonly string[], nodeOptions = ""): string[] {
  const set = [...execArgv, ...nodeOptions.split(/\s+/)].some((a) => /^--max[-_]semi[-_]space[-_]size(=|$)/.test(a));
  return set ? [...execArgv] : [...execArgv, `--max-semi-space-size=${API_SEMI_SPACE_MB}`];
}

/**
 * The API as the service runs it: in this process when API_WORKERS is 1, else in API_WORKERS
 * forked processes (node:cluster), which lets the API use every core. This process then listens
 * and hands each connection to the API process with the fewest open ones (balancer.ts). The forked
 * processes run the same command; `isApiWorkerProcess()` tells them to serve the API only.
 */
export async function startApiService(rt: Runtime, extraRoutes: RouteHandler[] = []): Promise<Component> {
  if (rt.config.API_WORKERS <= 1 || cluster.isWorker) return startApi(rt, extraRoutes);
  // Listening before forking: a HOST or PORT that cannot be used is refused here, once.
  const balancer = await ConnectionBalancer.listen(rt.config.PORT, rt.config.HOST, rt.log).catch((err: unknown) => {
    throw listenFailure(rt.config.HOST, rt.config.PORT, err) ?? err;
  });
  cluster.setupPrimary({ execArgv: apiProcessExecArgv(process.execArgv, process.env.NODE_OPTIONS) });
  const fork = () => {
    const worker = cluster.fork();
    balancer.add(worker);
    return worker;
  };
  const workers = Array.from({ length: rt.config.API_WORKERS }, fork);
  let stopping = false;
  // The service's stop starts with the signal, but this component stops last (after the worker's
  // grace period): a forked process that ends meanwhile (a terminal's Ctrl-C reaches it too) is
  // not replaced.
  const onSignal = () => (stopping = true);
  process.once("SIGTERM", onSignal).once("SIGINT", onSignal);
  const deaths: number[] = [];
  cluster.on("exit", (worker, code, signal) => {
    if (stopping) return;
    const now = Date.now();
    deaths.push(now);
    while (deaths[0]! < now - 60_000) deaths.shift();
    const waitMs = restartDelayMs(deaths.length);
    rt.log.error({ pid: worker.process.pid, code, signal, restartInMs: waitMs }, "API worker died; starting another");
    const replace = () => {
      if (!stopping) workers.splice(workers.indexOf(worker), 1, fork());
    };
    if (waitMs) setTimeout(replace, waitMs).unref();
    else replace();
  });
  rt.log.info({ workers: workers.length, port: balancer.port }, "API workers started");
  rt.log.info({ url: `${shownUrl(rt.config.HOST, balancer.port)}/graphql` }, "API listening");
  return {
    name: "api",
    stop: async () => {
      stopping = true;
      process.off("SIGTERM", onSignal).off("SIGINT", onSignal);
      await balancer.close();
      // Each stops as `serve` does (its requests drain for at most GRAPHQL_TIMEOUT_MS); one that
      // has not exited some seconds after that is killed, so the service's stop always ends.
      const deadlineMs = rt.config.GRAPHQL_TIMEOUT_MS + 10_000;
      await Promise.all(
        workers.map(
          (w) =>
            new Promise<void>((resolve) => {
              if (w.isDead()) return resolve();
              const kill = setTimeout(() => {
                rt.log.warn({ pid: w.process.pid, deadlineMs }, "API worker did not stop in time: killing it");
                w.process.kill("SIGKILL");
              }, deadlineMs);
              w.once("exit", () => {
                clearTimeout(kill);
                resolve();
              });
              w.process.kill("SIGTERM");
            }),
        ),
      );
    },
  };
}

/**
 * How long to wait before replacing a forked API process, given how many died in the last minute:
 * at once for the first two; then 0.5 s doubling to 30 s, so that a process that dies as it starts
 * (a broken install, a full disk) is not forked in a tight loop that starves the rest.
 */
export function restartDelayMs(deathsInLastMinute: number): number {
  return deathsInLastMinute <= 2 ? 0 : Math.min(30_000, 500 * 2 ** (deathsInLastMinute - 3));
}

/** True in a process forked by startApiService: it serves the API and nothing else. */
export function isApiWorkerProcess(): boolean {
  return cluster.isWorker;
}

/** Why listening failed, as a ConfigError naming HOST or PORT, or null for other failures. */
function listenFailure(host: string, port: number, err: unknown): ConfigError | null {
  const code = (err as { code?: unknown })?.code;
  switch (code) {
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EAI_FAIL":
    case "EAI_NONAME":
      return new ConfigError([`HOST=${JSON.stringify(host)}: does not resolve to an address (${code})`]);
    case "EADDRNOTAVAIL":
      return new ConfigError([`HOST=${JSON.stringify(host)}: not an address of this machine (${code})`]);
    case "EADDRINUSE":
      return new ConfigError([`PORT=${port}: already in use on ${host} (${code}): another process listens there (another artdesc start or serve?); stop it, or set PORT to a free port`]);
    case "EACCES":
      return new ConfigError([`PORT=${port}: not allowed to listen on it (${code}); use a port above 1023 or grant the capability`]);
    default:
      return null;
  }
}
