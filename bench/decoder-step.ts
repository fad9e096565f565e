/**
 * npm run bench:step [-- --models DIR[,DIR...] --dtype q4 --rows 4 --steps 150 --rounds 3]
 *
 * The decoder file alone, step by step, as the engine runs it: one onnxruntime session with the
 * engine's CPU options (no spinning threads; no memory arena for q4 files), `rows` rows (4 beams)
 * starting from a 186-position cache (a 512² image and the default prompt), each step's
 * `present.*` fed back as the next step's `past_key_values.*`, for `steps` steps (150 new tokens).
 * Dtypes with float32 inputs only (fp32, int8, uint8, quantized, q4).
 * No beam search, reorder or image: what a change to the decoder's graph (a different export, the
 * synthetic writer) or to the process (BENCH_MALLOC=glibc: glibc's own malloc settings, see
 * bench/allocator.ts) does to a step, with far less noise than a whole description.
 *
 * With several model folders the rounds are interleaved (A, B, A, B, ...), each run in a fresh
 * process, and the medians are compared. Every run feeds the same pseudo-random inputs, so folders
 * with the same weights print the same checksum of the last step's logits: the graphs compute the
 * same numbers. Results are printed, not appended to BENCHMARKS.md.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import * as ort from "onnxruntime-node";
import { cpuMemArenaDefault } from "../src/describe/engine.js";
import { type ModuleDtypes, onnxFile } from "../src/describe/models/contract.js";
import { freeBuffer } from "../src/describe/kv-cache.js";
import { noSpinningThreads } from "../src/describe/ort-threads.js";
import { SYNTH_DTYPES, type SynthDtype } from "../src/describe/models/synth.js";
import { MODEL_MODULES } from "../src/config.js";
import { benchAllocator } from "./allocator.js";
import { benchArgs } from "./args.js";

const allocator = benchAllocator();
const args = process.argv.slice(2);
const { text: arg, count } = benchArgs(args);
const PROMPT_POSITIONS = 186;

interface StepResult {
  msPerStep: number;
  checksum: number;
}

async function child(dir: string, dtype: SynthDtype, rows: number, steps: number): Promise<StepResult> {
  const text = JSON.parse(readFileSync(`${dir}/config.json`, "utf8")).text_config;
  const layers: number = text.num_hidden_layers;
  const heads: number = text.num_key_value_heads;
  const headDim: number = text.head_dim ?? text.hidden_size / text.num_attention_heads;
  const hidden: number = text.hidden_size;
  const options: ort.InferenceSession.SessionOptions = { extra: noSpinningThreads() };
  const arena = cpuMemArenaDefault(Object.fromEntries(MODEL_MODULES.map((m) => [m, dtype])) as ModuleDtypes, "cpu");
  if (arena !== undefined) options.enableCpuMemArena = arena;
  const session = await ort.InferenceSession.create(`${dir}/${onnxFile("decoder_model_merged", dtype)}`, options);
  let seed = 1;
  const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32 - 0.5;
  let past: Record<string, ort.Tensor> = {};
  let positions = PROMPT_POSITIONS;
  for (let i = 0; i < layers; i++) {
    for (const kv of ["key", "value"]) {
      past[`past_key_values.${i}.${kv}`] = new ort.Tensor("float32", Float32Array.from({ length: rows * heads * positions * headDim }, random), [rows, heads, positions, headDim]);
    }
  }
  let logits: Float32Array = new Float32Array();
  const start = performance.now();
  for (let step = 0; step < steps; step++) {
    const out = await session.run({
      inputs_embeds: new ort.Tensor("float32", Float32Array.from({ length: rows * hidden }, random), [rows, 1, hidden]),
      attention_mask: new ort.Tensor("int64", new BigInt64Array(rows * (positions + 1)).fill(1n), [rows, positions + 1]),
      position_ids: new ort.Tensor("int64", new BigInt64Array(rows).fill(BigInt(positions)), [rows, 1]),
      ...past,
    });
    // The engine frees each dead cache and the last logits at once (releaseCache, freeBuffer): so does this loop.
    for (const t of Object.values(past)) freeBuffer(t.data as Float32Array);
    freeBuffer(logits);
    past = {};
    for (let i = 0; i < layers; i++) for (const kv of ["key", "value"]) past[`past_key_values.${i}.${kv}`] = out[`present.${i}.${kv}`]!;
    logits = out.logits!.data as Float32Array;
    positions++;
  }
  const msPerStep = (performance.now() - start) / steps;
  let checksum = 0;
  for (const v of logits) checksum += v;
  await session.release();
  return { msPerStep, checksum };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

const dtype = arg("dtype", "q4") as SynthDtype;
// fp16 and q4f16 decoders take float16 inputs and caches, which this loop does not make.
const FLOAT32_IO: readonly SynthDtype[] = SYNTH_DTYPES.filter((d) => d !== "fp16" && d !== "q4f16");
if (!FLOAT32_IO.includes(dtype)) throw new Error(`--dtype: one of ${FLOAT32_IO.join(", ")} (float32 inputs)`);
const rows = count("rows", 4);
const steps = count("steps", 150);

if (process.env.BENCH_STEP_CHILD) {
  const r = await child(process.env.BENCH_STEP_CHILD, dtype, rows, steps);
  console.log(`RESULT ${JSON.stringify(r)}`);
} else {
  const models = arg("models", "models/synth/smolvlm-500m").split(",");
  const rounds = count("rounds", 3);
  const load = () => os.loadavg().map((l) => l.toFixed(2)).join(" / ");
  console.log(`decoder steps: ${dtype}, ${rows} rows, ${steps} steps from ${PROMPT_POSITIONS} positions, ${rounds} rounds; malloc: ${allocator}; load at start ${load()}`);
  const results = new Map<string, StepResult[]>(models.map((m) => [m, []]));
  for (let round = 0; round < rounds; round++) {
    for (const dir of models) {
      const run = spawnSync(process.execPath, ["--import", "tsx", process.argv[1]!, ...args], {
        env: { ...process.env, BENCH_STEP_CHILD: dir },
        encoding: "utf8",
        maxBuffer: 1 << 24,
      });
      const line = run.stdout.split("\n").find((l) => l.startsWith("RESULT "));
      if (run.status !== 0 || !line) throw new Error(`${dir}: the run failed (exit ${run.status}):\n${run.stderr}`);
      const r = JSON.parse(line.slice(7)) as StepResult;
      results.get(dir)!.push(r);
      console.log(`round ${round + 1}, ${dir}: ${r.msPerStep.toFixed(1)} ms / step (logits checksum ${r.checksum})`);
    }
  }
  console.log(`load at end ${load()}\n\n| model | ms / step, median | each run |\n| --- | --- | --- |`);
  for (const [dir, rs] of results) {
    console.log(`| ${dir} | ${median(rs.map((r) => r.msPerStep)).toFixed(1)} | ${rs.map((r) => r.msPerStep.toFixed(1)).join(" / ")} |`);
  }
}
