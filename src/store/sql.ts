import { type DatabaseKind, type Db, kindOf } from "../db.js";

/**
 * The SQL dialect differences between SQLite and PostgreSQL, one home each, for the statements
 * Prisma cannot express. Statements are written once with double-quoted identifiers (PostgreSQL
 * folds unquoted ones to lower case; SQLite reads a quoted name as the same identifier) and these
 * helpers for the parts the two databases spell differently.
 */
export interface Dialect {
  kind: DatabaseKind;
  /** A bound parameter: adds `value` to `params` and returns its placeholder (`?` or `$n`). */
  param(params: unknown[], value: unknown): string;
  /** The number of rows where `condition` holds (0 when none): an aggregate. */
  countWhere(condition: string): string;
  /** `item` (an SQL expression) is one whole entry of the comma-separated list in `column`. */
  inCommaList(column: string, item: string): string;
  /** The integers of a JSON array bound as text (`placeholder`), as a subquery's rows. */
  jsonIntegers(placeholder: string): string;
  /** A boolean column is true, and is false (SQLite stores them as 1 and 0). */
  isTrue(column: string): string;
  isFalse(column: string): string;
  /** A text value for comparison with a DateTime column. */
  time(d: Date): string;
  /** A comparison with the DateTime `column`'s bound `placeholder`. */
  timeParam(placeholder: string): string;
  /** A JSON array of objects, one per row of the subquery: `fields` maps keys to SQL expressions; the result is JSON text. */
  jsonArrayOfObjects(fields: Record<string, string>): string;
  /** The number at `key` of the JSON text in `column`, NULL when the text is not JSON or the value is not a number. */
  jsonNumber(column: string, key: string): string;
}

export const SQLITE_DIALECT: Dialect = {
  kind: "sqlite",
  param: (params, value) => (params.push(value), "?"),
  countWhere: (condition) => `COALESCE(SUM(${condition}), 0)`,
  inCommaList: (column, item) => `instr(',' || ${column} || ',', ',' || ${item} || ',') > 0`,
  jsonIntegers: (placeholder) => `SELECT value FROM json_each(${placeholder})`,
  isTrue: (column) => `${column} = 1`,
  isFalse: (column) => `${column} = 0`,
  // Prisma stores DateTime as "2026-11-27T15:53:45.830+00:00" in SQLite.
  time: (d) => d.toISOString().replace("Z", "+00:00"),
  timeParam: (placeholder) => placeholder,
  jsonArrayOfObjects: (fields) => `json_group_array(json_object(${Object.entries(fields).map(([k, v]) => `'${k}', ${v}`).join(", ")}))`,
  jsonNumber: (column, key) => `CASE WHEN json_valid(${column}) AND json_type(${column}, '$.${key}') IN ('integer', 'real') THEN json_extract(${column}, '$.${key}') END`,
};

export const POSTGRESQL_DIALECT: Dialect = {
  kind: "postgresql",
  param: (params, value) => (params.push(value), `$${params.length}`),
  countWhere: (condition) => `COUNT(*) FILTER (WHERE ${condition})`,
  inCommaList: (column, item) => `position(',' || ${item}::text || ',' in ',' || ${column} || ',') > 0`,
  jsonIntegers: (placeholder) => `SELECT jsonb_array_elements_text(${placeholder}::jsonb)::int`,
  isTrue: (column) => column,
  isFalse: (column) => `NOT ${column}`,
  // Prisma keeps DateTime as timestamp(3) without time zone, in UTC.
  time: (d) => d.toISOString().replace("Z", ""),
  timeParam: (placeholder) => `${placeholder}::timestamp`,
  jsonArrayOfObjects: (fields) => `COALESCE(json_agg(json_build_object(${Object.entries(fields).map(([k, v]) => `'${k}', ${v}`).join(", ")})), '[]')::text`,
  // pg_input_is_valid arrives in PostgreSQL 16; the function below (made by the migrator) reads text as JSON or NULL.
  jsonNumber: (column, key) => `CASE WHEN jsonb_typeof(artdesc_try_jsonb(${column}) -> '${key}') = 'number' THEN (artdesc_try_jsonb(${column}) ->> '${key}')::float8 END`,
};

/** The dialect of `db`'s database. */
export function dialect(db: Db): Dialect {
  return kindOf(db) === "postgresql" ? POSTGRESQL_DIALECT : SQLITE_DIALECT;
}

/** Functions the PostgreSQL dialect's statements call, (re)made by migratePostgres after the migrations. */
export const POSTGRES_SQL_FUNCTIONS = `
-- Reads text as JSON, NULL when it is not (pg_input_is_valid arrives in PostgreSQL 16).
CREATE OR REPLACE FUNCTION artdesc_try_jsonb(value text) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  RETURN value::jsonb;
EXCEPTION WHEN others THEN
  RETURN NULL;
END $$;
`;
