import { QUALITY_FLAGS, type QualityCheck, type QualityResult } from "../../quality/types.js";
import { builder } from "../builder.js";

export const QualityFlagEnum = builder.enumType("QualityFlag", {
  description: "A quality problem of a description (docs/quality.md).",
  values: QUALITY_FLAGS,
});

const QualityCheckRef = builder.objectRef<QualityCheck>("QualityCheck").implement({
  description: "One measured figure behind the flags.",
  fields: (t) => ({
    name: t.exposeString("name"),
    value: t.exposeFloat("value", { description: "A number; 1 or 0 for yes/no checks." }),
    detail: t.exposeString("detail", { description: "The figure in words." }),
  }),
});

export const QualityRef = builder.objectRef<QualityResult>("Quality").implement({
  description: "Quality signals of a description, computed when it was written (or by `artdesc quality recompute`).",
  fields: (t) => ({
    flags: t.field({ type: [QualityFlagEnum], resolve: (q) => q.flags }),
    risk: t.exposeFloat("risk", { description: "In [0, 1]; higher needs review first." }),
    checks: t.field({ type: [QualityCheckRef], resolve: (q) => q.checks }),
  }),
});
