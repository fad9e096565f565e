import { describe, expect, it } from "vitest";
import { assessQuality } from "../../src/quality/assess.js";
import { RISK_WEIGHTS, riskOf } from "../../src/quality/risk.js";
import { QUALITY_FLAGS, type DepictedItem, type LabelledItem, type QualityFlag, type QualityInput } from "../../src/quality/types.js";

const thing = (qid: string, en: string, es: string, aliases: string[] = [], instanceOf = ["Q729"]): DepictedItem => ({
  qid,
  labels: { en, es },
  aliases: { en: aliases },
  instanceOf,
});
const DONKEY = thing("Q19707", "donkey", "burro", ["ass"]);
const OWL = thing("Q9174", "owl", "búho");
const BAT = thing("Q28425", "bat", "murciélago");
const DOG = thing("Q144", "dog", "perro");
const HORSE = thing("Q726", "horse", "caballo");
const TREE = thing("Q10884", "tree", "árbol");
const CHURCH = thing("Q16970", "church", "iglesia");
const CAT = thing("Q146", "cat", "gato");
const SITTER = thing("Q9999", "Duchess of Alba", "duquesa de Alba", [], ["Q5"]);
const ETCHING: LabelledItem = { qid: "Q18218093", labels: { en: "etching" } };
const PAINTING: LabelledItem = { qid: "Q3305213", labels: { en: "painting" } };
const DRAWING: LabelledItem = { qid: "Q93184", labels: { en: "drawing" } };
const OIL: LabelledItem = { qid: "Q296955", labels: { en: "oil paint" } };
const GREY = { chroma: 1.5, tint: { hue: 200, chroma: 0.5 } };
const SEPIA = { chroma: 2.5, tint: { hue: 65, chroma: 18 } };
const RED_CHALK = { chroma: 4, tint: { hue: 38, chroma: 45 } };
const COLOUR = { chroma: 60, tint: { hue: 50, chroma: 20 } };

/** Sentences a careful describer might write about any of the works (all different, so no repetition). */
const FILLER = [
  "The composition is balanced around a strong diagonal that leads from the lower left to the upper right.",
  "Light falls from the left and leaves much of the background in deep shadow.",
  "The figures are drawn with economy, a few lines giving weight and movement.",
  "Small details reward a closer look, such as the folds of the cloth and the texture of the ground.",
  "The mood is quiet but uneasy, as if something has just happened or is about to.",
  "An inscription near the lower edge gives a short title in Spanish.",
  "The space is shallow and the horizon sits low, so the figures loom large.",
  "Contrasts between light and dark areas give the scene its drama.",
  "The edges of the sheet show some wear, with a few small stains near the corners.",
  "Nothing in the scene is decorative; every element serves the story being told.",
];

interface Work {
  name: string;
  kind: { instanceOf: LabelledItem[]; materials: LabelledItem[] };
  depicts: DepictedItem[];
  image: { chroma: number; tint: { hue: number; chroma: number } };
  /** Faithful opening sentences: name the medium and the depicted things. */
  faithful: string[];
  /** The same work called the wrong medium. */
  wrongMedium: string;
  /** A sentence naming colours this image lacks (only for monochrome images). */
  wrongColour?: string;
  /** Opening that leaves out the depicted things. */
  missing: string;
}

