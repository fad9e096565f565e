import { describe, expect, it } from "vitest";
import { compareQueue, decodeCursor, encodeCursor, InvalidCursorError, type QueuePosition } from "../../src/review/queue.js";
import { keepsCurrent, type VerdictFacts, verdictEffect } from "../../src/review/verdict.js";
import { artworkAltText, titleText } from "../../src/text/alt-text.js";

const LADDER = [{ numBeams: 5 }, { numBeams: 6 }];
const facts = (o: Partial<VerdictFacts>): VerdictFacts => ({
  verdict: "REJECTED",
  source: "MODEL",
  isCurrent: true,
  artworkActive: true,
  hasImage: true,
  madeByStep: 0,
  ladder: LADDER,
  ...o,
});

describe("verdictEffect", () => {
  it("a rejected current model text climbs the ladder, then needs a person", () => {
    expect(verdictEffect(facts({}))).toEqual({ kind: "fallback", step: 1, steps: 2, params: { numBeams: 5 } });
    expect(verdictEffect(facts({ madeByStep: 1 }))).toEqual({ kind: "fallback", step: 2, steps: 2, params: { numBeams: 6 } });
    expect(verdictEffect(facts({ madeByStep: 2 }))).toEqual({ kind: "needsPerson", steps: 2 });
    expect(verdictEffect(facts({ madeByStep: 7 }))).toEqual({ kind: "needsPerson", steps: 2 });
    expect(verdictEffect(facts({ ladder: [] }))).toEqual({ kind: "needsPerson", steps: 0 });
    expect(verdictEffect(facts({ hasImage: false }))).toEqual({ kind: "needsPerson", steps: 2 });
  });

  it("only records a rejection of a person's text, an older version or a work that left the inventory, and NEEDS_WORK", () => {
    for (const o of [{ source: "HUMAN" as const }, { isCurrent: false }, { artworkActive: false }, { verdict: "NEEDS_WORK" as const }]) {
      expect(verdictEffect(facts(o))).toEqual({ kind: "record" });
    }
  });

  it("an approval of the current text settles the work; of an older one it is only recorded", () => {
    expect(verdictEffect(facts({ verdict: "APPROVED" }))).toEqual({ kind: "settle" });
    expect(verdictEffect(facts({ verdict: "APPROVED", source: "HUMAN" }))).toEqual({ kind: "settle" });
    expect(verdictEffect(facts({ verdict: "APPROVED", isCurrent: false }))).toEqual({ kind: "record" });
  });

  it("keepsCurrent: a person's text or an approved one", () => {
    expect(keepsCurrent({ source: "HUMAN", reviewState: null })).toBe(true);
    expect(keepsCurrent({ source: "HUMAN", reviewState: "REJECTED" })).toBe(true);
    expect(keepsCurrent({ source: "MODEL", reviewState: "APPROVED" })).toBe(true);
    for (const reviewState of [null, "REJECTED", "NEEDS_WORK"] as const) expect(keepsCurrent({ source: "MODEL", reviewState })).toBe(false);
  });
});

describe("review queue cursors", () => {
  it("round-trip risk and id, null risk included, and refuse anything else", () => {
    for (const p of [{ risk: 0.123456789012345, id: 7 }, { risk: null, id: 2_000_000_000 }, { risk: 0, id: 1 }, { risk: 1, id: 3 }]) {
      expect(decodeCursor(encodeCursor(p))).toEqual(p);
    }
    const enc = (s: string) => Buffer.from(s).toString("base64url");
    for (const bad of ["", "abc", enc("ReviewQueue:"), enc("ReviewQueue:[0.5]"), enc('ReviewQueue:[0.5,"1"]'), enc("ReviewQueue:[0.5,1.5]"), enc("Other:[0.5,1]"), "x".repeat(300)]) {
      expect(() => decodeCursor(bad), bad.slice(0, 30)).toThrow(InvalidCursorError);
    }
  });

  it("order: riskiest first, unassessed last, then id", () => {
    const rows: QueuePosition[] = [{ risk: null, id: 1 }, { risk: 0.2, id: 5 }, { risk: 0.9, id: 9 }, { risk: 0.2, id: 2 }, { risk: null, id: 0 }];
    expect([...rows].sort(compareQueue)).toEqual([{ risk: 0.9, id: 9 }, { risk: 0.2, id: 2 }, { risk: 0.2, id: 5 }, { risk: null, id: 0 }, { risk: null, id: 1 }]);
  });
});

describe("artworkAltText", () => {
  const base = { newestNotRejected: null, title: "The Sleep of Reason", creators: ["Francisco Goya"], year: 1799 };
  it("uses the current text unless it is rejected, then the newest unrejected text, then the title", () => {
    expect(artworkAltText({ ...base, current: null }, 250)).toBeNull();
    expect(artworkAltText({ ...base, current: { text: "An owl. A bat.", rejected: false }, newestNotRejected: "Other." }, 250)).toBe("An owl. A bat.");
    expect(artworkAltText({ ...base, current: { text: "A cat.", rejected: true }, newestNotRejected: "A man sleeps.  Owls fly." }, 250)).toBe("A man sleeps. Owls fly.");
    expect(artworkAltText({ ...base, current: { text: "A cat.", rejected: true } }, 250)).toBe("The Sleep of Reason by Francisco Goya, 1799");
    expect(artworkAltText({ ...base, current: { text: "A cat.", rejected: true } }, 25)).toBe("The Sleep of Reason by…");
  });

  it("never gives an empty alt text (a screen reader would skip the image as decorative): a text with no words gives the title", () => {
    for (const text of ["", "  ", "###", "…"]) {
      expect(artworkAltText({ ...base, current: { text, rejected: false } }, 250), JSON.stringify(text)).toBe("The Sleep of Reason by Francisco Goya, 1799");
      expect(artworkAltText({ ...base, current: { text: "A cat.", rejected: true }, newestNotRejected: text }, 250)).toBe("The Sleep of Reason by Francisco Goya, 1799");
    }
  });

  it("titleText names every creator and leaves out what is unknown", () => {
    expect(titleText({ title: null, creators: [], year: null })).toBe("Untitled work");
    expect(titleText({ title: " Saturn ", creators: [null, " "], year: null })).toBe("Saturn");
    expect(titleText({ title: "Saturn", creators: ["A", "B", "C"], year: 1820 })).toBe("Saturn by A, B and C, 1820");
    expect(titleText({ title: "Saturn", creators: ["A", "B"], year: null })).toBe("Saturn by A and B");
    // The date as Wikidata gives it, not the year it is filed under.
    expect(titleText({ title: "Saturn", creators: ["A"], year: 1800, date: "18th century" })).toBe("Saturn by A, 18th century");
  });
});
