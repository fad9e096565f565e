import { describe, expect, it } from "vitest";
import { tokenize, WordIndex, wordForms } from "../../src/quality/text-match.js";

describe("text matching", () => {
  it("tokenises like search: accents stripped, lower case, whole words", () => {
    expect(tokenize("Un perro, ¡y la MUJER del Príncipe!")).toEqual(["un", "perro", "y", "la", "mujer", "del", "principe"]);
  });

  it.each([
    ["dog", "dogs"],
    ["donkey", "donkeys"],
    ["church", "churches"],
    ["woman", "women"],
    ["man", "men"],
    ["child", "children"],
    ["perro", "perros"],
    ["mujer", "mujeres"],
    ["lady", "ladies"],
    ["wolf", "wolves"],
    ["knife", "knives"],
    ["luz", "luces"],
    ["ass", "asses"],
    ["horse", "horses"],
    ["hero", "heroes"],
    ["león", "leones"],
  ])("%s matches its plural %s, and the other way round", (singular, plural) => {
    expect(new WordIndex(`There are ${plural} here.`).has(singular)).toBe(true);
    expect(new WordIndex(`There is a ${singular} here.`).has(plural)).toBe(true);
  });

  it.each([
    ["cat", "A category of marbles"],
    ["cat", "The catholic church"],
    ["man", "A woman and a mannequin"],
    ["ass", "An assembly of people"],
    ["art", "A party with artists"],
    ["owl", "A bowl on a table"],
  ])("%s does not match inside another word: %s", (word, text) => {
    expect(new WordIndex(text).has(word)).toBe(false);
  });

  it("matches multi-word names, with the inflected word anywhere", () => {
    expect(new WordIndex("Two coats of arms hang above the door.").has("coat of arms")).toBe(true);
    expect(new WordIndex("A coat with arms outstretched.").has("coat of arms")).toBe(false);
    expect(new WordIndex("The donkey's ears.").has("donkey")).toBe(true);
    expect(new WordIndex("Las mujeres del pueblo.").find("mujer")).toEqual([1]);
  });

  it("forms undo only endings", () => {
    expect(wordForms("bus")).toEqual(["bus"]);
    expect(wordForms("glass")).toEqual(["glass"]);
    expect(wordForms("dogs")).toContain("dog");
  });
});
