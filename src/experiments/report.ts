import { QUALITY_FLAGS, type QualityCheck, type QualityFlag } from "../quality/types.js";
import { type Arm, formatArm } from "./arms.js";

/**
 * The report of an experiment: its arms side by side (speed, length, finish reasons, quality
 * flags, risk, DEPICTS recall), and each arm against the first on the works both described.
 * Pure: the figures come in as plain rows (store.ts reads them), the report goes out as data
 * (GraphQL, --json) or Markdown.
 */

export type ExperimentState = "RUNNING" | "FINISHED" | "CANCELLED";

/** Jobs by status: the one type `status { jobs }` uses too. */
export type { JobCounts } from "../ops/status.js";
import type { JobCounts } from "../ops/status.js";

export const NO_JOBS: JobCounts = { queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 };

/** What DEPICTS_MISSING judged on one text: depicted things it could judge, and those the text names. */
export interface DepictsJudgement {
  judged: number;
  mentioned: number;
}

/** One description an arm wrote, reduced to the figures the report needs. */
export interface ReportDescription {
  arm: string;
  artworkId: number;
  /** timings.totalMs: this image's own time (its share of a batch's decode); null when not recorded. */
  totalMs: number | null;
  generatedTokens: number | null;
  words: number;
  /** "eos", "length" (max tokens: truncation), "stop" (target length reached). */
  finishReason: string | null;
  /** Null when the text was not assessed. */
  flags: QualityFlag[] | null;
  risk: number | null;
  /** Null when nothing depicted could be judged (no P180, only people or ideas) or not assessed. */
  depicts: DepictsJudgement | null;
  /** The beams and token limit it was decoded with (the arm's, else the worker's defaults). */
  numBeams: number | null;
  maxNewTokens: number | null;
  /** Every generation parameter it was made with, and the model's revision and dtypes, as text (absent: not compared). */
  settings?: Record<string, string>;
}

export interface ExperimentFacts {
  id: number;
  name: string | null;
  seed: number;
  /** Works asked for. */
  sampleSize: number;
  /** Works picked (fewer than asked when fewer qualified). */
  sampled: number;
  creator: string | null;
  createdAt: Date;
  cancelledAt: Date | null;
}

export interface ReportInput {
  experiment: ExperimentFacts;
  arms: Arm[];
  /** Job counts by arm name. */
  jobs: Record<string, JobCounts>;
  descriptions: ReportDescription[];
}

export interface Spread {
  n: number;
  mean: number;
  median: number;
}

export interface Share {
  count: number;
  /** count / the arm's assessed descriptions (flags) or descriptions (finish reasons); 0 when none. */
  share: number;
}

export interface ArmReport {
  name: string;
  /** The arm's parameters in ladder syntax ("numBeams=4,maxNewTokens=256"; "defaults"). */
  params: string;
  jobs: JobCounts;
  /** Jobs of the arm: one per sampled work. */
  total: number;
  /** Descriptions written. */
  described: number;
  /** The beams and token limits the texts were decoded with ("4 beams, 256 tokens"), distinct, in order seen. */
  asRun: string[];
  /**
   * Settings the arm's texts were not all made with alike ("repetitionPenalty 1 (2) or 1.3 (1)"):
   * workers with other DESCRIBE_* defaults, or another model revision, ran some of its jobs. Empty when alike.
   */
  mixed: string[];
  secondsPerImage: Spread | null;
  generatedTokens: Spread | null;
  words: Spread | null;
  finishReasons: ({ reason: string } & Share)[];
  /** Descriptions with quality signals. */
  assessed: number;
  flags: ({ flag: QualityFlag } & Share)[];
  meanRisk: number | null;
  /** Depicted things (P180, people and ideas skipped) the texts name, pooled over the arm's texts. */
  depictsRecall: { recall: number | null; mentioned: number; judged: number; texts: number };
}

export interface ArmComparison {
  arm: string;
  baseline: string;
  /** Works both arms described: the figures below are computed on these only. */
  pairedWorks: number;
  /** Mean seconds per image of the arm / of the baseline. */
  secondsRatio: number | null;
  /** Mean of (arm risk - baseline risk) per work, with the half-width of its normal 95% interval. */
  riskDifference: { mean: number; ci95: number | null; n: number } | null;
  /** Pooled DEPICTS recall of the arm minus the baseline's, on works judged in both. */
  recallDifference: number | null;
  /** Share of texts cut at max tokens (finish "length"): the arm's minus the baseline's. */
  lengthFinishDifference: number | null;
}

export interface ExperimentReport {
  id: number;
  name: string | null;
  state: ExperimentState;
  seed: number;
  sampleSize: number;
  sampled: number;
  creator: string | null;
  createdAt: string;
  jobs: JobCounts;
  arms: ArmReport[];
  comparisons: ArmComparison[];
}

