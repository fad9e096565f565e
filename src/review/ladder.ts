import {
  checkRequested,
  encodeJobParams,
  type GenerationParams,
  PARAM_NAMES,
  type ParamName,
  ParamOutOfRangeError,
  parseParamText,
  type RequestedParams,
} from "../generation/params.js";

/**
 * The fallback ladder (REVIEW_FALLBACK_LADDER): the parameter sets tried, in order, after a person
 * rejects the current model description. Steps are separated by ";", a step's parameters by ",",
 * each `name=value` as `artdesc describe` flags take them and checked against the same ranges
 * (src/generation/params.ts). A step sets only what it names; the rest take the configured
 * defaults. "none" is an empty ladder: a rejection at once marks the work as needing a person.
 *
 * Pure: no environment, no database.
 */
export type FallbackLadder = RequestedParams[];

/**
 * More beams first (a wider search often fixes a wrong noun), then the image in 512 px tiles plus
 * a global view (more of the picture's detail reaches the model), then a repetition penalty and a
 * ban on repeated trigrams (the loops small models fall into).
 */
export const DEFAULT_FALLBACK_LADDER = "numBeams=8;numBeams=8,imageSplitting=true;numBeams=8,imageSplitting=true,repetitionPenalty=1.2,noRepeatNgramSize=3";

/** Most steps a ladder may have: each is one more model run for one rejected text. */
export const MAX_LADDER_STEPS = 10;

/** A ladder text that cannot be used; `problem` says where and why ("step 2: numBeams must be …"). */
export class LadderError extends Error {
  override name = "LadderError";
  constructor(readonly problem: string) {
    super(problem);
  }
}

/** A `name=value,name=value` text that cannot be read; `problem` says why, naming the pair. */
export class ParamPairsError extends Error {
  override name = "ParamPairsError";
  constructor(readonly problem: string) {
    super(problem);
  }
}

/**
 * Parameters written as `name=value` pairs separated by ",", each value as `artdesc describe`
 * flags take it and checked against its range (the ladder's step syntax, also used by experiment
 * arms). The prompt cannot be written so (it holds commas). Throws ParamPairsError.
 */
export function parseParamPairs(text: string): RequestedParams {
  const step: Record<string, unknown> = {};
  const pairs = text.split(",").map((p) => p.trim());
  if (pairs.every((p) => p === "")) throw new ParamPairsError("no parameters given");
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new ParamPairsError(`"${pair}" is not name=value`);
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    if (!(PARAM_NAMES as string[]).includes(name)) {
      throw new ParamPairsError(`"${name}" is not a generation parameter (use ${PARAM_NAMES.filter((n) => n !== "prompt").join(", ")})`);
    }
    // A prompt holds commas and semicolons (DESCRIBE_PROMPT sets it).
    if (name === "prompt") throw new ParamPairsError("the prompt cannot be set as name=value");
    if (name in step) throw new ParamPairsError(`${name} is given twice`);
    try {
      step[name] = parseParamText(name as ParamName, value);
    } catch (err) {
      if (err instanceof ParamOutOfRangeError) throw new ParamPairsError(err.message);
      throw err;
    }
  }
  return step as RequestedParams;
}

function parseStep(text: string, index: number): RequestedParams {
  const where = `step ${index + 1}`;
  if (text.split(",").every((p) => p.trim() === "")) throw new LadderError(`${where} is empty`);
  try {
    return parseParamPairs(text);
  } catch (err) {
    if (err instanceof ParamPairsError) throw new LadderError(`${where}: ${err.problem}`);
    throw err;
  }
}

/** Parses a ladder text; throws LadderError naming the first bad step. */
export function parseLadder(text: string): FallbackLadder {
  const trimmed = text.trim();
  if (trimmed.toLowerCase() === "none") return [];
  const steps = trimmed.split(";").map(parseStep);
  if (steps.length > MAX_LADDER_STEPS) throw new LadderError(`has ${steps.length} steps; at most ${MAX_LADDER_STEPS}`);
  return steps;
}

/** Problems of each step over the configured defaults as a whole (minNewTokens above maxNewTokens). */
export function ladderProblems(ladder: FallbackLadder, defaults: GenerationParams): string[] {
  const problems: string[] = [];
  ladder.forEach((step, i) => {
    try {
      checkRequested(step, defaults);
    } catch (err) {
      if (err instanceof ParamOutOfRangeError) problems.push(`step ${i + 1}: ${err.message}`);
      else throw err;
    }
  });
  return problems;
}

/** A step as the ladder syntax writes it, keys sorted ("numBeams=8,repetitionPenalty=1.2"); "" for none. */
export function formatStep(step: RequestedParams): string {
  return Object.entries(JSON.parse(encodeJobParams(step)) as Record<string, unknown>)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(",");
}

/** "fallback 2/3 after rejection": the reason recorded on a ladder step's job. */
export function fallbackReason(step: number, steps: number): string {
  return `fallback ${step}/${steps} after rejection`;
}
