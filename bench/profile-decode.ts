/**
 * npm run bench:profile [-- --dtypes fp32,q4,int8 --tokens N --beams N --top N --model DIR --no-append
 *                          --opt all|extended|basic|disabled --no-mem-pattern --no-arena --parallel]
 *
 * Where a decode step's time goes. Each dtype runs in a fresh process: the engine loads with the
 * decoder profiled (onnxruntime `enableProfiling`), describes one 512² image (no splitting) with
 * `--beams` beams (default 4) for exactly `--tokens` new tokens (default 40), and the decoder's
 * profile of that search's steps (the prompt's prefill left out) is summed per op type, per role
 * (projections, attention, the cache's Concat, ...) and per node. The step's wall time is split
 * into: the decoder's own run (onnxruntime's `model_run`), the binding around it (feeds, outputs
 * handed to JavaScript), the embed run, the cache reorder, the rest of the step callback (mask,
 * logits read back) and the beam search's JavaScript outside the step (log-softmax, processors,
 * top-k over beams x vocab, bookkeeping). Profiling itself adds a little to every node; the
 * table says how much the nodes sum to against `model_run`.
 *
 * The session flags try onnxruntime's session options (all dtypes of one invocation get them).
 * Results are printed and appended to BENCHMARKS.md.
 */
