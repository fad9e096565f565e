import { describe, expect, it } from "vitest";
import { checkDepictsMissing } from "../../src/quality/checks/depicts-missing.js";
import type { DepictedItem } from "../../src/quality/types.js";

const item = (qid: string, en: string, es: string, aliases: { en?: string[]; es?: string[] } = {}, instanceOf: string[] = ["Q729"]): DepictedItem => ({
  qid,
  labels: { en, es },
  aliases: { en: aliases.en ?? [], es: aliases.es ?? [] },
  instanceOf,
});
const DONKEY = item("Q19707", "donkey", "burro", { en: ["ass"], es: ["asno", "jumento"] });
const DOG = item("Q144", "dog", "perro", { en: ["domestic dog"] });
const OWL = item("Q9174", "owl", "búho", { es: ["lechuza"] });
const CHURCH = item("Q16970", "church", "iglesia", { en: ["church building"] });
const WOMAN = item("Q467", "woman", "mujer", {}, ["Q55983715"]);
const CHILD = item("Q7569", "child", "niño", { en: ["kid"] }, ["Q55983715"]);
const COAT_OF_ARMS = item("Q14659", "coat of arms", "escudo de armas", { en: ["arms"] });
const BAT = item("Q28425", "bat", "murciélago");
const GOYA = item("Q5432", "Francisco Goya", "Francisco de Goya", {}, ["Q5"]);
const SATURN = item("Q47652", "Saturn", "Saturno", {}, ["Q178885"]);
const ALLEGORY = item("Q139177", "allegory", "alegoría", {}, []);
const DEATH = item("Q4", "death", "muerte", {}, []);
const CONCEPT = item("Q999", "melancholic humour", "humor melancólico", {}, ["Q151885"]);

const run = (text: string, depicts: DepictedItem[], languages = ["en", "es"]) => checkDepictsMissing({ text, work: { depicts }, languages });

describe("DEPICTS_MISSING", () => {
  it.each<[string, string, DepictedItem[], string[]?]>([
    ["a donkey never named", "A man rides a horse across a field.", [DONKEY]],
    ["a dog never named", "A woman sits by a window.", [DOG, WOMAN]],
    ["owls, one of two things", "Bats fly over a sleeping man.", [OWL, BAT]],
    ["a church, in Spanish", "Una mujer camina por la calle.", [CHURCH, WOMAN]],
    ["the coat of arms only half named", "A coat hangs on a chair near the door.", [COAT_OF_ARMS]],
    ["a word inside another word does not count", "The doggerel verse and a category of bats.", [DOG, BAT]],
    ["an alias in a language not synced", "Un jumento en el camino.", [item("Q19707", "donkey", "burro", { es: ["jumento"] })], ["en"]],
    ["a child never named, a human skipped", "Francisco Goya painted a woman.", [CHILD, GOYA, WOMAN]],
    ["everything missing", "A dark sky over empty hills.", [DONKEY, DOG, OWL, CHURCH]],
  ])("flags %s", (_name, text, depicts, languages) => {
    const r = run(text, depicts, languages);
    expect(r.flagged).toBe(true);
    expect(r.checks[0]!.value).toBeGreaterThan(0);
  });

  it.each([
    ["donkeys, plural", "Two donkeys sit at a table reading.", [DONKEY]],
    ["the alias ass", "An ass teaches another ass to read.", [DONKEY]],
    ["Spanish plural", "Dos perros y una mujer junto al río.", [DOG, WOMAN]],
    ["Spanish alias", "Una lechuza vuela sobre el hombre dormido.", [OWL]],
    ["multi-word name, plural", "Two coats of arms crown the gate.", [COAT_OF_ARMS]],
    ["accents stripped", "Un buho y murcielagos en la noche.", [OWL, BAT]],
    ["irregular plurals", "Women and children gather near the church.", [WOMAN, CHILD, CHURCH]],
    ["a depicted human is not judged", "A dog lies at the feet of the sitter.", [DOG, GOYA]],
    ["a deity is not judged", "A giant devours a body in the dark.", [SATURN]],
    ["abstract items are not judged", "A skull and a candle on a table.", [ALLEGORY, DEATH, CONCEPT]],
    ["possessive", "The donkey's long ears frame the scene.", [DONKEY]],
    ["nothing depicted", "A woman.", []],
  ] as const)("does not flag %s", (_name, text, depicts) => {
    expect(run(text, [...depicts]).flagged).toBe(false);
  });

  it("value is the share missing among judged items; detail names them", () => {
    const r = run("A dog barks at a woman.", [DOG, DONKEY, OWL, WOMAN, GOYA, ALLEGORY]);
    expect(r.flagged).toBe(true);
    expect(r.checks[0]!.value).toBe(0.5);
    expect(r.checks[0]!.detail).toContain("donkey (Q19707)");
    expect(r.checks[0]!.detail).toContain("owl (Q9174)");
    expect(r.checks[0]!.detail).not.toContain("Q144");
    expect(r.checks[0]!.detail).toContain("2 skipped");
  });

  it("is not applicable when nothing can be judged, and items without a synced label are skipped", () => {
    expect(run("Anything.", [GOYA, DEATH]).applicable).toBe(false);
    const frOnly: DepictedItem = { qid: "Q1", labels: { fr: "âne" }, aliases: {}, instanceOf: [] };
    expect(run("Nothing relevant.", [frOnly]).applicable).toBe(false);
  });
});