const FINISH_ORDER = ["eos", "length", "stop"];

/** Running until no job is queued or running; cancelled once cancelled. */
export function experimentState(jobs: JobCounts, cancelledAt: Date | null): ExperimentState {
  if (cancelledAt) return "CANCELLED";
  return jobs.queued + jobs.running > 0 ? "RUNNING" : "FINISHED";
}

export function addCounts(a: JobCounts, b: JobCounts): JobCounts {
  return { queued: a.queued + b.queued, running: a.running + b.running, succeeded: a.succeeded + b.succeeded, failed: a.failed + b.failed, cancelled: a.cancelled + b.cancelled };
}

export function jobTotal(j: JobCounts): number {
  return j.queued + j.running + j.succeeded + j.failed + j.cancelled;
}

export function spread(values: readonly number[]): Spread | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { n: values.length, mean: mean(values)!, median };
}

function mean(values: readonly number[]): number | null {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
}

const share = (count: number, of: number): Share => ({ count, share: of > 0 ? count / of : 0 });

/**
 * DEPICTS_MISSING's stored check (src/quality/checks/depicts-missing.ts): `value` is the share of
 * judged depicted things the text misses, `detail` says "…; N judged…". Null when nothing was judged.
 */
export function depictsJudgement(checks: readonly QualityCheck[]): DepictsJudgement | null {
  const check = checks.find((c) => c.name === "depictsMissing");
  if (!check) return null;
  const m = /(?:^|; )(\d+) judged\b/.exec(check.detail);
  const judged = m ? Number(m[1]) : 0;
  if (judged === 0 || !(check.value >= 0 && check.value <= 1)) return null;
  return { judged, mentioned: Math.round(judged * (1 - check.value)) };
}

function pooledRecall(judgements: readonly DepictsJudgement[]): { recall: number | null; mentioned: number; judged: number } {
  const judged = judgements.reduce((s, j) => s + j.judged, 0);
  const mentioned = judgements.reduce((s, j) => s + j.mentioned, 0);
  return { recall: judged > 0 ? mentioned / judged : null, mentioned, judged };
}

function armReport(arm: Arm, jobs: JobCounts, rows: readonly ReportDescription[]): ArmReport {
  const seconds = rows.flatMap((d) => (d.totalMs != null && Number.isFinite(d.totalMs) ? [d.totalMs / 1000] : []));
  const tokens = rows.flatMap((d) => (d.generatedTokens != null ? [d.generatedTokens] : []));
  const reasons = new Map<string, number>();
  for (const d of rows) reasons.set(d.finishReason ?? "unknown", (reasons.get(d.finishReason ?? "unknown") ?? 0) + 1);
  const rank = (r: string) => (FINISH_ORDER.includes(r) ? FINISH_ORDER.indexOf(r) : FINISH_ORDER.length);
  const assessed = rows.filter((d) => d.flags !== null);
  const risks = assessed.flatMap((d) => (d.risk != null ? [d.risk] : []));
  const judgements = rows.flatMap((d) => (d.depicts ? [d.depicts] : []));
  return {
    name: arm.name,
    params: formatArm(arm.params),
    jobs,
    total: jobTotal(jobs),
    described: rows.length,
    asRun: [...new Set(rows.map((d) => `${d.numBeams ?? "?"} beam${d.numBeams === 1 ? "" : "s"}, ${d.maxNewTokens ?? "?"} tokens`))],
    mixed: mixedSettings(rows),
    secondsPerImage: spread(seconds),
    generatedTokens: spread(tokens),
    words: spread(rows.map((d) => d.words)),
    finishReasons: [...new Set([...FINISH_ORDER, ...reasons.keys()])]
      .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))
      .map((reason) => ({ reason, ...share(reasons.get(reason) ?? 0, rows.length) })),
    assessed: assessed.length,
    flags: QUALITY_FLAGS.map((flag) => ({ flag, ...share(assessed.filter((d) => d.flags!.includes(flag)).length, assessed.length) })),
    meanRisk: mean(risks),
    depictsRecall: { ...pooledRecall(judgements), texts: judgements.length },
  };
}

/** Each setting whose value differs among the texts, with how many texts had each value (in order seen). */
export function mixedSettings(rows: readonly Pick<ReportDescription, "settings">[]): string[] {
  const values = new Map<string, Map<string, number>>();
  for (const d of rows) {
    for (const [name, value] of Object.entries(d.settings ?? {})) {
      const seen = values.get(name) ?? new Map<string, number>();
      seen.set(value, (seen.get(value) ?? 0) + 1);
      values.set(name, seen);
    }
  }
  const short = (v: string) => (v.length > 40 ? `${JSON.stringify(v.slice(0, 37))}…` : v.includes(" ") ? JSON.stringify(v) : v);
  return [...values]
    .filter(([, seen]) => seen.size > 1)
    .map(([name, seen]) => `${name} ${[...seen].map(([v, n]) => `${short(v)} (${n})`).join(" or ")}`);
}

