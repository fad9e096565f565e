/**
 * npm run bench:devices -- [--model DIR] [--tokens N] [--reps N] DEVICE:DTYPE ...
 *   e.g. `npm run bench:devices -- webgpu:fp32 webgpu:fp16 cpu:fp32`
 *
 * Describes one 512x512 image (the one bench:describe uses) with 4 beams and exactly N new tokens
 * (default 200, the published baseline's limit) on each device and dtype in turn, in this process:
 * load, a 2-token warm-up, `--reps` 4-beam runs (default 2), then one greedy run. Prints one line
 * per run: seconds per image, decode ms per step, vision + prefill, greedy seconds, and the first
 * token at which its 4-beam output differs from the first run's (-1: identical). A device that
 * cannot be used prints why and the others go on. Checks a GPU set-up before `MODEL_DEVICE` is
 * changed; nothing is appended to BENCHMARKS.md.
 */
import os from "node:os";
import { MODEL_DEVICES } from "../src/config.js";
import { Engine } from "../src/describe/engine.js";
import { SYNTH_DTYPES, type SynthDtype } from "../src/describe/models/synth.js";
import { benchArgs } from "./args.js";
import { baseParams, benchImage } from "./describe-inputs.js";

const argv = process.argv.slice(2);
const { text: arg, count } = benchArgs(argv);
const modelDir = arg("model", "models/synth/smolvlm-500m");
const tokens = count("tokens", 200);
const reps = count("reps", 2);
const flagsWithValues = new Set(["--model", "--tokens", "--reps"]);
const runs = argv.filter((a, i) => !a.startsWith("--") && !flagsWithValues.has(argv[i - 1] ?? ""));
for (const r of runs) {
  const [device, dtype] = r.split(":");
  if (!(MODEL_DEVICES as readonly string[]).includes(device ?? "") || !(SYNTH_DTYPES as readonly string[]).includes(dtype ?? "")) {
    console.error(`"${r}": use DEVICE:DTYPE, DEVICE one of ${MODEL_DEVICES.join(", ")} and DTYPE one of ${SYNTH_DTYPES.join(", ")}`);
    process.exit(2);
  }
}
if (!runs.length) {
  console.error("name at least one DEVICE:DTYPE, e.g. webgpu:fp32");
  process.exit(2);
}

const file = await benchImage("sq0.jpg", 512, 512, 0);
const base = { ...baseParams(tokens), numBeams: 4 };
let firstIds: number[] | null = null;
console.log(`${modelDir}, 4 beams, ${tokens} new tokens, 512x512; ${os.cpus().length} cores, Node ${process.version}`);
for (const r of runs) {
  const [device, dtype] = r.split(":") as [(typeof MODEL_DEVICES)[number], SynthDtype];
  try {
    const t0 = performance.now();
    const engine = await Engine.load({ modelDir, device, dtype });
    const loadS = (performance.now() - t0) / 1000;
    try {
      await engine.describe([{ imagePath: file }], { ...base, maxNewTokens: 2, minNewTokens: 2 });
      const seconds: number[] = [];
      let last = null;
      for (let i = 0; i < reps; i++) {
        const start = performance.now();
        [last] = await engine.describe([{ imagePath: file }], base);
        seconds.push((performance.now() - start) / 1000);
      }
      const greedyStart = performance.now();
      await engine.describe([{ imagePath: file }], { ...base, numBeams: 1 });
      const greedyS = (performance.now() - greedyStart) / 1000;
      const out = last!;
      firstIds ??= out.generatedTokenIds;
      const differsAt = out.generatedTokenIds.findIndex((t, i) => t !== firstIds![i]);
      console.log(
        `${device}:${dtype} (cache reordered on the ${engine.reorderPath}): load ${loadS.toFixed(1)} s; 4 beams ${seconds.map((s) => s.toFixed(2)).join(" / ")} s per image, ` +
          `decode ${(out.timings.decodeMs / tokens).toFixed(1)} ms per step, vision + prefill ${((out.timings.visionMs + out.timings.prefillMs) / 1000).toFixed(2)} s; ` +
          `greedy ${greedyS.toFixed(2)} s; tokens differ from the first run's at ${differsAt}; peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`,
      );
    } finally {
      // A failed run must not keep its weights on the GPU for the next device and dtype.
      await engine.dispose();
    }
  } catch (err) {
    console.log(`${device}:${dtype}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
