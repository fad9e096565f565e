import type { Config } from "../config.js";
import type { Db } from "../db.js";
import { openDescriber } from "./describer.js";
import { ImageSourceError, imageSourceFor } from "../images/source.js";
import { checkRequested, paramsFromConfig, type RequestedParams, resolveParams } from "../generation/params.js";
import { firstDifference, modelFileDifferences, NotReproducibleError, storedRunSpec } from "../generation/reproduction.js";
import { numberedIdOrNull } from "../graphql/ids.js";
import { sha256File } from "./model-files.js";
import { type DescribeOutput, ModelMissingError } from "./types.js";
import { ModelContractError } from "./models/contract.js";

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

/** One file's failure as printed: its message, led by the file's name unless the message names it already. */
const fileFailure = (file: string, err: unknown): string => {
  const message = err instanceof Error ? err.message : String(err);
  return message.includes(file) ? message : `${file}: ${message}`;
};

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
        // Nothing is dropped here (no item signals), so every file has its output.
        outs.forEach((o, j) => print(group[j]!, o!));
      } catch (err) {
        if (group.length === 1) {
          failures++;
          io.err(fileFailure(group[0]!, err));
          continue;
        }
        // One bad file fails its batch: describe the batch one by one to say which.
        for (const file of group) {
          try {
            const [o] = await describer.describe([{ imagePath: file }], params);
            print(file, o!);
          } catch (e) {
            failures++;
            io.err(fileFailure(file, e));
          }
        }
      }
    }
  } finally {
    await describer.close();
  }
  return failures;
}

/** `describe --like` exit codes: the same tokens, other tokens, and a description that cannot be run again. */
export const LIKE_EXIT = { identical: 0, differ: 1, badUsage: 2, notReproducible: 3 } as const;

/** A description id as a user gives it: its number, or its GraphQL global id. Null when it is neither. */
export function parseDescriptionId(raw: string): number | null {
  return numberedIdOrNull(raw, "Description");
}

/**
 * `artdesc describe --like <descriptionId>`: runs a stored model description again, alone, with its
 * stored parameters and its exact templated instruction on its image, and says whether the tokens
 * are the ones stored. Refuses (exit 3, nothing run) when the image file's sha256 or the model
 * files (paths and sha256) or the device are not those it was made with: the tokens would then
 * prove nothing. Exit 0 when the tokens are identical, 1 when they differ.
 */
export async function describeLike(
  config: Config,
  db: Db,
  rawId: string,
  opts: { model?: string | undefined; json?: boolean | undefined },
  io: CommandIO,
): Promise<number> {
  const id = parseDescriptionId(rawId);
  const shown = rawId.length > 80 ? `${rawId.slice(0, 80)}…` : rawId;
  const refuse = (reasons: string[]) => {
    io.err(`not reproducible: description ${id}: ${reasons.join("; ")}`);
    return LIKE_EXIT.notReproducible;
  };
  // Bad usage, not a description that cannot be reproduced.
  if (id === null) {
    io.err(`--like ${JSON.stringify(shown)}: that is not a description id (a number or a Description global id)`);
    return LIKE_EXIT.badUsage;
  }
  const row = await db.description.findUnique({ where: { id }, include: { image: { select: { localPath: true, localHash: true, localBytes: true } } } });
  if (!row) return refuse(["no such description"]);
  let spec;
  try {
    spec = storedRunSpec(row);
  } catch (err) {
    if (err instanceof NotReproducibleError) return refuse(err.reasons);
    throw err;
  }
  if (!row.image?.localPath) return refuse(["its image is no longer stored"]);
  // The same source as the worker's: IMAGE_DIR, or the API's /images/ (IMAGE_SOURCE_URL).
  const source = imageSourceFor(config);
  let imagePath: string;
  try {
    await source.ready();
    imagePath = await source.localFile({ localPath: row.image.localPath, localHash: row.image.localHash, localBytes: row.image.localBytes });
  } catch (err) {
    if (err instanceof ImageSourceError) return refuse([`its image cannot be had: ${err.message}`]);
    throw err;
  }
  const hashNow = await sha256File(imagePath).catch(() => null);
  if (hashNow === null) return refuse([`its image file ${row.image.localPath} cannot be read`]);
  if (hashNow !== spec.imageHash) {
    return refuse([`image differs: ${row.image.localPath} has sha256 ${hashNow.slice(0, 12)}… now, ${spec.imageHash.slice(0, 12)}… then`]);
  }

  let describer: Awaited<ReturnType<typeof openDescriber>>;
  try {
    describer = await openDescriber(config, opts.model ? { modelDir: opts.model } : {});
  } catch (err) {
    // No model to run it with here: it cannot be reproduced (exit 3), which is not "tokens differ".
    if (err instanceof ModelMissingError || err instanceof ModelContractError) return refuse([`its model cannot be loaded here: ${err.message}`]);
    throw err;
  }
  try {
    const reasons = modelFileDifferences(spec.modelFiles, describer.model.files).map((d) => `model files differ: ${d}`);
    if (row.device && row.device !== describer.model.device) reasons.push(`device differs: ${row.device} then, ${describer.model.device} now`);
    if (reasons.length) return refuse(reasons);
    const [out] = await describer.describe([{ imagePath, instruction: spec.instruction }], spec.params);
    const o = out!;
    const diff = firstDifference(spec.generatedTokenIds, o.generatedTokenIds);
    if (opts.json) {
      io.out(
        JSON.stringify({
          descriptionId: id,
          identical: diff === null,
          firstDifference: diff,
          storedBatchSize: row.batchSize,
          storedText: row.text,
          storedTokenIds: spec.generatedTokenIds,
          ...o,
        }),
      );
    } else {
      io.out(o.text);
      const batch = row.batchSize && row.batchSize > 1 ? ` (made in a batch of ${row.batchSize}, run again alone)` : "";
      io.err(
        diff === null
          ? `tokens identical: ${o.generatedTokens} tokens, as description ${id}${batch}`
          : `tokens differ from description ${id} at token ${diff}: ${spec.generatedTokenIds.length} tokens then, ${o.generatedTokens} now${batch}`,
      );
    }
    return diff === null ? LIKE_EXIT.identical : LIKE_EXIT.differ;
  } finally {
    await describer.close();
  }
}