/** The arm against the baseline, on the works both described. */
export function compareArms(arm: string, baseline: string, rows: readonly ReportDescription[]): ArmComparison {
  const of = (name: string) => new Map(rows.filter((d) => d.arm === name).map((d) => [d.artworkId, d]));
  const a = of(arm);
  const b = of(baseline);
  const pairs = [...a.keys()].filter((id) => b.has(id)).map((id) => [a.get(id)!, b.get(id)!] as const);
  const meanOf = (xs: (number | null)[]) => mean(xs.filter((x): x is number => x != null && Number.isFinite(x)));
  const secondsA = meanOf(pairs.map(([x]) => x.totalMs));
  const secondsB = meanOf(pairs.map(([, y]) => y.totalMs));
  const diffs = pairs.flatMap(([x, y]) => (x.risk != null && y.risk != null ? [x.risk - y.risk] : []));
  const d = mean(diffs);
  let ci95: number | null = null;
  if (d !== null && diffs.length >= 2) {
    const variance = diffs.reduce((s, v) => s + (v - d) ** 2, 0) / (diffs.length - 1);
    ci95 = 1.96 * Math.sqrt(variance / diffs.length);
  }
  const judgedBoth = pairs.filter(([x, y]) => x.depicts && y.depicts);
  const recallA = pooledRecall(judgedBoth.map(([x]) => x.depicts!)).recall;
  const recallB = pooledRecall(judgedBoth.map(([, y]) => y.depicts!)).recall;
  const lengthShare = (side: 0 | 1) => pairs.filter((p) => p[side].finishReason === "length").length / pairs.length;
  return {
    arm,
    baseline,
    pairedWorks: pairs.length,
    secondsRatio: secondsA !== null && secondsB !== null && secondsB > 0 ? secondsA / secondsB : null,
    riskDifference: d === null ? null : { mean: d, ci95, n: diffs.length },
    recallDifference: recallA !== null && recallB !== null ? recallA - recallB : null,
    lengthFinishDifference: pairs.length ? lengthShare(0) - lengthShare(1) : null,
  };
}

export function buildReport(input: ReportInput): ExperimentReport {
  const { experiment: e, arms } = input;
  const jobsOf = (name: string) => input.jobs[name] ?? NO_JOBS;
  const jobs = arms.map((a) => jobsOf(a.name)).reduce(addCounts, NO_JOBS);
  const baseline = arms[0]?.name;
  return {
    id: e.id,
    name: e.name,
    state: experimentState(jobs, e.cancelledAt),
    seed: e.seed,
    sampleSize: e.sampleSize,
    sampled: e.sampled,
    creator: e.creator,
    createdAt: e.createdAt.toISOString(),
    jobs,
    arms: arms.map((a) => armReport(a, jobsOf(a.name), input.descriptions.filter((d) => d.arm === a.name))),
    comparisons: baseline === undefined ? [] : arms.slice(1).map((a) => compareArms(a.name, baseline, input.descriptions)),
  };
}

// ---------------------------------------------------------------------------------------------
// Markdown

const dash = "–";
const pct = (x: number) => `${Math.round(x * 100)}%`;
const num = (x: number, digits: number) => x.toFixed(digits);
const seconds = (x: number) => num(x, x < 10 ? 2 : 1);
const signed = (x: number, digits: number) => `${x > 0 ? "+" : x < 0 ? "−" : "±"}${Math.abs(x).toFixed(digits)}`;
/** A table cell: pipes and line breaks would break the row. */
const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/[\r\n]+/g, " ");

/** Each arm's texts of its jobs: "a 12/50, b 8/50 (1 failed, 2 cancelled)". */
export function armsProgress(arms: readonly { name: string; jobs: JobCounts }[]): string {
  return arms
    .map(({ name, jobs }) => {
      const extra = [jobs.failed ? `${jobs.failed} failed` : "", jobs.cancelled ? `${jobs.cancelled} cancelled` : ""].filter(Boolean).join(", ");
      return `${name} ${jobs.succeeded}/${jobTotal(jobs)}${extra ? ` (${extra})` : ""}`;
    })
    .join(", ");
}

