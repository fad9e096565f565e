import { describe, expect, it } from "vitest";
import { cleanMarkdown, countWords, endsSentence, finishText, trimToLastSentence, withoutControls } from "../../src/describe/postprocess.js";
import { checkText } from "../../src/jobs/input-limits.js";

describe("postprocess", () => {
  it("counts words and recognises sentence ends", () => {
    expect(countWords("A man's dog, two-faced, sits in 1889.")).toBe(7);
    expect(endsSentence("The sky is blue.")).toBe(true);
    expect(endsSentence('He said "stop!"')).toBe(true);
    expect(endsSentence("The sky is")).toBe(false);
    expect(endsSentence("Details:\n1.")).toBe(false);
  });

  it("trims text that ends mid-sentence to its last complete sentence and flags it", () => {
    expect(trimToLastSentence("A woman sits. She holds a fan. Behind her the")).toEqual({
      text: "A woman sits. She holds a fan.",
      trimmed: true,
    });
    expect(trimToLastSentence("It costs 3.5 florins. The frame is")).toEqual({ text: "It costs 3.5 florins.", trimmed: true });
    expect(trimToLastSentence("A woman sits. She holds a fan.")).toEqual({ text: "A woman sits. She holds a fan.", trimmed: false });
    // Nothing complete to keep: the text stays, unflagged.
    expect(trimToLastSentence("A woman sitting by")).toEqual({ text: "A woman sitting by", trimmed: false });
  });

  it("drops an analysis section appended after the prose, with its numbered list", () => {
    const raw =
      "The painting shows a woman in a blue dress seated by a window.\n\n### Analysis and Description:\n1. **Subjects**: A woman.\n2. **Background**: A window.";
    expect(cleanMarkdown(raw)).toBe("The painting shows a woman in a blue dress seated by a window.");
    const inline = "A dog lies on a rug. ### Analysis: 1. **Subjects**: a dog.";
    expect(cleanMarkdown(inline)).toBe("A dog lies on a rug.");
    const titled = "A dog lies on a rug.\n**Analysis:**\n1. The dog is brown.";
    expect(cleanMarkdown(titled)).toBe("A dog lies on a rug.");
  });

  it("removes heading marks, list markers and bold markers but keeps their words", () => {
    expect(cleanMarkdown("## A quiet harbour\nThe **boats** rest near the *pier*.")).toBe("A quiet harbour The boats rest near the pier.");
    expect(cleanMarkdown("1. A man in a hat.\n2. A dog at his feet.")).toBe("A man in a hat. A dog at his feet.");
    expect(cleanMarkdown("An __old__ mill 2 * 3 wheels.")).toBe("An old mill 2 * 3 wheels.");
  });

  it("removes the control characters a model's tokens can decode to, as a person's text may not hold them", () => {
    expect(withoutControls("A\u0007 red\u001b barn\u007f\u0090.\r\nIt\u000bstands\u2028\u202Eleft.\u2069\tDone")).toBe("A red barn.\nIt\nstands\nleft.\tDone");
    expect(finishText("A barn\u0000\u0001 stands.\rA cow\u0085grazes.", { cleanMarkdown: true })).toEqual({ text: "A barn stands. A cow grazes.", trimmed: false });
    expect(finishText("A barn\u0003 stands. A cow", { cleanMarkdown: false })).toEqual({ text: "A barn stands.", trimmed: true });
    // Whatever bytes come, the result passes the check a person's description must pass.
    let x = 7;
    for (let n = 0; n < 200; n++) {
      const raw = Array.from({ length: 80 }, () => String.fromCharCode((x = (x * 1103515245 + 12345) >>> 0) % 0x2100)).join("");
      const { text } = finishText(`${raw} A barn.`, { cleanMarkdown: n % 2 === 0 });
      expect(checkText(text, { max: 100_000, multiline: true })).toMatchObject({ ok: true });
    }
  });

  it("finishText cleans (when asked) and then trims", () => {
    expect(finishText("A **red** barn stands. ### Analysis: 1. **Barn**", { cleanMarkdown: true })).toEqual({
      text: "A red barn stands.",
      trimmed: false,
    });
    expect(finishText("A **red** barn stands. Next to it", { cleanMarkdown: false })).toEqual({
      text: "A **red** barn stands.",
      trimmed: true,
    });
  });
});
