import { type Command, InvalidArgumentError, Option } from "commander";
import {
  PARAM_NAMES,
  PARAMS,
  ParamOutOfRangeError,
  type ParamName,
  type ParamSpec,
  parseParamText,
  type RequestedParams,
} from "./params.js";

/**
 * The generation parameters as `artdesc describe` flags, one per entry of PARAMS: a value flag
 * checked against the parameter's range as it is parsed (commander reports the flag, the value
 * and the range), or for a yes/no parameter a pair `--image-splitting` / `--no-image-splitting`.
 * Unset flags leave the configured default (the DESCRIBE_* variable) in force.
 */

const PLACEHOLDER: Record<ParamSpec["kind"], string> = { int: "<n>", float: "<x>", text: "<text>", earlyStopping: "<mode>", boolean: "" };

function rangeHelp(spec: ParamSpec): string {
  if (spec.kind === "int" || spec.kind === "float") return `, ${spec.min} to ${spec.upTo ?? spec.max}`;
  if (spec.kind === "text") return `, at most ${spec.limit.max} characters`;
  return "";
}

/** The attribute commander stores a flag's value under ("--max-new-tokens" -> "maxNewTokens"). */
function attributeOf(flag: string): string {
  return flag.slice(2).replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

/** The flags of every generation parameter, added to `command`. */
export function addGenerationOptions(command: Command): Command {
  for (const name of PARAM_NAMES) {
    const spec = PARAMS[name];
    const help = `${spec.doc}${rangeHelp(spec)} (${spec.env})`;
    if (spec.kind === "boolean") {
      command.addOption(new Option(spec.flag, help));
      command.addOption(new Option(`--no-${spec.flag.slice(2)}`, `the opposite of ${spec.flag}`));
      continue;
    }
    const option = new Option(`${spec.flag} ${PLACEHOLDER[spec.kind]}`, help).argParser((text: string) => {
      try {
        return parseParamText(name, text);
      } catch (err) {
        if (err instanceof ParamOutOfRangeError) throw new InvalidArgumentError(`${spec.flag} ${err.problem}.`);
        throw err;
      }
    });
    // "--no-repeat-ngram-size" names Hugging Face's no_repeat_ngram_size, not a negated flag.
    option.negate = false;
    command.addOption(option);
  }
  return command;
}

/** The parameters set by flags (commander's option values), by parameter name. */
export function requestedFromOptions(options: Record<string, unknown>): RequestedParams {
  const out: Record<string, unknown> = {};
  for (const name of PARAM_NAMES) {
    const value = options[attributeOf(PARAMS[name].flag)];
    if (value !== undefined) out[name] = value;
  }
  return out as RequestedParams;
}

/** The flag of a parameter, for messages about it ("--min-new-tokens"). */
export function flagOf(name: ParamName | string): string {
  return (PARAMS as Record<string, { flag: string }>)[name]?.flag ?? name;
}
