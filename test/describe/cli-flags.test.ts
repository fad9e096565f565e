import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command, CommanderError } from "commander";
import { afterAll, describe, expect, it } from "vitest";
import { addGenerationOptions, requestedFromOptions } from "../../src/generation/flags.js";
import { type NumberSpec, PARAM_NAMES, PARAMS } from "../../src/generation/params.js";
import { runCli } from "../support/cli.js";

/** Parses `args` as `artdesc describe` flags would be; a refusal comes back as the CommanderError with its message. */
function parse(args: string[]): { params: Record<string, unknown> } | { error: CommanderError; message: string } {
  let message = "";
  const command = addGenerationOptions(new Command("describe"))
    .exitOverride()
    .configureOutput({ writeErr: (s) => (message += s), writeOut: () => undefined });
  try {
    command.parse(args, { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) return { error: err, message };
    throw err;
  }
  return { params: requestedFromOptions(command.opts()) };
}

describe("generation flags", () => {
  it("has a flag for every parameter", () => {
    const command = addGenerationOptions(new Command("describe"));
    const longs = command.options.map((o) => o.long);
    for (const name of PARAM_NAMES) expect(longs).toContain(PARAMS[name].flag);
  });

  it("sets each parameter by its flag, and nothing unset", () => {
    expect(parse([])).toEqual({ params: {} });
    const r = parse([
      "--prompt", "Name the colours.",
      "--beams", "8",
      "--max-new-tokens", "16",
      "--min-new-tokens", "0",
      "--target-words", "0",
      "--length-penalty", "-2.5",
      "--early-stopping", "never",
      "--no-repeat-ngram-size", "3",
      "--repetition-penalty", "1.3",
      "--image-splitting",
      "--no-clean-markdown",
    ]);
    expect(r).toEqual({
      params: {
        prompt: "Name the colours.",
        numBeams: 8,
        maxNewTokens: 16,
        minNewTokens: 0,
        targetWords: 0,
        lengthPenalty: -2.5,
        earlyStopping: "never",
        noRepeatNgramSize: 3,
        repetitionPenalty: 1.3,
        imageSplitting: true,
        cleanMarkdown: false,
      },
    });
    expect(parse(["--no-image-splitting", "--clean-markdown", "--early-stopping", "false"])).toEqual({
      params: { imageSplitting: false, cleanMarkdown: true, earlyStopping: false },
    });
  });

  const numeric = PARAM_NAMES.filter((n) => PARAMS[n].kind === "int" || PARAMS[n].kind === "float").map((n) => [n, PARAMS[n] as NumberSpec] as const);

  it.each(numeric)("%s: the flag takes its bounds and refuses one beyond, naming the flag and the range", (name, spec) => {
    expect(parse([spec.flag, String(spec.min)])).toEqual({ params: { [name]: spec.min } });
    expect(parse([spec.flag, String(spec.max)])).toEqual({ params: { [name]: spec.max } });
    for (const bad of [String(spec.min - 1), String(spec.max + 1), "abc"]) {
      const r = parse([spec.flag, bad]);
      expect("error" in r && r.error.code).toBe("commander.invalidArgument");
      expect("message" in r && r.message).toContain(
        `argument '${bad}' is invalid. ${spec.flag} must be ${spec.kind === "int" ? "an integer" : "a number"} between ${spec.min} and ${spec.max}`,
      );
    }
  });

  it("refuses an unknown early-stopping mode and an empty prompt", () => {
    for (const args of [["--early-stopping", "sometimes"], ["--prompt", "  "]]) {
      const r = parse(args);
      expect("error" in r && r.error.code).toBe("commander.invalidArgument");
    }
  });
});

describe("artdesc describe refuses bad parameters before loading anything (child process)", () => {
  // Each flag's range is tested in-process above; these show the exit code and message a user gets.
  // No model anywhere: a command that got past its arguments would fail on the model (exit 1) instead.
  const dir = mkdtempSync(join(tmpdir(), "artdesc-flags-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const env = { MODEL_DIR: join(dir, "no-models"), DATABASE_URL: `file:${join(dir, "db.sqlite")}` };

  it.each([
    [["--beams", "100"], /--beams must be an integer between 1 and 8/],
    [["--early-stopping", "maybe"], /--early-stopping must be true, false or never/],
    [["--min-new-tokens", "300"], /--min-new-tokens must not exceed maxNewTokens \(256\)/],
  ])("describe img.png %j exits 2: %s", async (flags, message) => {
    const cli = runCli(["describe", join(dir, "img.png"), ...flags], env);
    const { code } = await cli.exit;
    expect(code).toBe(2);
    expect(cli.output()).toMatch(message);
    expect(cli.output()).not.toMatch(/Model files missing/);
  });

  it("a bad DESCRIBE_* default is a configuration error (exit 2) naming the variable", async () => {
    const cli = runCli(["describe", join(dir, "img.png")], { ...env, DESCRIBE_NUM_BEAMS: "100" });
    expect((await cli.exit).code).toBe(2);
    expect(cli.output()).toContain('DESCRIBE_NUM_BEAMS="100": must be an integer between 1 and 8');
  });
});
