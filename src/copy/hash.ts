import { createHash } from "node:crypto";
import type { Column } from "./plan.js";

/**
 * The content hash behind `artdesc db copy`'s verification. Pure.
 *
 * Each row is serialised canonically from the values Prisma hands back, which are already the same
 * JavaScript types on SQLite and PostgreSQL (Date, boolean, Uint8Array, bigint, number, string);
 * what still differs between the two stores is normalised here: a DateTime is its ISO instant (SQLite
 * keeps text, PostgreSQL timestamp(3)), bytes are base64 (Buffer or Uint8Array), a BigInt is its
 * decimal text (SQLite may hand back a number), a Float is its shortest round-trip text with -0 as 0,
 * a Boolean may come back as 0/1, and a Json value has its object keys sorted (jsonb reorders them).
 *
 * A table's hash is the sum modulo 2^256 of its rows' sha256 digests (a multiset hash): independent
 * of row order, because the two stores sort text keys by different collations, and computed in
 * constant memory while the rows stream past.
 */

export function canonicalValue(type: string, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  switch (type) {
    case "DateTime": {
      const d = value instanceof Date ? value : new Date(value as string);
      if (Number.isNaN(d.getTime())) throw new TypeError(`not a date: ${String(value)}`);
      return d.toISOString();
    }
    case "Bytes":
      if (!(value instanceof Uint8Array)) throw new TypeError("bytes expected");
      return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64");
    case "BigInt":
      return BigInt(value as bigint | number | string).toString();
    case "Boolean":
      return value === true || value === 1 || value === 1n;
    case "Float":
    case "Int": {
      const n = Number(value);
      if (Number.isNaN(n) || !Number.isFinite(n)) return String(n);
      return Object.is(n, -0) ? 0 : n;
    }
    case "Json":
      return sortKeys(typeof value === "string" ? JSON.parse(value) : value);
    case "Decimal":
      return String(value);
    default:
      // String and enums.
      return String(value);
  }
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === "object") {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

/** One row as canonical text: the canonical values of `columns`, in their order. */
export function canonicalRow(columns: readonly Column[], row: Record<string, unknown>): string {
  return JSON.stringify(columns.map((c) => canonicalValue(c.type, row[c.name])));
}

const MOD = 1n << 256n;

/** A table's row count and multiset hash, fed one row at a time. */
export class TableHash {
  rows = 0;
  private sum = 0n;

  constructor(private readonly columns: readonly Column[]) {}

  add(row: Record<string, unknown>): void {
    const digest = createHash("sha256").update(canonicalRow(this.columns, row)).digest("hex");
    this.sum = (this.sum + BigInt(`0x${digest}`)) % MOD;
    this.rows++;
  }

  /** 64 hex digits. */
  hex(): string {
    return this.sum.toString(16).padStart(64, "0");
  }
}

export interface TableVerdict {
  model: string;
  sourceRows: number;
  targetRows: number;
  sourceHash: string;
  targetHash: string;
  same: boolean;
}

export function compareTables(model: string, source: TableHash, target: TableHash): TableVerdict {
  const sourceHash = source.hex();
  const targetHash = target.hex();
  return {
    model,
    sourceRows: source.rows,
    targetRows: target.rows,
    sourceHash,
    targetHash,
    same: source.rows === target.rows && sourceHash === targetHash,
  };
}

/** The verification table printed at the end of a copy: one line per table. */
export function formatVerdicts(verdicts: readonly TableVerdict[]): string[] {
  const width = Math.max(5, ...verdicts.map((v) => v.model.length));
  return verdicts.map((v) => {
    const rows = v.sourceRows === v.targetRows ? `${v.sourceRows} rows` : `${v.sourceRows} rows in the source, ${v.targetRows} in the target`;
    const hash = v.sourceHash === v.targetHash ? `sha256-sum ${v.sourceHash.slice(0, 16)}` : `hash ${v.sourceHash.slice(0, 16)} != ${v.targetHash.slice(0, 16)}`;
    return `${v.same ? "ok      " : "DIFFERS "} ${v.model.padEnd(width)}  ${rows}, ${hash}`;
  });
}