/** One line of progress: "a 12/50, b 8/50 (1 failed); 2 running, 88 queued", or "…; finished". */
export function progressLine(arms: readonly { name: string; jobs: JobCounts }[], state: ExperimentState): string {
  const total = arms.map((a) => a.jobs).reduce(addCounts, NO_JOBS);
  return `${armsProgress(arms)}; ${state === "RUNNING" ? `${total.running} running, ${total.queued} queued` : state.toLowerCase()}`;
}

export function renderMarkdown(r: ExperimentReport): string {
  const lines: string[] = [];
  lines.push(`# Experiment ${r.id}${r.name ? `: ${r.name}` : ""}`, "");
  const sample = r.sampled < r.sampleSize ? `${r.sampled} works (${r.sampleSize} asked for; no more qualified)` : `${r.sampled} works`;
  lines.push(
    `${r.state === "RUNNING" ? "Running" : r.state === "FINISHED" ? "Finished" : "Cancelled"}: ${armsProgress(r.arms)}` +
      `${r.state === "RUNNING" ? ` (${r.jobs.running} running, ${r.jobs.queued} queued)` : ""}. ` +
      `Sample: ${sample}${r.creator ? ` by ${r.creator}` : ""}, seed ${r.seed}; created ${r.createdAt}.`,
    "",
  );
  const head = `| | ${r.arms.map((a) => `**${cell(a.name)}**`).join(" | ")} |`;
  lines.push(head, `|---|${r.arms.map(() => "---").join("|")}|`);
  const row = (label: string, f: (a: ArmReport) => string) => lines.push(`| ${label} | ${r.arms.map((a) => cell(f(a))).join(" | ")} |`);
  row("parameters", (a) => `\`${a.params}\``);
  row("as run", (a) => (a.asRun.length ? a.asRun.join("; ") : dash));
  if (r.arms.some((a) => a.mixed.length)) row("**mixed settings**", (a) => (a.mixed.length ? a.mixed.join("; ") : "none"));
  row("described / jobs", (a) => `${a.described} / ${a.total}${a.jobs.failed ? ` (${a.jobs.failed} failed)` : ""}`);
  row("seconds per image (mean / median)", (a) => (a.secondsPerImage ? `${seconds(a.secondsPerImage.mean)} / ${seconds(a.secondsPerImage.median)}` : dash));
  row("generated tokens (mean)", (a) => (a.generatedTokens ? num(a.generatedTokens.mean, 1) : dash));
  row("words (mean)", (a) => (a.words ? num(a.words.mean, 1) : dash));
  row("finish eos / length / stop", (a) => (a.described ? ["eos", "length", "stop"].map((f) => pct(a.finishReasons.find((x) => x.reason === f)!.share)).join(" / ") : dash));
  for (const flag of QUALITY_FLAGS) row(flag, (a) => (a.assessed ? pct(a.flags.find((f) => f.flag === flag)!.share) : dash));
  row("mean risk", (a) => (a.meanRisk === null ? dash : num(a.meanRisk, 3)));
  row("DEPICTS recall (named / judged)", (a) =>
    a.depictsRecall.recall === null ? dash : `${pct(a.depictsRecall.recall)} (${a.depictsRecall.mentioned}/${a.depictsRecall.judged})`,
  );
  lines.push("");
  for (const c of r.comparisons) {
    lines.push(`**${cell(c.arm)} against ${cell(c.baseline)}** on the ${c.pairedWorks} works both described:`, "");
    if (c.pairedWorks === 0) {
      lines.push("- nothing to compare yet", "");
      continue;
    }
    if (c.secondsRatio !== null) lines.push(`- ${num(c.secondsRatio, 2)}× the seconds per image`);
    if (c.lengthFinishDifference !== null) lines.push(`- cut at max tokens (finish "length"): ${signed(c.lengthFinishDifference * 100, 0)} points`);
    if (c.riskDifference) {
      const ci = c.riskDifference.ci95 === null ? "" : ` (95% interval ±${num(c.riskDifference.ci95, 3)})`;
      lines.push(`- mean risk ${signed(c.riskDifference.mean, 3)}${ci}`);
    }
    lines.push(c.recallDifference === null ? "- DEPICTS recall: no work judged in both" : `- DEPICTS recall ${signed(c.recallDifference * 100, 0)} points`);
    lines.push("");
  }
  lines.push(
    "Seconds are each image's own time (its share of a batch's decode). Flags and risk are shares of the assessed texts " +
      "(docs/quality.md); DEPICTS recall is the share of depicted things (people and ideas skipped) the texts name. " +
      "Parameters an arm leaves unset take the worker's DESCRIBE_* defaults (\"as run\")." +
      (r.arms.some((a) => a.mixed.length)
        ? " **Mixed settings**: some arm's texts were made with different settings (workers with other defaults, or another model revision), so its figures mix them."
        : ""),
  );
  return lines.join("\n");
}