const WORKS: Work[] = [
  {
    name: "asses",
    kind: { instanceOf: [ETCHING], materials: [] },
    depicts: [DONKEY, SITTER],
    image: GREY,
    faithful: ["This etching and aquatint shows two asses seated at a desk, one teaching the other to read.", "The print is a satire on teachers."],
    wrongMedium: "This painting shows two donkeys seated at a desk, one teaching the other to read.",
    wrongColour: "The donkey wears a bright red collar and the wall behind is painted blue.",
    missing: "This etching and aquatint shows two men seated at a desk, one teaching the other to read.",
  },
  {
    name: "sleep",
    kind: { instanceOf: [ETCHING], materials: [] },
    depicts: [OWL, BAT, CAT],
    image: SEPIA,
    faithful: ["The etching shows a man asleep at a table while owls and bats rise behind him and a cat watches.", "Brown ink and the warm sepia tone of the paper soften the blacks."],
    wrongMedium: "In this oil painting a man sleeps at a table while owls and bats rise behind him and a cat watches.",
    wrongColour: "Green and purple wings fill the sky above the yellow lamp.",
    missing: "The etching shows a man asleep at a table while strange shapes rise behind him.",
  },
  {
    name: "chalk",
    kind: { instanceOf: [DRAWING], materials: [] },
    depicts: [DOG, TREE],
    image: RED_CHALK,
    faithful: ["This red chalk drawing shows a dog resting under a tree.", "The reddish lines are soft, and the drawing may be a study for a painting."],
    wrongMedium: "This painting shows a dog resting under a tree, in oil on canvas.",
    wrongColour: "A blue sky and green leaves frame the scene.",
    missing: "This red chalk drawing shows a figure resting in a landscape.",
  },
  {
    name: "rider",
    kind: { instanceOf: [PAINTING], materials: [OIL] },
    depicts: [HORSE, TREE],
    image: COLOUR,
    faithful: ["This oil painting shows a rider on a white horse beneath a great tree, a red sash at his waist.", "The painting's blue sky is streaked with cloud."],
    wrongMedium: "This etching shows a rider on a white horse beneath a great tree.",
    missing: "This oil painting shows a rider in a red sash beneath a blue sky.",
  },
  {
    name: "village",
    kind: { instanceOf: [PAINTING], materials: [OIL] },
    depicts: [CHURCH, DOG, HORSE],
    image: COLOUR,
    faithful: ["The painting shows a village feast before a church, with dogs running and horses tied to a cart.", "Green hills and a yellow light close the view."],
    wrongMedium: "The drawing shows a village feast before a church, with dogs running and horses tied to a cart.",
    missing: "The painting shows a village feast with people dancing in the square.",
  },
];

/** The same kind of sentences in Spanish: a model that answered in the title's language. */
const SPANISH = [
  "La composición se ordena en torno a una diagonal que va de la esquina inferior izquierda a la superior derecha.",
  "La luz entra por la izquierda y deja buena parte del fondo en sombra.",
  "Las figuras están dibujadas con pocas líneas, que les dan peso y movimiento.",
  "El ambiente es tranquilo pero inquietante, como si algo acabara de ocurrir.",
  "Una inscripción cerca del borde inferior da un título breve.",
];

const textOf = (opening: string[], fillers: number, start: number) => [...opening, ...Array.from({ length: fillers }, (_, i) => FILLER[(start + i) % FILLER.length]!)].join(" ");
const base = (w: Work, text: string, extra: Partial<QualityInput> = {}): QualityInput => ({
  text,
  language: "en",
  generation: { finishReason: "eos", trimmed: false, markdownRemoved: false, targetWords: 150 },
  work: { depicts: w.depicts, ...w.kind },
  image: w.image,
  languages: ["en", "es"],
  ...extra,
});

/** Faithful texts: each work with several filler mixes (about 110–190 words), and both ways a model can stop well. */
function faithfulSet(): QualityInput[] {
  const out: QualityInput[] = [];
  WORKS.forEach((w, k) => {
    for (let v = 0; v < 8; v++) {
      const input = base(w, textOf(w.faithful, 5 + (v % 4), k * 3 + v));
      if (v % 2) input.generation = { ...input.generation, finishReason: "stop" };
      if (v === 7) delete input.generation; // a human text
      out.push(input);
    }
  });
  return out;
}

