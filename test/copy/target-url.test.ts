import { describe, expect, it } from "vitest";
import { parseTargetUrl, TargetUrlError } from "../../src/copy/target-url.js";

describe("parseTargetUrl", () => {
  it("takes SQLite file: URLs and PostgreSQL URLs, including a Unix socket", () => {
    expect(parseTargetUrl("file:./data/new.db").kind).toBe("sqlite");
    expect(parseTargetUrl("FILE:/tmp/x.db?mode=rwc").kind).toBe("sqlite");
    expect(parseTargetUrl("postgresql://art@db.example/artdesc").kind).toBe("postgresql");
    expect(parseTargetUrl("postgres://art:pw@10.0.0.1:5433/artdesc?sslmode=require").shown).not.toContain("pw");
    expect(parseTargetUrl("postgresql:///artdesc?host=%2Fvar%2Frun%2Fpostgresql").kind).toBe("postgresql");
    expect(parseTargetUrl("postgresql://art@localhost/artdesc?host=%2Fvar%2Frun%2Fpostgresql").kind).toBe("postgresql");
  });

  it.each([
    ["empty", ""],
    ["another database", "mysql://root@localhost/artdesc"],
    ["a web address", "https://example.org/db"],
    ["a bare path", "./data/artdesc.db"],
    ["file: without a path", "file:"],
    ["file: with only a query", "file:?mode=ro"],
    ["a NUL byte", "file:/tmp/a\u0000b.db"],
    ["a newline", "postgresql://u@h/db\nDROP"],
    ["no host", "postgresql:///artdesc"],
    ["no database", "postgresql://art:secret@db.example"],
    ["no database, only a slash", "postgresql://art:secret@db.example/"],
    ["unparseable", "postgresql://art:secret@[::1/db"],
    ["far too long", `file:/tmp/${"a".repeat(5000)}`],
  ])("refuses %s with a TargetUrlError that shows no password", (_name, text) => {
    let error: unknown;
    try {
      parseTargetUrl(text);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(TargetUrlError);
    expect((error as Error).message).not.toContain("secret");
    expect((error as Error).message).toMatch(/^--to: /);
  });
});
