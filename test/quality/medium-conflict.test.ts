import { describe, expect, it } from "vitest";
import { checkMediumConflict } from "../../src/quality/checks/medium-conflict.js";
import { workKind } from "../../src/quality/medium-vocabulary.js";
import type { LabelledItem } from "../../src/quality/types.js";

const PRINT: LabelledItem = { qid: "Q11060274", labels: { en: "print", es: "estampa" } };
const ETCHING: LabelledItem = { qid: "Q18218093", labels: { en: "etching", es: "aguafuerte" } };
const PAINTING: LabelledItem = { qid: "Q3305213", labels: { en: "painting", es: "pintura" } };
const DRAWING: LabelledItem = { qid: "Q93184", labels: { en: "drawing", es: "dibujo" } };
const OIL: LabelledItem = { qid: "Q296955", labels: { en: "oil paint", es: "óleo" } };
const PAPER: LabelledItem = { qid: "Q11472", labels: { en: "paper", es: "papel" } };
const SOFT_GROUND: LabelledItem = { qid: "Q123", labels: { en: "soft-ground etching" } };

const onPrint = (text: string) => checkMediumConflict({ text, work: { instanceOf: [ETCHING], materials: [PAPER] } });
const onPainting = (text: string) => checkMediumConflict({ text, work: { instanceOf: [PAINTING], materials: [OIL] } });
const onDrawing = (text: string) => checkMediumConflict({ text, work: { instanceOf: [DRAWING] } });

describe("the work's kind", () => {
  it("comes from P31, then P186, by QID or label", () => {
    expect(workKind([PAINTING], [OIL])).toBe("painting");
    expect(workKind([ETCHING], [PAPER])).toBe("print");
    expect(workKind([SOFT_GROUND])).toBe("print");
    expect(workKind([DRAWING])).toBe("drawing");
    expect(workKind([PRINT, DRAWING])).toBe("print");
    expect(workKind([], [OIL])).toBe("painting");
    expect(workKind([{ qid: "Q838948", labels: { en: "work of art" } }], [PAPER])).toBeNull();
    expect(workKind([PAINTING, PRINT])).toBeNull();
  });

  it("is not applicable when unknown", () => {
    expect(checkMediumConflict({ text: "This painting shows a dog." }).applicable).toBe(false);
  });
});

describe("MEDIUM_CONFLICT", () => {
  it.each([
    ["a print called a painting", () => onPrint("This painting shows a donkey reading a book.")],
    ["oil on canvas", () => onPrint("Oil on canvas, the scene shows two men.")],
    ["brushstrokes on a print", () => onPrint("Loose brushstrokes render the sky.")],
    ["Spanish: cuadro", () => onPrint("El cuadro muestra a dos hombres.")],
    ["an oil painting, then a new sentence", () => onPrint("It is an oil painting. The woman sits.")],
    ["is a painting, though named an etching too", () => onPrint("The etching is a painting of despair.")],
    ["a drawing called a painting", () => onDrawing("In this painting a woman sleeps.")],
    ["a painting called an etching", () => onPainting("This etching shows a dark sky.")],
    ["a painting called a drawing", () => onPainting("The drawing shows a family in a garden.")],
    ["a painting called a print, Spanish", () => onPainting("El grabado muestra una escena de guerra.")],
    ["a painting called a sketch", () => onPainting("A quick sketch of a woman at a window.")],
  ])("flags %s", (_name, run) => {
    expect(run().flagged).toBe(true);
  });

  it.each([
    ["a print after a painting", () => onPrint("A print after a painting by Velázquez shows a rider.")],
    ["painterly", () => onPrint("The etching has a painterly quality.")],
    ["the painting depicted in the print", () => onPrint("The painting depicted in the print hangs above a bed.")],
    ["a painting on the wall", () => onPrint("This etching shows a room; a painting hangs on the wall.")],
    ["a drawing for a painting", () => onDrawing("A drawing for a painting of the royal family.")],
    ["a study for the painting", () => onDrawing("This sketch is a study for the painting.")],
    ["like a painting", () => onPrint("The aquatint looks like a painting in its tones.")],
    ["a verb", () => onPrint("The print shows a man painting a wall.")],
    ["reproduces a painting", () => onPrint("This etching reproduces Goya's painting of the duchess.")],
    ["an oil sketch is a painting", () => onPainting("An oil sketch of a bullfight, thick and fast.")],
    ["drawing the eye", () => onPainting("The light, drawing the eye to the centre, falls on the prisoner.")],
    ["the drawing of the figures", () => onPainting("The painting is admired for the drawing of the figures.")],
    ["a print of this painting", () => onPainting("A print of this painting was made in 1800.")],
    ["Goya's prints, by likeness", () => onPainting("Like Goya's prints, the painting is dark.")],
    ["a cuadros", () => onPainting("Un hombre con una camisa a cuadros.")],
    ["the right names", () => onPrint("This etching and aquatint shows a donkey.")],
  ])("does not flag %s", (_name, run) => {
    expect(run().flagged).toBe(false);
  });
});