/** Wrong texts, each with one planted failure of one kind; the kinds rotate over the works. */
function wrongSet(): { kind: QualityFlag; input: QualityInput }[] {
  const out: { kind: QualityFlag; input: QualityInput }[] = [];
  WORKS.forEach((w, k) => {
    const text = (opening: string[], n = 6) => textOf(opening, n, k * 5);
    const cases: [QualityFlag, QualityInput][] = [
      ["TRUNCATED", base(w, text(w.faithful), { generation: { finishReason: "length", trimmed: true, targetWords: 150 } })],
      ["TRUNCATED", base(w, `${text(w.faithful)} Behind the figures a long`, { generation: undefined })],
      ["MARKDOWN", base(w, text(w.faithful), { generation: { finishReason: "eos", markdownRemoved: true, targetWords: 150 } })],
      ["REPETITION", base(w, `${text(w.faithful, 3)} ${"The figures stand in the light and the figures stand in the light and ".repeat(4)}the end.`)],
      ["REPETITION", base(w, `${text(w.faithful, 4)} ${FILLER[1]} ${FILLER[2]} ${FILLER[1]}`)],
      ["TOO_SHORT", base(w, w.faithful[0]!)],
      ["TOO_LONG", base(w, [text(w.faithful, 10), ...FILLER.map((f) => f.replace("The ", "Then the ")), ...FILLER.map((f) => `Again, ${f.toLowerCase()}`)].join(" "))],
      ["DEPICTS_MISSING", base(w, textOf([w.missing, ...w.faithful.slice(1)], 6, k))],
      ["MEDIUM_CONFLICT", base(w, textOf([w.wrongMedium, ...w.faithful.slice(1)], 6, k + 1))],
    ];
    cases.push(["WRONG_LANGUAGE", base(w, [...SPANISH.slice(k % 2), ...SPANISH.slice(0, k % 2)].join(" "), { generation: { finishReason: "eos", targetWords: 60 } })]);
    if (w.wrongColour) cases.push(["COLOUR_ON_MONOCHROME", base(w, textOf([...w.faithful, w.wrongColour], 5, k + 2))]);
    for (const [kind, input] of cases) out.push({ kind, input });
  });
  return out;
}

/** Mann-Whitney AUC: the chance a random wrong text outranks a random faithful one (ties count half). */
function auc(positives: number[], negatives: number[]): number {
  let wins = 0;
  for (const p of positives) for (const n of negatives) wins += p > n ? 1 : p === n ? 0.5 : 0;
  return wins / (positives.length * negatives.length);
}

describe("risk", () => {
  const faithful = faithfulSet();
  const wrong = wrongSet();

  it("the planted sets are what they claim: faithful texts raise no flag, each wrong text raises its own", () => {
    expect(faithful.length).toBeGreaterThanOrEqual(40);
    expect(wrong.length).toBeGreaterThanOrEqual(40);
    for (const input of faithful) expect(assessQuality(input).flags, input.text).toEqual([]);
    for (const { kind, input } of wrong) expect(assessQuality(input).flags, `${kind}: ${input.text}`).toContain(kind);
    expect(new Set(wrong.map((w) => w.kind))).toEqual(new Set(QUALITY_FLAGS));
  });

  it("separates faithful from wrong texts with AUC >= 0.9", () => {
    const a = auc(
      wrong.map((w) => assessQuality(w.input).risk),
      faithful.map((f) => assessQuality(f).risk),
    );
    console.log(`risk AUC on ${wrong.length} wrong and ${faithful.length} faithful texts: ${a.toFixed(3)}`);
    expect(a).toBeGreaterThanOrEqual(0.9);
  });

  it("ranks claims about the work above form problems, and more problems higher", () => {
    const w = WORKS[0]!;
    const risk = (input: QualityInput) => assessQuality(input).risk;
    const truncatedOnly = risk(base(w, textOf(w.faithful, 6, 0), { generation: { finishReason: "length", targetWords: 150 } }));
    const mediumOnly = risk(base(w, textOf([w.wrongMedium, ...w.faithful.slice(1)], 6, 0)));
    const both = risk(base(w, textOf([w.wrongMedium, ...w.faithful.slice(1)], 6, 0), { generation: { finishReason: "length", targetWords: 150 } }));
    expect(mediumOnly).toBeGreaterThan(truncatedOnly);
    expect(both).toBeGreaterThan(mediumOnly);
  });

  it("is a noisy-OR of weight x severity, within [0, 1]", () => {
    const outcome = (flag: QualityFlag, severity: number) => ({ flag, flagged: severity > 0, applicable: true, severity, checks: [] });
    expect(riskOf([])).toBe(0);
    expect(riskOf([outcome("MEDIUM_CONFLICT", 1)])).toBeCloseTo(RISK_WEIGHTS.MEDIUM_CONFLICT);
    expect(riskOf([outcome("MEDIUM_CONFLICT", 1), outcome("TRUNCATED", 1)])).toBeCloseTo(1 - (1 - RISK_WEIGHTS.MEDIUM_CONFLICT) * (1 - RISK_WEIGHTS.TRUNCATED));
    expect(riskOf(QUALITY_FLAGS.map((f) => outcome(f, 5)))).toBeLessThanOrEqual(1);
    expect(riskOf([{ ...outcome("REPETITION", 1), applicable: false }])).toBe(0);
  });
});
