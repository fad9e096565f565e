import { describe, expect, it } from "vitest";
import { schemaPlan } from "../../src/copy/copy.js";
import { copyPlan, CopyPlanError, type DataModel, type ModelField, NOT_COPIED } from "../../src/copy/plan.js";
import { Prisma } from "../../src/db.js";
import { getDatamodel } from "../../src/generated/pothos-types.js";

const datamodel = getDatamodel().datamodel as unknown as DataModel;

const field = (name: string, o: Partial<ModelField> = {}): ModelField => ({
  name,
  kind: "scalar",
  type: "Int",
  isRequired: true,
  isList: false,
  isId: false,
  hasDefaultValue: false,
  ...o,
});
const id = field("id", { isId: true, hasDefaultValue: true });
const fk = (name: string, target: string, column: string) => field(name, { kind: "object", type: target, relationFromFields: [column] });

describe("the copy plan of this schema", () => {
  it("copies every model of the Prisma client except the ones NOT_COPIED names, each with a reason", () => {
    const plan = schemaPlan();
    const planned = [...plan.tables.map((t) => t.model), ...plan.notCopied.map((n) => n.model)].sort();
    expect(planned).toEqual(Object.values(Prisma.ModelName).sort());
    expect(plan.notCopied.map((n) => n.model).sort()).toEqual(["Heartbeat", "Lease"]);
    for (const n of plan.notCopied) expect(n.why.length).toBeGreaterThan(40);
  });

  it("puts every table after the tables its foreign keys point at, except the deferred key that closes the description cycle", () => {
    const plan = schemaPlan();
    const position = new Map(plan.tables.map((t, i) => [t.model, i]));
    for (const t of plan.tables) {
      for (const f of datamodel.models[t.model]!.fields) {
        if (f.kind !== "object" || !f.relationFromFields?.length || !position.has(f.type)) continue;
        if (f.relationFromFields.every((c) => t.deferred.includes(c))) continue;
        expect(position.get(f.type)!, `${t.model}.${f.name} -> ${f.type}`).toBeLessThan(position.get(t.model)!);
      }
    }
    expect(plan.tables.filter((t) => t.deferred.length).map((t) => [t.model, t.deferred])).toEqual([["Artwork", ["currentDescriptionId"]]]);
  });

  it("keys each table by its primary key, sequences for autoincrement ids, every scalar column including bytes and enums", () => {
    const byModel = new Map(schemaPlan().tables.map((t) => [t.model, t]));
    expect(byModel.get("LinkedItem")!.key).toEqual({ name: "qid", type: "String" });
    expect(byModel.get("LinkedItem")!.sequence).toBe(false);
    expect(byModel.get("ArtworkEmbedding")!.key).toEqual({ name: "artworkId", type: "Int" });
    expect(byModel.get("ArtworkEmbedding")!.sequence).toBe(false);
    expect(byModel.get("ArtworkEmbedding")!.columns).toContainEqual({ name: "vector", type: "Bytes" });
    expect(byModel.get("Artwork")!.sequence).toBe(true);
    expect(byModel.get("Artwork")!.columns).toContainEqual({ name: "state", type: "Enum" });
    expect(byModel.get("Artwork")!.updatedAt).toEqual(["updatedAt"]);
    expect(byModel.get("Artwork")!.columns.map((c) => c.name)).not.toContain("creators");
  });
});

describe("copyPlan on other data models", () => {
  it("copies a model added to the schema, after its parents", () => {
    const models = {
      ...datamodel.models,
      Tag: { fields: [id, field("artworkId"), fk("artwork", "Artwork", "artworkId"), field("name", { type: "String" })], primaryKey: null },
    };
    const plan = copyPlan({ models });
    const order = plan.tables.map((t) => t.model);
    expect(order).toContain("Tag");
    expect(order.indexOf("Tag")).toBeGreaterThan(order.indexOf("Artwork"));
  });

  it("refuses what it cannot copy safely: composite keys, required cycles, stale exclusions", () => {
    expect(() => copyPlan({ models: { A: { fields: [field("x", { isId: false })], primaryKey: { fields: ["x", "y"] } } } }, {})).toThrow(CopyPlanError);
    expect(() =>
      copyPlan(
        {
          models: {
            A: { fields: [id, field("bId"), fk("b", "B", "bId")], primaryKey: null },
            B: { fields: [id, field("aId"), fk("a", "A", "aId")], primaryKey: null },
          },
        },
        {},
      ),
    ).toThrow(CopyPlanError);
    expect(() => copyPlan(datamodel, { ...NOT_COPIED, Gone: "a model that was removed" })).toThrow(CopyPlanError);
  });

  it("breaks a cycle at its nullable key, also a self-reference", () => {
    const plan = copyPlan(
      {
        models: {
          Node: { fields: [id, field("parentId", { isRequired: false }), fk("parent", "Node", "parentId")], primaryKey: null },
        },
      },
      {},
    );
    expect(plan.tables[0]!.deferred).toEqual(["parentId"]);
  });
});
