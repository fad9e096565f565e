import { describe, expect, it } from "vitest";
import { PARAMS } from "../../src/generation/params.js";
import { assessQuality } from "../../src/quality/assess.js";
import { checkLanguage, expectedLanguage } from "../../src/quality/checks/language.js";
import { detectLanguage, languageShares, MIN_LANGUAGE_SHARE, MIN_LANGUAGE_WORDS } from "../../src/quality/language-words.js";

/** The same scene (Goya's "The sleep of reason") in each language the check knows. */
const SCENE: Record<string, string> = {
  en: "The etching shows a man asleep at a desk, his head resting on his folded arms, while owls and bats rise from the darkness behind him. A lynx lies at his feet.",
  es: "El grabado muestra a un hombre dormido sobre una mesa, con la cabeza apoyada en los brazos, mientras búhos y murciélagos surgen de la oscuridad detrás de él. Un lince está echado a sus pies.",
  pt: "A gravura mostra um homem adormecido sobre uma mesa, com a cabeça apoiada nos braços, enquanto corujas e morcegos surgem da escuridão atrás dele. Um lince está deitado a seus pés.",
  fr: "La gravure montre un homme endormi sur une table, la tête posée sur ses bras, tandis que des hiboux et des chauves-souris surgissent de l'obscurité derrière lui. Un lynx est couché à ses pieds.",
  de: "Die Radierung zeigt einen Mann, der an einem Tisch schläft, den Kopf auf die Arme gelegt, während Eulen und Fledermäuse aus der Dunkelheit hinter ihm aufsteigen. Ein Luchs liegt zu seinen Füßen.",
  it: "L'acquaforte mostra un uomo addormentato su un tavolo, con la testa appoggiata sulle braccia, mentre gufi e pipistrelli emergono dall'oscurità dietro di lui. Una lince è distesa ai suoi piedi.",
};
const SPANISH_PROMPT = "Describe los objetos, las personas y el fondo que ves en la pintura o el dibujo de manera objetiva.";

