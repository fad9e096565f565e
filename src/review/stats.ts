import type { Db } from "../db.js";
import { type EarlyStoppingText, GENERATION_DEFAULTS, PARAM_NAMES, parseEarlyStopping, type RequestedParams } from "../generation/params.js";
import { decodeDtypes } from "../generation/reproduction.js";
import { QUALITY_FLAGS, type QualityFlag } from "../quality/types.js";
import { REVIEW_STATES, REVIEW_VERDICTS, type ReviewState } from "./verdict.js";
import { formatStep } from "./ladder.js";
import { untilNextCommit } from "../store/data-version.js";
import { dialect, type Dialect } from "../store/sql.js";

/**
 * Counts of quality flags and review states, for `stats` and /metrics: one SQL statement each.
 * Descriptions of works that left the inventory are not counted.
 */

export { REVIEW_STATES, type ReviewState };

export interface QualityCounts {
  descriptions: number;
  /** Descriptions with stored quality signals. */
  assessed: number;
  byFlag: { flag: QualityFlag; count: number }[];
  byReviewState: { state: ReviewState; count: number }[];
}

export interface ModelQualityCounts extends QualityCounts {
  /** Null for a person's texts. */
  modelId: string | null;
  /** The model's revision and each module's weights (dtype): null / empty for a person's texts and rows written before they were recorded. */
  modelRevision: string | null;
  dtypes: { module: string; dtype: string }[];
  /** The parameters that differ from the built-in defaults, in REVIEW_FALLBACK_LADDER syntax ("" = all defaults); null for a person's texts. */
  params: string | null;
  prompt: string | null;
}

// Flags are stored comma-separated: a whole flag matches, never a part of another.
function sums(sql: Dialect): string {
  const flags = QUALITY_FLAGS.map((f) => `${sql.countWhere(sql.inCommaList('d."qualityFlags"', `'${f}'`))} AS "f_${f}"`).join(", ");
  const states = REVIEW_STATES.map((s) => `${sql.countWhere(s === "UNREVIEWED" ? 'd."reviewState" IS NULL' : `d."reviewState" = '${s}'`)} AS "r_${s}"`).join(", ");
  return `COUNT(*) AS descriptions, ${sql.countWhere('d."qualityRisk" IS NOT NULL')} AS assessed, ${flags}, ${states}`;
}

type Row = Record<string, number | bigint | string | null>;
const n = (v: unknown) => Number(v ?? 0);

function counts(r: Row): QualityCounts {
  return {
    descriptions: n(r.descriptions),
    assessed: n(r.assessed),
    byFlag: QUALITY_FLAGS.map((flag) => ({ flag, count: n(r[`f_${flag}`]) })),
    byReviewState: REVIEW_STATES.map((state) => ({ state, count: n(r[`r_${state}`]) })),
  };
}

/** The current descriptions of active works: what the collection shows now (one reading per database version). */
export const currentQualityCounts = untilNextCommit(readCurrentQualityCounts);

async function readCurrentQualityCounts(db: Db): Promise<QualityCounts> {
  const [row] = await db.$queryRawUnsafe<Row[]>(
    `SELECT ${sums(dialect(db))} FROM "Artwork" a JOIN "Description" d ON d.id = a."currentDescriptionId" WHERE a.state = 'ACTIVE'`,
  );
  return counts(row ?? {});
}

const PARAM_COLUMNS = PARAM_NAMES.filter((p) => p !== "prompt");

/**
 * Every description of active works (history included, experiments' texts not: their reports
 * compare them), by model (its revision and dtypes) and parameter set: how each setting did, including the texts a newer
 * one replaced.
 */
export const qualityCountsByModel = untilNextCommit(readQualityCountsByModel);

async function readQualityCountsByModel(db: Db): Promise<ModelQualityCounts[]> {
  // The weights too: two revisions or dtypes of one model are two settings.
  const keys = ["modelId", "modelRevision", "dtypes", "prompt", ...PARAM_COLUMNS].map((c) => `d."${c}"`).join(", ");
  const SUMS = sums(dialect(db));
  const rows = await db.$queryRawUnsafe<Row[]>(
    `SELECT ${keys}, ${SUMS} FROM "Description" d JOIN "Artwork" a ON a.id = d."artworkId"
     WHERE a.state = 'ACTIVE' AND d.source = 'MODEL' AND d."experimentId" IS NULL
     GROUP BY ${keys}
     UNION ALL
     SELECT NULL AS "modelId", NULL AS "modelRevision", NULL AS dtypes, NULL AS prompt, ${PARAM_COLUMNS.map((c) => `NULL AS "${c}"`).join(", ")}, ${SUMS}
     FROM "Description" d JOIN "Artwork" a ON a.id = d."artworkId" WHERE a.state = 'ACTIVE' AND d.source = 'HUMAN'`,
  );
  // Rows whose settings read the same (a column NULL in older rows and its default) are one group.
  const groups = new Map<string, ModelQualityCounts>();
  for (const r of rows) {
    if (n(r.descriptions) === 0) continue;
    const g: ModelQualityCounts = {
      ...counts(r),
      modelId: (r.modelId as string | null) ?? null,
      modelRevision: (r.modelRevision as string | null) ?? null,
      dtypes: decodeDtypes(typeof r.dtypes === "string" ? r.dtypes : null),
      prompt: (r.prompt as string | null) ?? null,
      params: r.modelId == null ? null : paramsKey(r),
    };
    const key = JSON.stringify([g.modelId, g.modelRevision, g.dtypes, g.prompt, g.params]);
    const same = groups.get(key);
    if (!same) groups.set(key, g);
    else {
      same.descriptions += g.descriptions;
      same.assessed += g.assessed;
      g.byFlag.forEach((f, i) => (same.byFlag[i]!.count += f.count));
      g.byReviewState.forEach((r, i) => (same.byReviewState[i]!.count += r.count));
    }
  }
  return [...groups.values()]
    .sort((a, b) => b.descriptions - a.descriptions || String(a.modelId).localeCompare(String(b.modelId)) || String(a.params).localeCompare(String(b.params)));
}

/** A stored row's parameters that differ from the built-in defaults, canonically written. */
function paramsKey(r: Row): string {
  const differing: Record<string, unknown> = {};
  for (const name of PARAM_COLUMNS) {
    const raw = r[name];
    if (raw == null) continue;
    const flag = name === "imageSplitting" || name === "cleanMarkdown";
    const value = name === "earlyStopping" ? parseEarlyStopping(raw as EarlyStoppingText) : flag ? [true, 1, 1n, "1", "true"].includes(raw as never) : Number(raw);
    if (value !== GENERATION_DEFAULTS[name]) differing[name] = value;
  }
  return formatStep(differing as RequestedParams);
}

/** Reviews given, by verdict (every verdict ever recorded, including superseded ones). */
export async function reviewCounts(db: Db): Promise<{ verdict: (typeof REVIEW_VERDICTS)[number]; count: number }[]> {
  const groups = await db.review.groupBy({ by: ["verdict"], _count: { _all: true } });
  return REVIEW_VERDICTS.map((verdict) => ({ verdict, count: groups.find((g) => g.verdict === verdict)?._count._all ?? 0 }));
}
