import * as jsdiff from "diff";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { loadConfig } from "../../src/config.js";
import { createHttpApp } from "../../src/server.js";
import { DIFF_MAX_CHARS, DIFF_TIMEOUT_MS, keptWordDiff, wordDiff } from "../../src/web/diff.js";
import { chooseDiff } from "../../src/web/view-models.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { addDescription, makeArtwork, makeGoya, words150 } from "../support/factories.js";
import { serveOnFreePort } from "../support/http.js";

/**
 * Every view of an artwork page diffs two versions, for anyone: the diff is bounded by the texts'
 * length (DIFF_MAX_CHARS) and by time (DIFF_TIMEOUT_MS), and a normal description still gets one.
 * What a view costs is checked by counting the calls into jsdiff (the only costly step) and the
 * budget each is given, not with a clock: a busy CI machine made timed versions of these fail.
 */

vi.mock("diff", async (original) => {
  const actual = await original<typeof import("diff")>();
  return { ...actual, diffWords: vi.fn((before: string, after: string, options: { timeout: number }) => actual.diffWords(before, after, options)) };
});
const diffWords = vi.mocked(jsdiff.diffWords);
beforeEach(() => {
  diffWords.mockClear();
});
/** Words no other text shares: the diff's worst case. */
const distinct = (prefix: string, chars: number) => Array.from({ length: chars }, (_, i) => `${prefix}${i}`).join(" ").slice(0, chars);

describe("wordDiff", () => {
  it("diffs a normal ~150-word description", () => {
    const before = words150(1);
    const after = before.replace(/^(\S+ \S+ )\S+/, "$1changed");
    expect(before.split(" ").length).toBeGreaterThan(140);
    const parts = wordDiff(before, after)!;
    expect(parts.filter((p) => p.kind === "added").map((p) => p.text)).toEqual(["changed"]);
    expect(parts.filter((p) => p.kind === "removed")).toHaveLength(1);
    expect(parts.map((p) => (p.kind === "removed" ? "" : p.text)).join("")).toBe(after);
  });

  it("diffs two rewordings of a 150-word description", () => {
    expect(wordDiff(words150(1), words150(6))).not.toBeNull();
  });

  it("gives no diff, at once, for texts longer than the cap, however alike", () => {
    const long = words150(2).repeat(30);
    expect(long.length).toBeGreaterThan(DIFF_MAX_CHARS);
    expect(wordDiff(long, `${long} more`)).toBeNull();
    expect(diffWords).not.toHaveBeenCalled();
    expect(wordDiff(long.slice(0, DIFF_MAX_CHARS), `${long.slice(0, DIFF_MAX_CHARS - 5)} more`)).not.toBeNull();
  });

  it("the worst pair of texts within the cap is diffed under the time budget", () => {
    const parts = wordDiff(distinct("a", DIFF_MAX_CHARS), distinct("b", DIFF_MAX_CHARS));
    expect(DIFF_TIMEOUT_MS).toBeLessThanOrEqual(50);
    expect(diffWords).toHaveBeenCalledTimes(1);
    expect(diffWords.mock.calls[0]![2]).toMatchObject({ timeout: DIFF_TIMEOUT_MS });
    // Finished in time or given up (null): never a partial diff.
    if (parts) expect(parts.map((p) => (p.kind === "removed" ? "" : p.text)).join("")).toBe(distinct("b", DIFF_MAX_CHARS));
  });

  it("a pair of stored descriptions is diffed once while kept: a page viewed again costs a lookup", () => {
    const a = words150(1);
    const b = words150(6);
    const first = keptWordDiff("D-kept-1", a, "D-kept-2", b);
    const again = keptWordDiff("D-kept-1", a, "D-kept-2", b);
    expect(first).not.toBeNull();
    expect(again).toBe(first);
    expect(diffWords).toHaveBeenCalledTimes(1);
    expect(keptWordDiff("D-kept-1", "a dog", "D-kept-3", "a hound")).toEqual(wordDiff("a dog", "a hound"));
  });

  it("a pair that ran out of time is kept as such: the next view does not spend the budget again", () => {
    // As jsdiff answers when its timeout passes.
    diffWords.mockImplementationOnce(() => undefined as never);
    expect(keptWordDiff("D-slow-1", "one text", "D-slow-2", "another")).toBeNull();
    expect(keptWordDiff("D-slow-1", "one text", "D-slow-2", "another")).toBeNull();
    expect(diffWords).toHaveBeenCalledTimes(1);
  });

  it("20,000-character versions (setDescription's limit) cost nothing", () => {
    const view = chooseDiff([version("2", distinct("a", 20_000)), version("1", distinct("b", 20_000))], null, null);
    expect(view?.parts).toBeNull();
    expect(diffWords).not.toHaveBeenCalled();
  });
});

function version(id: string, text: string) {
  return { id, text, label: `v${id}` } as Parameters<typeof chooseDiff>[0][number];
}

describe("the artwork page", () => {
  let t: TestDb;
  let base: string;
  let close = () => {};
  beforeAll(async () => {
    t = await createTestDb();
    const goya = await makeGoya(t.db);
    const short = await makeArtwork(t.db, { qid: "Q701001", title: "Short", creators: [{ id: goya.id }] });
    await addDescription(t.db, short.id, words150(3));
    await addDescription(t.db, short.id, `${words150(3)} An extra sentence.`, "HUMAN");
    const long = await makeArtwork(t.db, { qid: "Q701002", title: "Long", creators: [{ id: goya.id }] });
    await addDescription(t.db, long.id, `First. ${words150(4).repeat(25)}`);
    await addDescription(t.db, long.id, `Second. ${words150(4).repeat(25)}`, "HUMAN");
    ({ base, close } = await serveOnFreePort(createHttpApp({ db: t.db, config: loadConfig({ LOG_LEVEL: "silent" }) }).server));
  });
  afterAll(async () => {
    close();
    await t.close();
  });

  it("shows the word diff of two normal versions", async () => {
    const html = await (await fetch(`${base}/artworks/Q701001`)).text();
    expect(html).toMatch(/<ins>[^<]*An extra sentence\.[^<]*<\/ins>/);
  });

  it("shows no word diff of two long versions, says so, and still shows both texts", async () => {
    const html = await (await fetch(`${base}/artworks/Q701002`)).text();
    expect(html).not.toContain('class="diff"');
    expect(html).toContain("to compare word by word");
    expect(html).toContain("<p class=\"description\" dir=\"auto\">First. ");
    expect(html).toContain("<p class=\"description\" dir=\"auto\">Second. ");
  });
});
