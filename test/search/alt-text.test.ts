import { describe, expect, it } from "vitest";
import { altText } from "../../src/text/alt-text.js";

describe("altText", () => {
  it("keeps a text that fits, with whitespace tidied", () => {
    expect(altText("A dog  sleeps.\n", 250)).toBe("A dog sleeps.");
  });

  it("cuts at the last sentence end that fits", () => {
    const text = "A woman in a dark dress stands. A man sits beside her. A dog sleeps near the window.";
    expect(altText(text, 60)).toBe("A woman in a dark dress stands. A man sits beside her.");
    expect(altText(text, 54)).toBe("A woman in a dark dress stands. A man sits beside her.");
    expect(altText(text, 53)).toBe("A woman in a dark dress stands.");
  });

  it("handles ! ? … and closing quotes", () => {
    expect(altText('He shouts "Fire!" Smoke rises over the town and the river below.', 30)).toBe('He shouts "Fire!"');
    expect(altText("Is it night? The sky is dark and full of stars tonight.", 20)).toBe("Is it night?");
  });

  it("does not end a sentence at an initial, a decimal or a lower-case continuation", () => {
    expect(altText("A portrait of J. M. W. Turner at his easel in the studio. He holds a brush.", 70)).toBe(
      "A portrait of J. M. W. Turner at his easel in the studio.",
    );
    expect(altText("The canvas measures 1.5 metres across and shows a harbour. Boats rest.", 60)).toBe(
      "The canvas measures 1.5 metres across and shows a harbour.",
    );
    expect(altText("Painted c. after the war by the artist in his studio near the sea. It is small.", 70)).toBe(
      "Painted c. after the war by the artist in his studio near the sea.",
    );
  });

  it("does not end a sentence at an abbreviation or before a number", () => {
    const jerome = "The painting depicts St. Jerome seated at a wooden desk in his study, reading. A lion sleeps.";
    expect(altText(jerome, 80)).toBe("The painting depicts St. Jerome seated at a wooden desk in his study, reading.");
    expect(altText(jerome, 40)).toBe("The painting depicts St. Jerome seated…");
    expect(altText("This etching was published c. 1799 in Madrid as plate No. 43 of a series. It is small.", 60)).toBe("This etching was published c. 1799 in Madrid as plate No.…");
  });

  it("cuts a long first sentence at a word and marks it", () => {
    const out = altText("A very long sentence without any stop that goes on and on about the painting, its colours and light", 40);
    expect(out).toBe("A very long sentence without any stop…");
    expect(out.length).toBeLessThanOrEqual(40);
    expect(altText("Supercalifragilisticexpialidocious", 10)).toBe("Supercali…");
  });

  it("never cuts a character in two (text without spaces, an emoji at the limit)", () => {
    const text = `${"马".repeat(8)}🐕${"狗".repeat(20)}`;
    expect(altText(text, 10)).toBe(`${"马".repeat(8)}…`);
    expect(altText(text, 11)).toBe(`${"马".repeat(8)}🐕…`);
  });

  it("never exceeds the limit", () => {
    const text = "One. Two three four. Five six seven eight nine. Ten eleven twelve thirteen fourteen fifteen.";
    for (let n = 5; n < text.length + 5; n++) expect(altText(text, n).length).toBeLessThanOrEqual(n);
  });
});
