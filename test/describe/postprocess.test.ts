import { describe, expect, it } from "vitest";
import { cleanMarkdown, countWords, endsSentence, finishText, trimToLastSentence, withoutRepeatedSentences } from "../../src/describe/postprocess.js";
import { withoutControls } from "../../src/text/controls.js";
import { targetLengthStop } from "../../src/describe/beam-search.js";
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
    // A heading over the prose is no part of it (it would run into the first sentence).
    expect(cleanMarkdown("## A quiet harbour\nThe **boats** rest near the *pier*.")).toBe("The boats rest near the pier.");
    expect(cleanMarkdown("### A quiet harbour")).toBe("A quiet harbour");
    expect(cleanMarkdown("1. A man in a hat.\n2. A dog at his feet.")).toBe("A man in a hat. A dog at his feet.");
    expect(cleanMarkdown("An __old__ mill 2 * 3 wheels.")).toBe("An old mill 2 * 3 wheels.");
  });

  it("removes the control characters a model's tokens can decode to, as a person's text may not hold them", () => {
    expect(withoutControls("A\u0007 red\u001b barn\u007f\u0090.\r\nIt\u000bstands\u2028\u202Eleft.\u2069\tDone")).toBe("A red barn.\nIt\nstands\nleft.\tDone");
    expect(finishText("A barn\u0000\u0001 stands.\rA cow\u0085grazes.", { cleanMarkdown: true })).toEqual({ text: "A barn stands. A cow grazes.", trimmed: false });
    expect(finishText("A barn\u0003 stands. A cow", { cleanMarkdown: false })).toEqual({ text: "A barn stands.", trimmed: true });
    // Decoding debris: a half-decoded character (U+FFFD) and invisible zero-width characters go; the joiners stay.
    expect(finishText("A ca\u200Bt sle\uFFFDeps on a be\u00ADnch.\uFEFF\u2060", { cleanMarkdown: false }).text).toBe("A cat sleeps on a bench.");
    expect(finishText("\uFFFD\uFFFDA barn \u{1F468}\u200D\u{1F469} stands.", { cleanMarkdown: true }).text).toBe("A barn \u{1F468}\u200D\u{1F469} stands.");
    // Written as entities, which the cleanup decodes.
    expect(finishText("A black ca&#8203;t sits on a m&#xFEFF;at&#65533;.", { cleanMarkdown: true }).text).toBe("A black cat sits on a mat.");
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

  it("ends no sentence at an abbreviation, or where a lower-case word or a number goes on", () => {
    for (const t of ["The scene recalls the work of St.", "It was made c.", "It is plate No.", "Compare Fig.", "Painted c. 1799 by Goya, e.g."]) expect(endsSentence(t), t).toBe(false);
    for (const t of ["He said no.", "It was made in 1799.", "Volume I.", 'It reads "Fire!"', "Brushes, paper, etc.", "A girl holds a cat.", "Grapes and two figs."]) expect(endsSentence(t), t).toBe(true);
    // A Roman numeral ends a sentence; an initial does not.
    expect(finishText("The room is dark. The portrait shows Emperor Charles V. He wears black armour and holds", { cleanMarkdown: true })).toEqual({
      text: "The room is dark. The portrait shows Emperor Charles V.",
      trimmed: true,
    });
    expect(finishText("A portrait of J. M. W. Turner. A ship", { cleanMarkdown: true }).text).toBe("A portrait of J. M. W. Turner.");
    expect(finishText("By V. S. Pritchett. A", { cleanMarkdown: true }).text).toBe("By V. S. Pritchett.");
    expect(finishText("The room is dark. A girl holds a cat. A girl holds a cat.", { cleanMarkdown: true })).toEqual({ text: "The room is dark. A girl holds a cat.", trimmed: false });
    expect(trimToLastSentence("A man sleeps. It was made c. 1799 by Goya and shows")).toEqual({ text: "A man sleeps.", trimmed: true });
    expect(trimToLastSentence("A man sleeps. It is plate No. 43 of the series, which")).toEqual({ text: "A man sleeps.", trimmed: true });
    expect(trimToLastSentence("A saint reads. The scene recalls St. Jerome in")).toEqual({ text: "A saint reads.", trimmed: true });
    expect(trimToLastSentence('He cried "Stop!" and ran. A dog')).toEqual({ text: 'He cried "Stop!" and ran.', trimmed: true });
    const kept = "This etching was made c. 1799 by Goya. It is plate No. 43 of Los Caprichos, plate 43.";
    expect(finishText(kept, { cleanMarkdown: true })).toEqual({ text: kept, trimmed: false });
  });

  it("stops a beam at its target length only at a real sentence end", () => {
    const words = Array.from({ length: 150 }, (_, i) => `w${i}`).join(" ");
    const text = [`${words}. The scene recalls the work of St.`, " Jerome."];
    // Token 1 decodes to the first part, token 2 to the rest.
    const decode = (ids: readonly number[]) => ids.map((id) => text[id - 1]).join("");
    const stop = targetLengthStop(decode, 150);
    expect(stop(0, [], 1)).toBe(false);
    expect(stop(0, [1], 2)).toBe(true);
  });

  it("removes code fences, rules, quote marks, tables after the prose, links and HTML, keeping the words", () => {
    expect(cleanMarkdown("```\nA man sleeps at a desk. Owls fly above him.\n```")).toBe("A man sleeps at a desk. Owls fly above him.");
    expect(cleanMarkdown("A man sleeps.\n\n| Object | Note |\n|---|---|\n| Owl | Above him. |")).toBe("A man sleeps.");
    expect(cleanMarkdown("The etching [The Sleep of Reason](https://commons.example/X) shows a man asleep. ![owl](o.png)")).toBe(
      "The etching The Sleep of Reason shows a man asleep.",
    );
    expect(cleanMarkdown("> A man sleeps.\n\n---\n\nOwls fly above him.")).toBe("A man sleeps. Owls fly above him.");
    expect(cleanMarkdown("A man sleeps <b>at a desk</b> &amp; owls fly &#8212; bats too &#0; &bogus;.")).toBe("A man sleeps at a desk & owls fly — bats too &#0; &bogus;.");
    expect(cleanMarkdown("A _small_ owl and snake_case words.")).toBe("A small owl and snake_case words.");
    expect(cleanMarkdown("A sign reads <CLOSED> and <in plain prose>; 2 <3.<br/>Then <P class=x>more</p>.")).toBe("A sign reads <CLOSED> and <in plain prose>; 2 <3. Then more.");
    expect(cleanMarkdown("<h3>Scene</h3>The sky is blue.</p>A man sleeps.</p>")).toBe("Scene The sky is blue. A man sleeps.");
    // A label with its list after the prose is an appended section, as a heading is.
    expect(cleanMarkdown("A man sleeps.\n\n**Foreground:**\n- A desk\n- A cat\n\n**Background:**\n- Owls and bats.")).toBe("A man sleeps.");
    // A list inside the prose keeps its items, as a phrase.
    expect(cleanMarkdown("The scene shows:\n- a desk\n- a cat\n\nOwls fly above.")).toBe("The scene shows: a desk, a cat. Owls fly above.");
    // One # is a heading only after a sentence end, and only before a word.
    expect(cleanMarkdown("A man sleeps. The label reads # 43 in pencil.")).toBe("A man sleeps. The label reads # 43 in pencil.");
    expect(cleanMarkdown("A man sleeps. # Notes\nMore.")).toBe("A man sleeps.");
    expect(cleanMarkdown("###\n```")).toBe("");
  });

  it("says a looping sentence once, and drops a chat role's name", () => {
    expect(withoutRepeatedSentences("It is dark. It is dark. It's dark. It is DARK! It is dark! A man sleeps. It is dark.")).toEqual({
      text: "It is dark. It's dark. It is DARK! A man sleeps. It is dark.",
      removed: 2,
    });
    expect(withoutRepeatedSentences("A man sleeps.")).toEqual({ text: "A man sleeps.", removed: 0 });
    // A fragment at the end is no sentence: the trim removes it, and says so.
    expect(finishText("It is dark. It is dark", { cleanMarkdown: true })).toEqual({ text: "It is dark.", trimmed: true });
    // The model's own turn, after an echoed one.
    expect(finishText("User: Describe it.\nAssistant: A man sleeps.", { cleanMarkdown: true })).toEqual({ text: "A man sleeps.", trimmed: false });
    expect(finishText("Assistant: It is dark. It is dark. A man sleeps at a", { cleanMarkdown: false })).toEqual({ text: "It is dark.", trimmed: true });
    expect(finishText("assistant:A man sleeps.", { cleanMarkdown: true })).toEqual({ text: "A man sleeps.", trimmed: false });
  });

  it("stays linear on long hostile text (each takes well under a second on 100 kB)", () => {
    const n = 100_000;
    for (const text of ["!".repeat(n) + "x", "[".repeat(n) + "x", "![".repeat(n / 2) + "x", ")".repeat(n) + "x", " ".repeat(n) + "x", ". " + " ".repeat(n) + "x", "** ".repeat(n / 3) + "x", "* a".repeat(n / 3), "_ a".repeat(n / 3), "St. ".repeat(n / 4), "| ".repeat(n / 2) + "x", "<b ".repeat(n / 3), "---" + " ".repeat(n) + "x", "\n1.".repeat(n / 3), "A b. ".repeat(n / 5) + "x", "Details:\n1. ".repeat(n / 12) + "x"]) {
      const started = performance.now();
      finishText(text, { cleanMarkdown: true });
      endsSentence(text);
      cleanMarkdown(text);
      expect(performance.now() - started, JSON.stringify(text.slice(0, 12))).toBeLessThan(1_000);
    }
  });
});
