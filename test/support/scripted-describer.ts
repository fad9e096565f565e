import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { finishText } from "../../src/describe/postprocess.js";
import type { DescribeInput, DescribeOutput, Describer, GenerationParams, ModelInfo } from "../../src/describe/types.js";

/**
 * A test double of the engine for queue and worker semantics: it "generates" one token per step
 * (stepMs apart), reports progress, honours the abort signal, and can be told to fail. Like the
 * engine, it records the sha256 of the image file's bytes (the nightly run compares it with the
 * image's localHash); a path with no file gets "f" * 64.
 */
export interface ScriptedDescriber extends Describer {
  /** Per call: its inputs and parameters, and the step at which each dropped input left (by index). */
  calls: { inputs: DescribeInput[]; params: GenerationParams; droppedAt: Map<number, number> }[];
  closed: boolean;
  /** The next call fails with this error (a message becomes a plain Error). */
  failNext: (error: string | Error) => void;
}

export const SCRIPTED_MODEL: ModelInfo = {
  modelId: "test/scripted",
  revision: "r1",
  dtypes: { vision_encoder: "fp32", embed_tokens: "fp32", decoder_model_merged: "q4" },
  device: "cpu",
  files: [{ path: "onnx/decoder_model_merged_q4.onnx", sha256: "0".repeat(64) }],
};

/** `answers`: raw model outputs to give, in order (finished as the engine finishes them); then the scripted text. */
export function scriptedDescriber(o: { steps?: number; stepMs?: number; answers?: string[] } = {}): ScriptedDescriber {
  const answers = [...(o.answers ?? [])];
  const failures: (string | Error)[] = [];
  const d: ScriptedDescriber = {
    model: SCRIPTED_MODEL,
    calls: [],
    closed: false,
    failNext: (error) => void failures.push(error),
    async describe(inputs, params, options = {}) {
      const call = { inputs, params, droppedAt: new Map<number, number>() };
      d.calls.push(call);
      const steps = Math.min(o.steps ?? 3, params.maxNewTokens);
      const dropped = (i: number) => options.itemSignals?.[i]?.aborted === true;
      for (let step = 1; step <= steps; step++) {
        await new Promise((r) => setTimeout(r, o.stepMs ?? 5));
        if (options.signal?.aborted) throw options.signal.reason;
        inputs.forEach((_, i) => {
          if (dropped(i)) {
            if (!call.droppedAt.has(i)) call.droppedAt.set(i, step);
          } else options.onProgress?.(i, step);
        });
      }
      const failure = failures.shift();
      if (failure) throw typeof failure === "string" ? new Error(failure) : failure;
      return inputs.map((input, i): DescribeOutput | null => {
        if (dropped(i)) return null;
        const rawText = answers.shift() ?? `Scripted description ${i} of ${input.imagePath}.`;
        const { text, trimmed } = finishText(rawText, { cleanMarkdown: params.cleanMarkdown });
        return {
          text,
          rawText,
          finishReason: "eos",
          trimmed,
          prompt: input.instruction ?? `<image>${params.prompt}`,
          imageHash: fileHash(input.imagePath),
          batchSize: inputs.length,
          decoding: params.numBeams === 1 ? "greedy" : "beam",
          promptTokens: 20,
          imageTokens: 64,
          generatedTokens: steps,
          generatedTokenIds: Array.from({ length: steps }, (_, k) => k + 1),
          sequenceScore: -0.25,
          timings: { preprocessMs: 1, visionMs: 2, prefillMs: 3, decodeMs: 4, totalMs: 10, batchMs: 10 * inputs.length },
          params,
          model: SCRIPTED_MODEL,
        };
      });
    },
    async close() {
      d.closed = true;
    },
  };
  return d;
}

function fileHash(path: string): string {
  try {
    return createHash("sha256").update(readFileSync(path)).digest("hex");
  } catch {
    return "f".repeat(64);
  }
}
