/**
 * What `artdesc db copy` copies, in which order: derived from the data model Prisma generated from
 * prisma/schema.prisma (the Pothos generator's copy of it carries ids, required flags and foreign
 * keys), so a model added to the schema is copied without anyone touching this file. Pure.
 */

/** The parts of Prisma's DMMF field description the plan reads. */
export interface ModelField {
  name: string;
  kind: "scalar" | "enum" | "object" | "unsupported";
  type: string;
  isRequired: boolean;
  isList: boolean;
  isId: boolean;
  hasDefaultValue: boolean;
  isUpdatedAt?: boolean;
  relationFromFields?: readonly string[];
}

export interface DataModel {
  models: Record<string, { fields: readonly ModelField[]; primaryKey: { fields: readonly string[] } | null }>;
}

/**
 * Models that are deliberately not copied, and why. Naming a model that is not in the data model
 * is an error (the list went stale).
 */
export const NOT_COPIED: Readonly<Record<string, string>> = {
  Lease:
    "locks held by processes of the source deployment (sync lock, job claims): on the target they would block its own sync and workers until they expire, and the jobs they guard are copied with their status",
  Heartbeat: "liveness of the source deployment's processes: on the target they would show workers that do not run there",
};

/** A scalar column the copy reads and writes (enums included). */
export interface Column {
  name: string;
  /** Prisma's scalar type (Int, String, DateTime, Boolean, Float, BigInt, Bytes, Json, Decimal) or "Enum". */
  type: string;
}

export interface TablePlan {
  model: string;
  /** The client's property for the model (`artworkEmbedding`). */
  delegate: string;
  /** The single-column primary key that orders, pages and resumes the copy. */
  key: Column;
  /** An integer key filled by a sequence (autoincrement): the target's sequence is moved past the copied ids. */
  sequence: boolean;
  /** Every scalar column, in schema order. */
  columns: Column[];
  /**
   * Nullable foreign-key columns written as NULL first and set after every table is copied: they
   * close a cycle (Artwork.currentDescriptionId -> Description -> Artwork).
   */
  deferred: string[];
  /** `@updatedAt` columns: Prisma sets them on every update, so the deferred update writes the source's values back. */
  updatedAt: string[];
}

export interface CopyPlan {
  /** Parents before children (foreign-key order). */
  tables: TablePlan[];
  notCopied: { model: string; why: string }[];
}

/** The data model cannot be copied as it is (a composite key, a cycle of required keys, a stale NOT_COPIED). */
export class CopyPlanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CopyPlanError";
  }
}

const KEY_TYPES = new Set(["Int", "BigInt", "String"]);

export function copyPlan(datamodel: DataModel, notCopied: Readonly<Record<string, string>> = NOT_COPIED): CopyPlan {
  const names = Object.keys(datamodel.models);
  for (const model of Object.keys(notCopied)) {
    if (!names.includes(model)) throw new CopyPlanError(`NOT_COPIED names ${model}, which is not a model of the schema`);
  }
  const copied = names.filter((n) => !(n in notCopied));
  const tables = new Map<string, TablePlan>();
  /** model -> foreign keys: the columns and the model they point at. */
  const edges = new Map<string, { columns: string[]; target: string; optional: boolean }[]>();
  for (const model of copied) {
    const { fields, primaryKey } = datamodel.models[model]!;
    const ids = fields.filter((f) => f.isId);
    if (primaryKey || ids.length !== 1) throw new CopyPlanError(`${model} has no single-column primary key: the copy pages and resumes by one`);
    const id = ids[0]!;
    if (!KEY_TYPES.has(id.type)) throw new CopyPlanError(`${model}.${id.name} is a ${id.type}: the copy pages by an Int, BigInt or String key`);
    const columns = fields
      .filter((f) => f.kind === "scalar" || f.kind === "enum")
      .map((f) => {
        if (f.isList) throw new CopyPlanError(`${model}.${f.name} is a list: not supported by the copy`);
        return { name: f.name, type: f.kind === "enum" ? "Enum" : f.type };
      });
    const unsupported = fields.find((f) => f.kind === "unsupported");
    if (unsupported) throw new CopyPlanError(`${model}.${unsupported.name} has an Unsupported type: Prisma cannot read it`);
    tables.set(model, {
      model,
      delegate: model[0]!.toLowerCase() + model.slice(1),
      key: { name: id.name, type: id.type },
      sequence: id.type === "Int" && id.hasDefaultValue,
      columns,
      deferred: [],
      updatedAt: fields.filter((f) => f.isUpdatedAt).map((f) => f.name),
    });
    const byName = new Map(fields.map((f) => [f.name, f]));
    edges.set(
      model,
      fields
        .filter((f) => f.kind === "object" && f.relationFromFields?.length)
        .filter((f) => !(f.type in notCopied))
        .map((f) => ({
          columns: [...f.relationFromFields!],
          target: f.type,
          optional: f.relationFromFields!.every((c) => byName.get(c)?.isRequired === false),
        })),
    );
  }
  // Kahn's algorithm in schema order; a cycle is broken at its first nullable foreign key.
  const order: TablePlan[] = [];
  const done = new Set<string>();
  const pending = [...copied];
  while (pending.length) {
    const ready = pending.find((m) => edges.get(m)!.every((e) => done.has(e.target)));
    if (ready) {
      order.push(tables.get(ready)!);
      done.add(ready);
      pending.splice(pending.indexOf(ready), 1);
      continue;
    }
    let broken = false;
    for (const m of pending) {
      const list = edges.get(m)!;
      const i = list.findIndex((e) => !done.has(e.target) && e.optional);
      if (i < 0) continue;
      tables.get(m)!.deferred.push(...list[i]!.columns);
      list.splice(i, 1);
      broken = true;
      break;
    }
    if (!broken) throw new CopyPlanError(`a cycle of required foreign keys among ${pending.join(", ")}: no order can copy them`);
  }
  return { tables: order, notCopied: Object.entries(notCopied).map(([model, why]) => ({ model, why })) };
}
