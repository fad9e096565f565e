import type { Config } from "../config.js";
import { openDescriber } from "./describer.js";
import { checkRequested, paramsFromConfig, type RequestedParams, resolveParams } from "../generation/params.js";
import type { DescribeOutput } from "./types.js";

/** Options of `artdesc describe`. */
export interface DescribeCommandOptions {
  model?: string | undefined;
  /** The generation parameters set by flags; the others take the configured defaults. */
  params?: RequestedParams | undefined;
  batch?: number | undefined;
  json?: boolean | undefined;
}

export interface CommandIO {
  out: (line: string) => void;
  err: (line: string) => void;
}

/**
 * `artdesc describe <image-file>...`: describes local files with the configured model, `batch`
 * images per decode. Prints the text (or one JSON object per image with --json). A file that
 * cannot be described is reported and the others go on; returns the number of failures.
 */
export async function describeFiles(config: Config, files: string[], opts: DescribeCommandOptions, io: CommandIO): Promise<number> {
  const defaults = paramsFromConfig(config);
  const params = resolveParams(checkRequested(opts.params ?? {}, defaults), defaults);
  const batch = opts.batch ?? config.WORKER_BATCH;
  const describer = await openDescriber(config, opts.model ? { modelDir: opts.model } : {});
  let failures = 0;
  const print = (file: string, o: DescribeOutput) => {
    if (opts.json) io.out(JSON.stringify({ file, ...o }));
    else {
      io.out(`${file}\n${o.text}\n`);
      io.err(
        `  ${o.generatedTokens} tokens, finish ${o.finishReason}${o.trimmed ? ", trimmed" : ""}, ${(o.timings.totalMs / 1000).toFixed(2)} s`,
      );
    }
  };
  try {
    for (let i = 0; i < files.length; i += batch) {
      const group = files.slice(i, i + batch);
      try {
        const outs = await describer.describe(group.map((imagePath) => ({ imagePath })), params);
        outs.forEach((o, j) => print(group[j]!, o));
      } catch (err) {
        if (group.length === 1) {
          failures++;
          io.err(`${group[0]}: ${err instanceof Error ? err.message : String(err)}`);
          continue;
        }
        // One bad file fails its batch: describe the batch one by one to say which.
        for (const file of group) {
          try {
            const [o] = await describer.describe([{ imagePath: file }], params);
            print(file, o!);
          } catch (e) {
            failures++;
            io.err(`${file}: ${e instanceof Error ? e.message : String(e)}`);
          }
        }
      }
    }
  } finally {
    await describer.close();
  }
  return failures;
}
