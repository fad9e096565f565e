import pino from "pino";
import type { Config } from "../config.js";
import type { Db } from "../db.js";
import { openDescriber } from "../describe/describer.js";
import { startWorker } from "../jobs/worker.js";
import type { Component } from "../runtime.js";

/**
 * The worker `artdesc experiment` runs in its own process when no other runs (or with --run): the
 * ordinary describe worker with the real engine, claiming this experiment's jobs only. It logs to
 * stderr, since stdout carries the report. Loaded only by the commands that run it (it pulls in
 * onnxruntime).
 */
export function startExperimentWorker(db: Db, config: Config, experimentId: number): Promise<Component> {
  const log = pino({ name: "artdesc", level: config.LOG_LEVEL, base: { pid: process.pid } }, pino.destination(2));
  return startWorker({ db, config, log, role: "experiment", openDescriber: () => openDescriber(config), experimentId });
}
