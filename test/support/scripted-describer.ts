import type { DescribeInput, DescribeOutput, Describer, GenerationParams, ModelInfo } from "../../src/describe/types.js";

/**
 * A test double of the engine for queue and worker semantics: it "generates" one token per step
 * (stepMs apart), reports progress, honours the abort signal, and can be told to fail.
 */
export interface ScriptedDescriber extends Describer {
  calls: { inputs: DescribeInput[]; params: GenerationParams }[];
  closed: boolean;
  failNext: (message: string) => void;
}

export const SCRIPTED_MODEL: ModelInfo = {
  modelId: "test/scripted",
  revision: "r1",
  dtypes: { vision_encoder: "fp32", embed_tokens: "fp32", decoder_model_merged: "q4" },
  device: "cpu",
};

export function scriptedDescriber(o: { steps?: number; stepMs?: number } = {}): ScriptedDescriber {
  const failures: string[] = [];
  const d: ScriptedDescriber = {
    model: SCRIPTED_MODEL,
    calls: [],
    closed: false,
    failNext: (message) => void failures.push(message),
    async describe(inputs, params, options = {}) {
      d.calls.push({ inputs, params });
      const steps = Math.min(o.steps ?? 3, params.maxNewTokens);
      for (let step = 1; step <= steps; step++) {
        await new Promise((r) => setTimeout(r, o.stepMs ?? 5));
        if (options.signal?.aborted) throw options.signal.reason;
        inputs.forEach((_, i) => options.onProgress?.(i, step));
      }
      const failure = failures.shift();
      if (failure) throw new Error(failure);
      return inputs.map((input, i): DescribeOutput => ({
        text: `Scripted description ${i} of ${input.imagePath}.`,
        rawText: `Scripted description ${i} of ${input.imagePath}.`,
        finishReason: "eos",
        trimmed: false,
        prompt: `<image>${params.prompt}`,
        promptTokens: 20,
        imageTokens: 64,
        generatedTokens: steps,
        generatedTokenIds: Array.from({ length: steps }, (_, k) => k + 1),
        sequenceScore: -0.25,
        timings: { preprocessMs: 1, visionMs: 2, prefillMs: 3, decodeMs: 4, totalMs: 10 },
        params,
        model: SCRIPTED_MODEL,
      }));
    },
    async close() {
      d.closed = true;
    },
  };
  return d;
}