import { spawnSync } from "node:child_process";
import { appendFileSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { Engine, type SessionTuning } from "../src/describe/engine.js";
import { SYNTH_DTYPES, type SynthDtype } from "../src/describe/models/synth.js";
import { defaultGenerationParams } from "../src/describe/types.js";
import { loadConfig } from "../src/config.js";
import { benchAllocator } from "./allocator.js";
import { benchArgs } from "./args.js";

const allocator = benchAllocator();
const args = process.argv.slice(2);
const { text: arg, count } = benchArgs(args);
const modelDir = arg("model", "models/synth/smolvlm-500m");
const tokens = count("tokens", 40);
const beams = count("beams", 4);
const top = count("top", 12);
const opt = arg("opt", "");
if (opt && !["all", "extended", "basic", "disabled", "layout"].includes(opt)) throw new Error("--opt: all, extended, basic, layout or disabled");
const tuning: SessionTuning = {
  ...(opt ? { graphOptimizationLevel: opt as SessionTuning["graphOptimizationLevel"] } : {}),
  ...(args.includes("--no-mem-pattern") ? { enableMemPattern: false } : {}),
  ...(args.includes("--no-arena") ? { enableCpuMemArena: false } : {}),
  ...(args.includes("--parallel") ? { executionMode: "parallel" as const } : {}),
};

/** One event of onnxruntime's profile (Chrome trace format). */
interface ProfileEvent {
  cat: string;
  name: string;
  ts: number;
  dur: number;
  args?: { op_name?: string; input_type_shape?: Record<string, number[]>[]; output_type_shape?: Record<string, number[]>[] };
}

const shapesOf = (list: Record<string, number[]>[] | undefined) => (list ?? []).map((x) => Object.values(x)[0] ?? []);

/**
 * What a node does in the decoder step, from its op and its shapes (the node names are the
 * builder's `<Op>_node_<n>`, and onnxruntime's fusions rename them).
 */
export function roleOf(op: string, inputs: number[][], outputs: number[][], vocab: number, kvHeads: number): string {
  const out = outputs[0] ?? [];
  const rank = (inputs[0] ?? []).length;
  if (["MatMulNBits", "MatMulInteger", "DynamicQuantizeMatMul", "DynamicQuantizeLinear", "MatMul", "FusedMatMul", "Gemm", "MatMulIntegerToFloat"].includes(op)) {
    if (out[out.length - 1] === vocab) return "LM head (hidden x vocab)";
    if (op === "DynamicQuantizeLinear") return "projections (weight MatMuls)";
    // Attention's activation x activation products: [rows, kv heads, group, 1, d] x [rows, kv heads, 1, d, T].
    if (rank >= 4) return "attention QK / PV MatMul";
    return "projections (weight MatMuls)";
  }
  if (op === "Concat" && out.length === 4 && out[1] === kvHeads && (out[2] ?? 0) > 1) return "cache Concat (past + new)";
  if (op === "Transpose" && out.length === 4 && out[1] === kvHeads && (out[3] ?? 0) > 1 && out[2] !== 1) return "Transpose of the keys (cache)";
  if (op === "Softmax") return "attention Softmax";
  if ((op === "Add" || op === "Mul") && out.length === 5) return "attention scale + mask (Mul, Add)";
  if (["Where", "And", "LessOrEqual", "Range", "Cast", "Equal", "Not"].includes(op)) return "mask building";
  if (["Reshape", "Unsqueeze", "Squeeze", "Shape", "Transpose", "Identity", "Expand", "Slice", "Gather"].includes(op)) return "layout (Reshape, Transpose, ...)";
  return "element-wise (norms, RoPE, SiLU, residuals)";
}

interface Aggregate {
  dtype: string;
  steps: number;
  wallMsPerStep: number;
  stepCallbackMsPerStep: number;
  decoderRunMsPerStep: number;
  modelRunMsPerStep: number;
  nodesMsPerStep: number;
  embedRunMsPerStep: number;
  reorderMsPerStep: number;
  byOp: Record<string, number>;
  byRole: Record<string, number>;
  topNodes: { name: string; op: string; shapes: string; ms: number }[];
  loadAvg: number;
}

async function child(dtype: SynthDtype): Promise<void> {
  const imgDir = join(os.tmpdir(), "artdesc-bench");
  mkdirSync(imgDir, { recursive: true });
  const data = Buffer.alloc(512 * 512 * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31) % 251;
  const file = join(imgDir, "profile.jpg");
  await sharp(data, { raw: { width: 512, height: 512, channels: 3 } }).jpeg().toFile(file);

  const profDir = join(os.tmpdir(), `artdesc-profile-${process.pid}`);
  rmSync(profDir, { recursive: true, force: true });
  mkdirSync(profDir, { recursive: true });
  const engine = await Engine.load({ modelDir, device: "cpu", dtype, session: tuning, profileDecoderPrefix: join(profDir, "decoder") });
  const base = { ...defaultGenerationParams(loadConfig({})), targetWords: 0, imageSplitting: false };
  // Warm-up (first-run allocations), then the measured search.
  await engine.describe([{ imagePath: file }], { ...base, numBeams: beams, maxNewTokens: 2, minNewTokens: 2 });

  // Time every run of the embed and decoder sessions as the engine sees it (binding included).
  const sessions = (engine as unknown as { sessions: Record<string, { run: (...a: unknown[]) => Promise<unknown> }> }).sessions;
  const runMs: Record<string, number> = { embed_tokens: 0, decoder_model_merged: 0 };
  for (const m of Object.keys(runMs)) {
    const s = sessions[m]!;
    const original = s.run.bind(s);
    s.run = async (...a: unknown[]) => {
      const t = performance.now();
      try {
        return await original(...a);
      } finally {
        runMs[m]! += performance.now() - t;
      }
    };
  }
  const { prepared, prefill } = await (async () => {
    const p = await engine.prepare(file, base.prompt, false);
    return { prepared: p, prefill: await engine.prefill(p) };
  })();
  const before = { ...engine.stats };
  for (const m of Object.keys(runMs)) runMs[m] = 0;
  const t0 = performance.now();
  const { hypotheses } = await engine.search([prepared.inputIds], [prefill], { ...base, numBeams: beams, maxNewTokens: tokens, minNewTokens: tokens });
  const wallMs = performance.now() - t0;
  if (hypotheses[0]![0]!.tokens.length !== tokens) throw new Error(`generated ${hypotheses[0]![0]!.tokens.length} tokens, expected ${tokens}`);
  const steps = tokens - 1;
  engine.endProfiling();
  await engine.dispose();

  const profFile = readdirSync(profDir).find((f) => f.endsWith(".json"));
  if (!profFile) throw new Error(`no profile written in ${profDir}`);
  const events = JSON.parse(readFileSync(join(profDir, profFile), "utf8")) as ProfileEvent[];
  rmSync(profDir, { recursive: true, force: true });
  const runs = events.filter((e) => e.cat === "Session" && e.name === "model_run").sort((a, b) => a.ts - b.ts);
  // The search's steps are the decoder's last `steps` runs.
  const measured = runs.slice(-steps);
  if (measured.length !== steps) throw new Error(`profile has ${runs.length} runs, expected at least ${steps}`);
  const from = measured[0]!.ts;
  const nodes = events.filter((e) => e.cat === "Node" && e.name.endsWith("_kernel_time") && e.ts >= from);
  const vocab = engine.vocabSize;
  const config = JSON.parse(readFileSync(join(modelDir, "config.json"), "utf8")) as { text_config?: { num_key_value_heads?: number } };
  const kvHeads = config.text_config?.num_key_value_heads ?? 0;
  const byOp: Record<string, number> = {};
  const byRole: Record<string, number> = {};
  const byNode = new Map<string, { op: string; shapes: string; us: number }>();
  for (const e of nodes) {
    const op = e.args?.op_name ?? "?";
    const ins = shapesOf(e.args?.input_type_shape);
    const outs = shapesOf(e.args?.output_type_shape);
    const role = roleOf(op, ins, outs, vocab, kvHeads);
    byOp[op] = (byOp[op] ?? 0) + e.dur;
    byRole[role] = (byRole[role] ?? 0) + e.dur;
    const name = e.name.replace(/_kernel_time$/, "");
    const n = byNode.get(name) ?? { op, shapes: `${ins.map((s) => `[${s.join(",")}]`).join(" x ")} -> [${(outs[0] ?? []).join(",")}]`, us: 0 };
    n.us += e.dur;
    byNode.set(name, n);
  }
  const perStep = (us: number) => us / 1000 / steps;
  const result: Aggregate = {
    dtype,
    steps,
    wallMsPerStep: wallMs / steps,
    stepCallbackMsPerStep: (engine.stats.stepMs - before.stepMs) / steps,
    decoderRunMsPerStep: runMs.decoder_model_merged! / steps,
    modelRunMsPerStep: perStep(measured.reduce((s, e) => s + e.dur, 0)),
    nodesMsPerStep: perStep(nodes.reduce((s, e) => s + e.dur, 0)),
    embedRunMsPerStep: runMs.embed_tokens! / steps,
    reorderMsPerStep: (engine.stats.reorderMs - before.reorderMs) / steps,
    byOp: Object.fromEntries(Object.entries(byOp).map(([k, v]) => [k, perStep(v)])),
    byRole: Object.fromEntries(Object.entries(byRole).map(([k, v]) => [k, perStep(v)])),
    topNodes: [...byNode.entries()]
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, top)
      .map(([name, n]) => ({ name, op: n.op, shapes: n.shapes, ms: perStep(n.us) })),
    loadAvg: os.loadavg()[0]!,
  };
  console.log(`RESULT ${JSON.stringify(result)}`);
}

