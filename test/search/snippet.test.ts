import { describe, expect, it } from "vitest";
import { HIT_CLOSE as C, HIT_OPEN as O, snippetHtml, snippetWindow } from "../../src/search/snippet.js";

const words = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `w${from + i}`);

describe("snippetWindow", () => {
  it("keeps a text of at most `tokens` words whole", () => {
    const text = `A ${O}queen${C} in a black dress, holding a ${O}fan${C}.`;
    expect(snippetWindow(text, 32)).toBe(text);
  });

  it("cuts a longer text around the matches, with an ellipsis where it cuts", () => {
    const all = words(100);
    all[50] = `${O}hit${C}`;
    const snippet = snippetWindow(all.join(" "), 10);
    // Ten words with the hit in the middle.
    expect(snippet).toBe(`…w46 w47 w48 w49 ${O}hit${C} w51 w52 w53 w54 w55…`);
  });

  it("takes the window with the most matches, the text's start when none matches, and its end when the matches are there", () => {
    const all = words(100);
    all[10] = `${O}a${C}`;
    all[80] = `${O}b${C}`;
    all[83] = `${O}c${C}`;
    expect(snippetWindow(all.join(" "), 10)).toMatch(new RegExp(`^…w77 w78 w79 ${O}b${C} w81 w82 ${O}c${C} w84 w85 w86…$`));
    expect(snippetWindow(`${words(40).join(" ")}.`, 5)).toBe("w0 w1 w2 w3 w4…");
    const tail = words(40);
    tail[39] = `${O}end${C}`;
    expect(snippetWindow(`${tail.join(" ")}.`, 5)).toBe(`…w35 w36 w37 w38 ${O}end${C}.`);
  });

  it("closes or reopens a match the window cuts in two, so the HTML stays balanced", () => {
    const text = `${words(20).join(" ")} ${O}saint-denis${C} ${words(20, 20).join(" ")}`;
    for (const n of [1, 2, 3]) {
      const html = snippetHtml(snippetWindow(text, n));
      expect(html.split("<mark>").length).toBe(html.split("</mark>").length);
    }
  });
});
