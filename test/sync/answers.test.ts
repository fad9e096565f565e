import { describe, expect, it } from "vitest";
import { parseImageinfo } from "../../src/sync/commons.js";
import { BadResponseError, HttpError } from "../../src/sync/http.js";
import { ImageDirError, ImageRejectedError } from "../../src/sync/images.js";
import { failureReason, SyncRunError } from "../../src/sync/sync.js";
import { parseEntities } from "../../src/sync/wikidata.js";

/** The pure checks at the parsing edge: what was asked for must be in the answer. */

const entity = (over: Record<string, unknown> = {}) => ({
  id: "Q1",
  lastrevid: 7,
  modified: "2026-01-01T00:00:00Z",
  labels: { en: { language: "en", value: "A" } },
  claims: { P18: [{ mainsnak: { snaktype: "value", datavalue: { value: "A.jpg", type: "string" } }, rank: "normal" }] },
  ...over,
});
const ALL = ["info", "claims", "labels"];

describe("parseEntities", () => {
  it("accepts an entity with no label and no statement (empty maps, and PHP's [] for them)", () => {
    for (const empty of [{}, []]) {
      const out = parseEntities({ entities: { Q1: entity({ labels: empty, claims: empty }) } }, ["Q1"], ALL);
      expect(out.get("Q1")).toMatchObject({ kind: "found", entity: { labels: {}, claims: {} } });
    }
  });

  it.each<[string, unknown, string[], RegExp]>([
    ["claims asked for, not there", { entities: { Q1: entity({ claims: undefined }) } }, ALL, /without claims/],
    ["labels asked for, not there", { entities: { Q1: entity({ labels: undefined }) } }, ALL, /without labels/],
    ["info asked for, not there", { entities: { Q1: entity({ lastrevid: undefined }) } }, ["info"], /without lastrevid/],
    ["an id not answered", { entities: {} }, ["info"], /did not answer for Q1/],
    ["entities is a list", { entities: [entity()] }, ["info"], /malformed/],
    ["lastrevid is a string", { entities: { Q1: entity({ lastrevid: "7" }) } }, ["info"], /malformed \(entities\.Q1\.lastrevid/],
    ["a label value is a number", { entities: { Q1: entity({ labels: { en: { language: "en", value: 5 } } }) } }, ALL, /malformed/],
    ["a bad modified date", { entities: { Q1: entity({ modified: "yesterday" }) } }, ["info"], /bad modified date/],
    [
      "P18 holding an item",
      { entities: { Q1: entity({ claims: { P18: [{ mainsnak: { snaktype: "value", datavalue: { value: { id: "Q5" }, type: "wikibase-entityid" } }, rank: "normal" }] } }) } },
      ALL,
      /P18 value that is not a string/,
    ],
    ["an API error", { error: { code: "internal_api_error", info: "boom" } }, ["info"], /internal_api_error: boom/],
    ["not an object", "<html>", ["info"], /malformed/],
  ])("%s: BadResponseError", (_name, json, props, reason) => {
    expect(() => parseEntities(json, ["Q1"], props)).toThrow(BadResponseError);
    expect(() => parseEntities(json, ["Q1"], props)).toThrow(reason);
  });

  it("labels only: claims are not required", () => {
    expect(parseEntities({ entities: { Q1: { id: "Q1", labels: {} } } }, ["Q1"], ["labels"]).get("Q1")?.kind).toBe("found");
  });
});

describe("parseImageinfo", () => {
  const ii = { url: "u", size: 1, width: 2, height: 3, mime: "image/jpeg", sha1: "s" };
  it("pages by final title (through normalisation); a page lacking what iiprop asked for is that page's fault, a malformed answer the batch's", () => {
    const json = { query: { normalized: [{ from: "File:a.jpg", to: "File:A.jpg" }], pages: { "1": { title: "File:A.jpg", imageinfo: [ii] } } } };
    const parsed = parseImageinfo(json);
    expect([parsed.pages.has("File:A.jpg"), parsed.aliases.get("File:a.jpg"), parsed.broken.size]).toEqual([true, "File:A.jpg", 0]);
    const noSha = { query: { pages: { "1": { title: "File:A.jpg", imageinfo: [{ ...ii, sha1: undefined }] }, "2": { title: "File:B.jpg", imageinfo: [ii] } } } };
    const one = parseImageinfo(noSha);
    expect([...one.pages.keys()]).toEqual(["File:B.jpg"]);
    expect(one.broken.get("File:A.jpg")).toMatch(/lacks sha1, which was asked for/);
    const hidden = { query: { pages: { "1": { title: "File:A.jpg", imageinfo: [{ filehidden: "" }] } } } };
    expect(parseImageinfo(hidden).pages.size).toBe(1);
    expect(() => parseImageinfo({ query: { pages: { "1": { title: 5 } } } })).toThrow(BadResponseError);
    expect(() => parseImageinfo({ batchcomplete: "" })).toThrow(/malformed/);
  });
});

describe("failureReason", () => {
  it("keeps the messages of our own errors and reduces anything else to its class and code", () => {
    expect(failureReason("Commons has no such file")).toBe("Commons has no such file");
    expect(failureReason(new BadResponseError("incomplete JSON"))).toBe("incomplete JSON");
    expect(failureReason(new HttpError("HTTP 404", "https://x"))).toBe("HTTP 404");
    expect(failureReason(new ImageRejectedError("aspect-ratio", "image is 1×60000 px"))).toBe("image is 1×60000 px");
    expect(failureReason(new SyncRunError("no inventory"))).toBe("no inventory");
    expect(failureReason(new ImageDirError("EACCES", "/srv/secret/images"))).not.toContain("/srv/secret");
    const fsError = Object.assign(new Error("EISDIR: illegal operation on a directory, rename '/srv/secret/a.tmp' -> '/srv/secret/a.jpg'"), { code: "EISDIR" });
    expect(failureReason(fsError)).toBe("unexpected Error (EISDIR); the service log has the details");
    expect(failureReason(new TypeError("Cannot read properties of undefined (reading 'x') at /srv/app/x.js:1:1"))).toBe(
      "unexpected TypeError; the service log has the details",
    );
  });
});
