import { WordIndex } from "./text-match.js";
import type { LabelledItem } from "./types.js";

/**
 * What kind of work an artwork is, from its P31 (instance of) and P186 (material used): by QID
 * where the QID is known, by English and Spanish label otherwise, so an unlisted subclass such
 * as "soft-ground etching" still counts.
 */
export type WorkKind = "painting" | "print" | "drawing";

export const KIND_QIDS: Record<string, WorkKind> = {
  Q3305213: "painting", // painting
  Q296955: "painting", // oil paint
  Q11060274: "print", // print
  Q18218093: "print", // etching
  Q18219090: "print", // aquatint
  Q93184: "drawing", // drawing
};

export const KIND_LABELS: Record<WorkKind, string[]> = {
  painting: ["painting", "oil paint", "oil on canvas", "canvas", "fresco", "tempera", "pintura", "oleo", "lienzo", "pintura al fresco"],
  print: [
    "print", "etching", "aquatint", "engraving", "lithograph", "lithography", "woodcut", "mezzotint", "drypoint", "intaglio",
    "grabado", "aguafuerte", "aguatinta", "estampa", "litografia", "xilografia", "punta seca",
  ],
  drawing: ["drawing", "sketch", "red chalk", "chalk", "charcoal", "graphite", "pencil", "dibujo", "boceto", "sanguina", "carboncillo", "lapiz"],
};

function kindsOfItem(item: LabelledItem): Set<WorkKind> {
  const known = KIND_QIDS[item.qid];
  if (known) return new Set([known]);
  const out = new Set<WorkKind>();
  for (const label of Object.values(item.labels)) {
    const index = new WordIndex(label);
    for (const kind of ["painting", "print", "drawing"] as const) if (KIND_LABELS[kind].some((p) => index.has(p))) out.add(kind);
  }
  return out;
}

/**
 * The work's kind: from P31 when P31 names one kind (print and drawing together count as a
 * print), else from P186; null when unknown or when the statements name a painting and a work
 * on paper at once.
 */
export function workKind(instanceOf: LabelledItem[] = [], materials: LabelledItem[] = []): WorkKind | null {
  for (const items of [instanceOf, materials]) {
    const kinds = new Set(items.flatMap((i) => [...kindsOfItem(i)]));
    if (kinds.size === 0) continue;
    if (kinds.has("painting")) return kinds.size === 1 ? "painting" : null;
    return kinds.has("print") ? "print" : "drawing";
  }
  return null;
}

/** Words a text uses to call the work a painting. */
export const PAINTING_TERMS = ["painting", "oil on canvas", "on canvas", "canvas", "pintura", "cuadro", "oleo", "lienzo"];
/** Painting technique: a claim against a print (a wash drawing has brushwork too). */
export const BRUSH_TERMS = ["brushstroke", "brush stroke", "brushwork", "pincelada"];
/** Words a text uses to call the work a print or a drawing. */
export const PAPER_TERMS = [
  "print", "etching", "engraving", "aquatint", "lithograph", "woodcut", "mezzotint", "drypoint",
  "drawing", "sketch", "grabado", "aguafuerte", "aguatinta", "estampa", "litografia", "dibujo", "boceto",
];
