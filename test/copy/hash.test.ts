import { describe, expect, it } from "vitest";
import { canonicalRow, canonicalValue, compareTables, formatVerdicts, TableHash } from "../../src/copy/hash.js";
import type { Column } from "../../src/copy/plan.js";

const columns: Column[] = [
  { name: "id", type: "Int" },
  { name: "at", type: "DateTime" },
  { name: "flag", type: "Boolean" },
  { name: "bytes", type: "Bytes" },
  { name: "big", type: "BigInt" },
  { name: "score", type: "Float" },
  { name: "json", type: "Json" },
  { name: "text", type: "String" },
];
const row = {
  id: 1,
  at: new Date("2026-12-01T05:00:00.123Z"),
  flag: true,
  bytes: new Uint8Array([0, 1, 254, 255]),
  big: 123456789012345n,
  score: 0.1 + 0.2,
  json: { b: 1, a: [1, { d: 2, c: 3 }] },
  text: "María 👑\u0001",
};

describe("canonical rows", () => {
  it("write the representations SQLite and PostgreSQL hand back for one value the same way", () => {
    const other = {
      ...row,
      at: "2026-12-01T05:00:00.123+00:00",
      flag: 1,
      bytes: Buffer.from([0, 1, 254, 255]),
      big: 123456789012345,
      json: '{"a":[1,{"c":3,"d":2}],"b":1}',
    };
    expect(canonicalRow(columns, other)).toBe(canonicalRow(columns, row));
    expect(canonicalValue("Float", -0)).toBe(0);
    expect(canonicalValue("Float", 0.30000000000000004)).not.toBe(canonicalValue("Float", 0.3));
    expect(canonicalValue("String", null)).toBeNull();
    expect(canonicalValue("String", undefined)).toBeNull();
    expect(() => canonicalValue("DateTime", "not a date")).toThrow(TypeError);
  });

  it("tell apart every change: a value, a null, a column order, a millisecond, one byte", () => {
    const base = canonicalRow(columns, row);
    for (const changed of [
      { ...row, text: "Maria 👑\u0001" },
      { ...row, text: null },
      { ...row, flag: false },
      { ...row, at: new Date("2026-12-01T05:00:00.124Z") },
      { ...row, bytes: new Uint8Array([0, 1, 254]) },
      { ...row, big: 123456789012346n },
    ]) {
      expect(canonicalRow(columns, changed)).not.toBe(base);
    }
    expect(canonicalRow([...columns].reverse(), row)).not.toBe(base);
    // A null is not the text "null", nor an empty string.
    expect(canonicalRow(columns, { ...row, text: "null" })).not.toBe(canonicalRow(columns, { ...row, text: null }));
    expect(canonicalRow(columns, { ...row, text: "" })).not.toBe(canonicalRow(columns, { ...row, text: null }));
  });
});

describe("table hashes", () => {
  const rows = [1, 2, 3].map((id) => ({ ...row, id, text: `row ${id}` }));
  const hash = (list: typeof rows) => {
    const h = new TableHash(columns);
    for (const r of list) h.add(r);
    return h;
  };

  it("do not depend on row order (the stores sort text keys differently)", () => {
    expect(hash([...rows].reverse()).hex()).toBe(hash(rows).hex());
    expect(hash(rows).hex()).toMatch(/^[0-9a-f]{64}$/);
  });

  it("see a missing, duplicated or changed row", () => {
    const all = hash(rows);
    expect(compareTables("T", all, hash(rows.slice(0, 2))).same).toBe(false);
    const dup = compareTables("T", all, hash([...rows, rows[0]!]));
    expect(dup.same).toBe(false);
    expect(dup.targetRows).toBe(4);
    expect(compareTables("T", all, hash([rows[0]!, rows[1]!, { ...rows[2]!, score: 0.3 }])).same).toBe(false);
    // Two copies of one row are not the same as no row (a XOR would cancel them).
    expect(hash([rows[0]!, rows[0]!]).hex()).not.toBe(new TableHash(columns).hex());
    expect(compareTables("T", all, hash(rows)).same).toBe(true);
  });

  it("print one line per table, saying which differ", () => {
    const lines = formatVerdicts([compareTables("Artwork", hash(rows), hash(rows)), compareTables("Job", hash(rows), hash(rows.slice(1)))]);
    expect(lines[0]).toMatch(/^ok +Artwork +3 rows, sha256-sum [0-9a-f]{16}$/);
    expect(lines[1]).toMatch(/^DIFFERS +Job +3 rows in the source, 2 in the target, hash [0-9a-f]{16} != [0-9a-f]{16}$/);
  });
});
