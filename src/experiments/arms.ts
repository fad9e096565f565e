import { checkRequested, decodeJobParams, encodeJobParams, type GenerationParams, ParamOutOfRangeError, type RequestedParams } from "../generation/params.js";
import { formatStep, ParamPairsError, parseParamPairs } from "../review/ladder.js";

/**
 * The arms of an experiment: named parameter sets, each checked against the generation
 * vocabulary (src/generation/params.ts). An arm is written as
 *  - `name=value` pairs separated by commas, as REVIEW_FALLBACK_LADDER steps are ("numBeams=4,maxNewTokens=256");
 *  - a JSON object of parameters, which may also carry a prompt ('{"prompt": "Describe…", "numBeams": 1}');
 *  - "defaults" (or nothing): the configured DESCRIBE_* defaults.
 * Parameters an arm leaves unset take the worker's configured defaults when its jobs run.
 *
 * Pure: no environment, no database.
 */

export interface Arm {
  name: string;
  params: RequestedParams;
}

/** An arm as the user wrote it: its name and its parameter text. */
export interface ArmText {
  name: string;
  text: string;
}

export const MIN_ARMS = 2;
export const MAX_ARMS = 8;
/** Arm names: a letter, then letters, digits, "-" or "_"; they label report columns and jobs. */
export const ARM_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;

/** An arm (or the set of arms) cannot be used; `problem` names the arm and says why. */
export class ArmError extends Error {
  override name = "ArmError";
  constructor(readonly problem: string) {
    super(problem);
  }
}

/** One arm's parameters from its text; throws ArmError naming the arm. */
export function parseArm(arm: ArmText, defaults: GenerationParams): Arm {
  const where = `arm ${JSON.stringify(arm.name.length > 40 ? `${arm.name.slice(0, 40)}…` : arm.name)}`;
  if (!ARM_NAME.test(arm.name)) throw new ArmError(`${where}: a name is a letter, then up to 31 letters, digits, "-" or "_"`);
  const text = arm.text.trim();
  let requested: unknown;
  if (text === "" || text.toLowerCase() === "defaults") requested = {};
  else if (text.startsWith("{") || text.startsWith("[")) {
    try {
      requested = JSON.parse(text);
    } catch {
      throw new ArmError(`${where}: not a JSON object`);
    }
    if (requested === null || typeof requested !== "object" || Array.isArray(requested)) throw new ArmError(`${where}: not a JSON object`);
  } else {
    try {
      requested = parseParamPairs(text);
    } catch (err) {
      if (err instanceof ParamPairsError) throw new ArmError(`${where}: ${err.problem}`);
      throw err;
    }
  }
  try {
    // The whole set against the defaults that apply: minNewTokens may not exceed maxNewTokens.
    return { name: arm.name, params: checkRequested(requested, defaults) };
  } catch (err) {
    if (err instanceof ParamOutOfRangeError) throw new ArmError(`${where}: ${err.message}`);
    throw err;
  }
}

/** Every arm, checked one by one and as a set (count, unique names). Throws ArmError. */
export function parseArms(arms: ArmText[], defaults: GenerationParams): Arm[] {
  if (arms.length < MIN_ARMS) throw new ArmError(`an experiment compares at least ${MIN_ARMS} arms (got ${arms.length}): give --a and --b, or --arm twice`);
  if (arms.length > MAX_ARMS) throw new ArmError(`an experiment has at most ${MAX_ARMS} arms (got ${arms.length})`);
  const seen = new Set<string>();
  for (const { name } of arms) {
    if (seen.has(name.toLowerCase())) throw new ArmError(`arm ${JSON.stringify(name)} is given twice`);
    seen.add(name.toLowerCase());
  }
  return arms.map((a) => parseArm(a, defaults));
}

/**
 * `--arm name:params` as the CLI takes it ("greedy:numBeams=1"); the name ends at the first ":".
 * Throws ArmError for a text without a name.
 */
export function splitArmOption(text: string): ArmText {
  const colon = text.indexOf(":");
  if (colon <= 0) throw new ArmError(`--arm ${JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…` : text)}: write name:parameters, e.g. greedy:numBeams=1`);
  return { name: text.slice(0, colon).trim(), text: text.slice(colon + 1) };
}

/** An arm's parameters as the ladder syntax writes them ("numBeams=4"), "defaults" when none; a prompt is shown quoted. */
export function formatArm(params: RequestedParams): string {
  const { prompt, ...rest } = params;
  const pairs = formatStep(rest);
  const parts = [pairs, prompt !== undefined ? `prompt=${JSON.stringify(prompt.length > 60 ? `${prompt.slice(0, 60)}…` : prompt)}` : ""].filter(Boolean);
  return parts.length ? parts.join(",") : "defaults";
}

/** The arms as stored in Experiment.arms: [{ name, params }] with params in Job.params form. */
export function encodeArms(arms: Arm[]): string {
  return JSON.stringify(arms.map((a) => ({ name: a.name, params: JSON.parse(encodeJobParams(a.params)) as unknown })));
}

/** Experiment.arms as written by encodeArms. A row this version cannot read is a bug: it throws. */
export function decodeArms(json: string): Arm[] {
  const raw = JSON.parse(json) as { name: string; params: unknown }[];
  return raw.map((a) => ({ name: a.name, params: decodeJobParams(JSON.stringify(a.params)) }));
}
