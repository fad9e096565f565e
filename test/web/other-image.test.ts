import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { setHumanDescription } from "../../src/jobs/descriptions.js";
import { createHttpApp } from "../../src/server.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { makeArtwork } from "../support/factories.js";
import { serveOnFreePort } from "../support/http.js";

/**
 * The artwork page's history says when a text describes a file that is no longer the work's image
 * (Description.imageFile): a reviewer comparing versions must know they were about different images.
 */

let t: TestDb;
let base: string;
let close = () => {};
beforeAll(async () => {
  t = await createTestDb();
  ({ base, close } = await serveOnFreePort(createHttpApp({ db: t.db, config: loadConfig({ LOG_LEVEL: "silent" }) }).server));
});
afterAll(async () => {
  close();
  await t.close();
});

describe("the history of a work whose image changed", () => {
  it("marks the texts of the old file, escaped, and not those of the file it shows now", async () => {
    const art = await makeArtwork(t.db, { qid: "Q702001" });
    const old = await t.db.image.findFirstOrThrow({ where: { artworkId: art.id } });
    await t.db.image.update({ where: { id: old.id }, data: { fileTitle: "File:<b>Old</b> scan.jpg" } });
    await setHumanDescription(t.db, art.id, "A text about the old scan.");
    const page = async () => (await fetch(`${base}/artworks/Q702001`)).text();
    expect(await page()).not.toContain("Describes another image");

    // The sync, after Wikidata's P18 changed: the old Image row goes, the new file is the main image.
    await t.db.image.delete({ where: { id: old.id } });
    await t.db.image.create({ data: { artworkId: art.id, fileTitle: "File:New scan.jpg", isMain: true, localPath: "ab/new.jpg", localHash: "c".repeat(64) } });
    await setHumanDescription(t.db, art.id, "A text about the new scan.");

    const html = await page();
    const marks = html.match(/<p class="meta other-image">[^<]*<\/p>/g) ?? [];
    expect(marks).toEqual(["<p class=\"meta other-image\">Describes another image: File:&lt;b&gt;Old&lt;/b&gt; scan.jpg (no longer the work's image)</p>"]);
    // It sits in the old text's entry (v1), not the new one's (v2).
    const v1 = html.slice(html.indexOf("<h3>v1"));
    expect(v1).toContain("other-image");
    expect(html.slice(html.indexOf("<h3>v2"), html.indexOf("<h3>v1"))).not.toContain("other-image");
  });
});