function table(results: Aggregate[], title: string, rows: [string, (r: Aggregate) => number][]): string[] {
  return [
    `| ${title} | ${results.map((r) => `${r.dtype} ms / step`).join(" | ")} |`,
    `| --- | ${results.map(() => "---").join(" | ")} |`,
    ...rows.map(([name, f]) => `| ${name} | ${results.map((r) => f(r).toFixed(2)).join(" | ")} |`),
  ];
}

async function parent(): Promise<void> {
  const dtypes = arg("dtypes", "fp32,q4,int8").split(",").map((d) => d.trim());
  for (const d of dtypes) if (!(SYNTH_DTYPES as readonly string[]).includes(d)) throw new Error(`--dtypes: "${d}" is not one of ${SYNTH_DTYPES.join(", ")}`);
  const loadAtStart = os.loadavg();
  const startedAt = new Date().toISOString();
  console.log(`load average at start: ${loadAtStart.map((x) => x.toFixed(2)).join(" ")}`);
  const results: Aggregate[] = [];
  for (const d of dtypes) {
    const out = spawnSync(process.execPath, [...process.execArgv, process.argv[1]!, "--child", d, ...args], { encoding: "utf8", maxBuffer: 64 * 2 ** 20 });
    const line = out.stdout.split("\n").find((l) => l.startsWith("RESULT "));
    if (out.status !== 0 || !line) throw new Error(`${d} failed (exit ${out.status}):\n${out.stderr.slice(-4000)}`);
    results.push(JSON.parse(line.slice(7)) as Aggregate);
    console.log(`${d}: ${line.slice(7, 400)}`);
  }
  const loadAtEnd = os.loadavg();
  const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
  const roles = [...new Set(results.flatMap((r) => Object.keys(r.byRole)))].sort((a, b) => (results[0]!.byRole[b] ?? 0) - (results[0]!.byRole[a] ?? 0));
  const ops = [...new Set(results.flatMap((r) => Object.keys(r.byOp)))]
    .sort((a, b) => Math.max(...results.map((r) => r.byOp[b] ?? 0)) - Math.max(...results.map((r) => r.byOp[a] ?? 0)))
    .slice(0, 16);
  const lines = [
    "",
    `## decode profile: ${beams} beams, ${tokens} tokens, ${modelDir} (${startedAt})`,
    "",
    `Command: \`npm run bench:profile -- ${args.join(" ")}\`. Session options: ${JSON.stringify(tuning)} (the engine's own otherwise); malloc: ${allocator}. ` +
      `Load average (1 min) at start ${loadAtStart[0]!.toFixed(2)}, at end ${loadAtEnd[0]!.toFixed(2)} (2 cores, shared). ` +
      `Per step = the search's ${results[0]?.steps ?? tokens - 1} decoder steps, prefill excluded; one run per dtype, each in a fresh process, decoder profiled.`,
    "",
    ...table(results, "where a step's wall time goes", [
      ["step wall time (search total / steps)", (r) => r.wallMsPerStep],
      ["  decoder: onnxruntime model_run", (r) => r.modelRunMsPerStep],
      ["    of which in nodes (sum of kernel times)", (r) => r.nodesMsPerStep],
      ["  decoder: binding around model_run (feeds, outputs to JS)", (r) => r.decoderRunMsPerStep - r.modelRunMsPerStep],
      ["  embed_tokens run", (r) => r.embedRunMsPerStep],
      ["  cache reorder (host)", (r) => r.reorderMsPerStep],
      ["  rest of the step (mask, logits read back)", (r) => r.stepCallbackMsPerStep - r.decoderRunMsPerStep - r.embedRunMsPerStep - r.reorderMsPerStep],
      ["  beam search JS (log-softmax, processors, top-k over beams x vocab)", (r) => r.wallMsPerStep - r.stepCallbackMsPerStep],
    ]),
    "",
    ...table(results, "decoder nodes by role", roles.map((k) => [k, (r: Aggregate) => r.byRole[k] ?? 0] as [string, (r: Aggregate) => number])),
    "",
    ...table(results, "decoder nodes by op type (top 16)", [...ops.map((k) => [k, (r: Aggregate) => r.byOp[k] ?? 0] as [string, (r: Aggregate) => number]), ["all ops", (r) => sum(r.byOp)]]),
    "",
    ...results.flatMap((r) => [
      `Top nodes, ${r.dtype} (ms / step; shapes at the first measured step):`,
      "",
      "| node | op | shapes | ms / step |",
      "| --- | --- | --- | --- |",
      ...r.topNodes.map((n) => `| ${n.name} | ${n.op} | ${n.shapes} | ${n.ms.toFixed(2)} |`),
      "",
    ]),
  ];
  const text = lines.join("\n");
  console.log(text);
  if (!args.includes("--no-append")) appendFileSync("BENCHMARKS.md", text);
}

const childDtype = args.includes("--child") ? arg("child", "") : undefined;
if (childDtype !== undefined) await child(childDtype as SynthDtype);
else await parent();
