import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";
import { parseImageSourceUrl } from "../../src/images/source-url.js";

describe("IMAGE_SOURCE_URL", () => {
  it.each([
    ["http://api:4000/images/", "http://api:4000/images/"],
    ["http://api:4000/images", "http://api:4000/images/"],
    ["http://api:4000", "http://api:4000/images/"],
    ["http://api:4000/", "http://api:4000/images/"],
    ["  https://art.example.org/artdesc/images  ", "https://art.example.org/artdesc/images/"],
    ["HTTPS://Art.Example.org/images/", "https://art.example.org/images/"],
  ])("%j is the base %j", (raw, url) => {
    expect(parseImageSourceUrl(raw)).toEqual({ url });
  });

  it.each([
    ["api:4000/images/", /http or https/],
    ["file:///data/images/", /http or https/],
    ["ftp://api/images/", /http or https/],
    ["not a url", /not a URL/],
    ["http://user:pw@api:4000/images/", /user name or password/],
    ["http://api:4000/images/?x=1", /query string/],
    ["http://api:4000/images/#top", /query string or fragment/],
    ["http://api:4000/graphql", /\/images\//],
    ["http://api:4000/images/a.jpg", /\/images\//],
    ["http://api:4000/imagesx/", /\/images\//],
  ])("%j is refused", (raw, problem) => {
    const r = parseImageSourceUrl(raw);
    expect("problem" in r && r.problem).toMatch(problem);
  });

  it("loadConfig normalises it, names it when it is wrong, and leaves it unset by default", () => {
    expect(loadConfig({}).IMAGE_SOURCE_URL).toBeUndefined();
    expect(loadConfig({ IMAGE_SOURCE_URL: "" }).IMAGE_SOURCE_URL).toBeUndefined();
    expect(loadConfig({ IMAGE_SOURCE_URL: "http://api:4000" }).IMAGE_SOURCE_URL).toBe("http://api:4000/images/");
    expect(() => loadConfig({ IMAGE_SOURCE_URL: "ftp://api/images/" })).toThrow(ConfigError);
    expect(() => loadConfig({ IMAGE_SOURCE_URL: "ftp://api/images/" })).toThrow(/IMAGE_SOURCE_URL="ftp:\/\/api\/images\/": must be http or https/);
  });
});