describe("detectLanguage", () => {
  it.each(Object.entries(SCENE))("tells %s", (language, text) => {
    expect(detectLanguage(text)).toBe(language);
  });

  it("reads the default instruction as English and a Spanish one as Spanish", () => {
    expect(detectLanguage(PARAMS.prompt.default, 8)).toBe("en");
    expect(detectLanguage(SPANISH_PROMPT, 8)).toBe("es");
  });

  it("tells nothing from a short text, a text in another language, or one without words", () => {
    expect(detectLanguage("El perro duerme.")).toBeNull();
    expect(detectLanguage("Kuvassa nukkuu mies pöydän ääressä, ja pöllöt ja lepakot lentävät hänen takanaan pimeässä yössä.")).toBeNull();
    expect(detectLanguage("1799 1800 1801 1802 1803 1804 1805 1806 1807 1808 1809 1810 1811")).toBeNull();
  });

  it("leaves the function words of names and titles out: a capitalised word inside a sentence, a lower-case one between two", () => {
    // "de", "y", "del", "Los", "El" here are Spanish, but only as parts of names and titles.
    const { words, shares } = languageShares("Francisco de Goya y Lucientes painted Los fusilamientos del tres de mayo. El perro duerme con su amo.");
    expect(words).toBe(18);
    // Counted: "del" (between two lower-case words), "El" (a sentence's first word), "con", "su".
    expect(shares.es).toBeCloseTo(4 / 18);
  });

  it("stays linear on a hostile text (one long name of function words)", () => {
    const text = `Goya ${"de la del y ".repeat(50_000)}Lucientes`;
    const started = performance.now();
    expect(languageShares(text).words).toBe(200_002);
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it("counts words as runs of letters, in lower case, accents kept", () => {
    const { words, shares } = languageShares("ESTÁ aquí, y está; l'homme est là.");
    expect(words).toBe(8);
    expect(shares.es).toBeCloseTo(3 / 8);
    expect(shares.fr).toBeCloseTo(1 / 8);
  });
});

describe("WRONG_LANGUAGE", () => {
  it.each(["es", "pt", "fr", "de", "it"])("flags a %s text where English was asked for", (language) => {
    const outcome = checkLanguage({ text: SCENE[language]!, language: "en" });
    expect(outcome).toMatchObject({ flag: "WRONG_LANGUAGE", flagged: true, applicable: true, severity: 1 });
    expect(outcome.checks[0]!.detail).toMatch(/^written in \w+, not English: English function words \d+% of \d+ words/);
  });

  it.each([
    "This print, Que se la llevaron, one of Los Caprichos, shows two men carrying off a woman in the night while a friar looks on.",
    "Francisco de Goya y Lucientes painted Los fusilamientos del tres de mayo, which hangs in the Museo del Prado in Madrid.",
    "Plate 43 of Los Caprichos, El sueño de la razón produce monstruos, by Francisco de Goya y Lucientes. Museo del Prado, Madrid.",
    "A portrait of Carlos IV de España y su familia by Francisco de Goya y Lucientes, Museo del Prado. The royal family stands in a row in rich costumes.",
    "A series of prints: Los Caprichos, Los desastres de la guerra, La Tauromaquia and Los disparates, by Francisco de Goya y Lucientes.",
    "A bust of a man with a moustache. Inscribed: Fco de Goya y Lucientes, pintor. Con su mano lo hizo.",
    "A hay wain: hay, hay and more hay, piled high in a cart that two oxen pull along a lane toward the barn at dusk.",
    "La Vierge aux rochers, Le Déjeuner sur l'herbe and La Liberté guidant le peuple are among the paintings shown in the room of the Louvre.",
    "Das Abendmahl, Der Wanderer über dem Nebelmeer and Die Toteninsel hang in three museums, each a painting of a scene at the edge of the world.",
  ])("passes English prose that names Spanish, French or German works, places and people: %s", (text) => {
    expect(checkLanguage({ text, language: "en" }).flagged).toBe(false);
  });

  it("passes an English text, with or without a language given", () => {
    expect(checkLanguage({ text: SCENE.en!, language: "en" }).flagged).toBe(false);
    expect(checkLanguage({ text: SCENE.en! }).flagged).toBe(false);
  });

  it("flags a text that switched language halfway", () => {
    const mixed = "The painting shows a woman in a white dress standing near a tree. La mujer lleva un vestido blanco y está junto a un árbol con las manos sobre el pecho y la mirada perdida.";
    expect(checkLanguage({ text: mixed, language: "en" }).flagged).toBe(true);
  });

  it("takes the language the instruction names, else the instruction's own, else the description's", () => {
    expect(expectedLanguage({ text: "", language: "en", generation: { instruction: `${PARAMS.prompt.default} Answer in Spanish.` } })).toBe("es");
    expect(expectedLanguage({ text: "", language: "en", generation: { instruction: "Describe la obra en español." } })).toBe("es");
    expect(expectedLanguage({ text: "", language: "en", generation: { instruction: SPANISH_PROMPT } })).toBe("es");
    expect(expectedLanguage({ text: "", language: "en", generation: { instruction: "Describe it." } })).toBe("en");
    expect(expectedLanguage({ text: "", language: "es-ES" })).toBe("es");
    expect(checkLanguage({ text: SCENE.es!, language: "en", generation: { instruction: SPANISH_PROMPT } }).flagged).toBe(false);
    expect(checkLanguage({ text: SCENE.en!, language: "en", generation: { instruction: SPANISH_PROMPT } }).flagged).toBe(true);
    expect(checkLanguage({ text: SCENE.es!, language: "es" }).flagged).toBe(false);
  });

  it(`judges from ${MIN_LANGUAGE_WORDS} words, and only a language it knows`, () => {
    const short = "El hombre duerme sobre la mesa y los búhos vuelan en la noche oscura mientras el gato mira desde";
    expect(languageShares(short).words).toBe(MIN_LANGUAGE_WORDS - 1);
    expect(checkLanguage({ text: short, language: "en" })).toMatchObject({ flagged: false, applicable: false, severity: 0 });
    expect(checkLanguage({ text: `${short} oscura`, language: "en" })).toMatchObject({ flagged: true, applicable: true });
    expect(checkLanguage({ text: SCENE.es!, language: "fi" })).toMatchObject({ flagged: false, applicable: false });
  });

  it(`needs the other language's words to be ${MIN_LANGUAGE_SHARE * 100}% of the text and more than the expected one's`, () => {
    // 25 words: 3 Spanish function words (12%) and none English, then 2 (8%).
    const filler = (n: number) => Array.from({ length: n }, (_, i) => `nombre${String.fromCharCode(97 + i)}`).join(" ");
    expect(checkLanguage({ text: `el los las ${filler(22)}`, language: "en" }).flagged).toBe(true);
    expect(checkLanguage({ text: `el los ${filler(23)}`, language: "en" }).flagged).toBe(false);
    // Spanish must be at least twice the English: 12% against 8% is not, against 4% is.
    expect(checkLanguage({ text: `el los las the of ${filler(20)}`, language: "en" }).flagged).toBe(false);
    expect(checkLanguage({ text: `el los las the ${filler(21)}`, language: "en" }).flagged).toBe(true);
  });

  it("raises the flag and the risk in the whole assessment", () => {
    const result = assessQuality({ text: SCENE.es!, language: "en", generation: { targetWords: 30 } });
    expect(result.flags).toEqual(["WRONG_LANGUAGE"]);
    expect(result.risk).toBeCloseTo(0.7, 1);
  });
});
