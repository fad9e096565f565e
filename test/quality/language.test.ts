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
    expect(detectLanguage(PARAMS.prompt.default)).toBe("en");
    expect(detectLanguage(SPANISH_PROMPT)).toBe("es");
  });

  it("tells nothing from a short text, a text in another language, or one without words", () => {
    expect(detectLanguage("El perro duerme.")).toBeNull();
    expect(detectLanguage("Kuvassa nukkuu mies pöydän ääressä, ja pöllöt ja lepakot lentävät hänen takanaan pimeässä yössä.")).toBeNull();
    expect(detectLanguage("1799 1800 1801 1802 1803 1804 1805 1806 1807 1808 1809 1810 1811")).toBeNull();
  });

  it("counts words as runs of letters, in lower case, accents kept", () => {
    const { words, shares } = languageShares("ESTÁ, está; L'homme est là.");
    expect(words).toBe(6);
    expect(shares.es).toBeCloseTo(2 / 6);
    expect(shares.fr).toBeCloseTo(1 / 6);
  });
});

describe("WRONG_LANGUAGE", () => {
  it.each(["es", "pt", "fr", "de", "it"])("flags a %s text where English was asked for", (language) => {
    const outcome = checkLanguage({ text: SCENE[language]!, language: "en" });
    expect(outcome).toMatchObject({ flag: "WRONG_LANGUAGE", flagged: true, applicable: true, severity: 1 });
    expect(outcome.checks[0]!.detail).toMatch(/^written in \w+, not English: English function words \d+% of \d+ words/);
  });

  it("passes an English text, one quoting a Spanish title among them", () => {
    expect(checkLanguage({ text: SCENE.en!, language: "en" }).flagged).toBe(false);
    const quoting = "This print, Que se la llevaron, one of Los Caprichos, shows two men carrying off a woman in the night while a friar looks on.";
    expect(checkLanguage({ text: quoting, language: "en" }).flagged).toBe(false);
    expect(checkLanguage({ text: SCENE.en! }).flagged).toBe(false);
  });

  it("takes the instruction's language when it has one, else the description's", () => {
    expect(expectedLanguage({ text: "", language: "en", generation: { instruction: SPANISH_PROMPT } })).toBe("es");
    expect(expectedLanguage({ text: "", language: "en", generation: { instruction: "Describe it." } })).toBe("en");
    expect(expectedLanguage({ text: "", language: "es-ES" })).toBe("es");
    expect(checkLanguage({ text: SCENE.es!, language: "en", generation: { instruction: SPANISH_PROMPT } }).flagged).toBe(false);
    expect(checkLanguage({ text: SCENE.en!, language: "en", generation: { instruction: SPANISH_PROMPT } }).flagged).toBe(true);
    expect(checkLanguage({ text: SCENE.es!, language: "es" }).flagged).toBe(false);
  });

  it(`judges from ${MIN_LANGUAGE_WORDS} words, and only a language it knows`, () => {
    const short = "El hombre duerme sobre la mesa y los búhos vuelan alto";
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
    // As many English as Spanish function words: not flagged.
    expect(checkLanguage({ text: `el los las the of and ${filler(19)}`, language: "en" }).flagged).toBe(false);
    expect(checkLanguage({ text: `el los las the of ${filler(20)}`, language: "en" }).flagged).toBe(true);
  });

  it("raises the flag and the risk in the whole assessment", () => {
    const result = assessQuality({ text: SCENE.es!, language: "en", generation: { targetWords: 30 } });
    expect(result.flags).toEqual(["WRONG_LANGUAGE"]);
    expect(result.risk).toBeCloseTo(0.7, 1);
  });
});
