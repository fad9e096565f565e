import {
  earlyStoppingText,
  type GenerationParams,
  PARAM_NAMES,
  PARAMS,
  ParamOutOfRangeError,
  type ParamSpec,
  rangeDescription,
} from "../../generation/params.js";
import { inputLimit, RESOLVER_CHECKED } from "../limits/input-limits.js";
import { builder } from "../builder.js";
import { ErrorInterface } from "./errors.js";

/**
 * The generation parameters' GraphQL types, generated from src/generation/params.ts: the input
 * (GenerationParamsInput, every field optional and checked by the resolver against the same table),
 * the settings a job or the defaults use (GenerationSettings), and the typed range error.
 */

builder.objectType(ParamOutOfRangeError, {
  name: "ParameterOutOfRangeError",
  description: "A generation parameter is outside its allowed range.",
  interfaces: [ErrorInterface],
  isTypeOf: (v) => v instanceof ParamOutOfRangeError,
  fields: (t) => ({ field: t.exposeString("field") }),
});

export const EarlyStoppingEnum = builder.enumType("EarlyStoppingMode", {
  description: "Hugging Face early_stopping: TRUE stops when num_beams beams finished, FALSE uses a heuristic, NEVER runs the canonical search.",
  values: { TRUE: { value: "true" }, FALSE: { value: "false" }, NEVER: { value: "never" } } as const,
});

/** The description of earlyStoppingMode, beside the earlyStopping text that settings have always given. */
export const EARLY_STOPPING_MODE = "earlyStopping as GenerationParamsInput takes it, so that settings read back can be sent again as they are.";

const described = (spec: ParamSpec) => {
  const description = rangeDescription(spec);
  return description === null ? {} : { description };
};

export const GenerationParamsInput = builder.inputType("GenerationParamsInput", {
  description: "Generation parameters; unset ones take the configured defaults (see generationDefaults).",
  fields: (t) =>
    Object.fromEntries(
      PARAM_NAMES.map((name) => {
        const spec = PARAMS[name];
        switch (spec.kind) {
          case "int":
            return [name, t.int(described(spec))];
          case "float":
            return [name, t.float(described(spec))];
          case "boolean":
            return [name, t.boolean(described(spec))];
          case "earlyStopping":
            return [name, t.field({ type: EarlyStoppingEnum, ...described(spec) })];
          case "text":
            // Length and content are checked with the other parameters, answered as ParameterOutOfRangeError.
            return [name, t.string({ ...described(spec), extensions: inputLimit(RESOLVER_CHECKED) })];
        }
      }),
    ),
});

export const GenerationSettings = builder.objectRef<GenerationParams>("GenerationSettings").implement({
  description: "Generation parameters (names follow Hugging Face generate()).",
  fields: (t) => ({
    ...Object.fromEntries(
      PARAM_NAMES.map((name) => {
        const spec = PARAMS[name];
        const description = spec.doc.charAt(0).toUpperCase() + spec.doc.slice(1) + ".";
        switch (spec.kind) {
          case "int":
            return [name, t.exposeInt(name as "numBeams", { description })];
          case "float":
            return [name, t.exposeFloat(name as "lengthPenalty", { description })];
          case "boolean":
            return [name, t.exposeBoolean(name as "imageSplitting", { description })];
          case "text":
            return [name, t.exposeString(name as "prompt", { description })];
          case "earlyStopping":
            return [name, t.string({ description: '"true", "false" or "never".', resolve: (p) => earlyStoppingText(p.earlyStopping) })];
        }
      }),
    ),
    earlyStoppingMode: t.field({ type: EarlyStoppingEnum, description: EARLY_STOPPING_MODE, resolve: (p) => earlyStoppingText(p.earlyStopping) }),
  }),
});
