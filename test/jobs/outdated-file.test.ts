import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import type { DescribeOutput } from "../../src/describe/types.js";
import { paramsFromConfig } from "../../src/generation/params.js";
import { recordModelDescription } from "../../src/jobs/descriptions.js";
import { createTestDb, type TestDb } from "../support/db.js";
import { makeArtwork } from "../support/factories.js";
import { scriptedDescriber } from "../support/scripted-describer.js";

let t: TestDb;
let base: DescribeOutput;
beforeAll(async () => {
  t = await createTestDb();
  const [out] = await scriptedDescriber({ steps: 1, stepMs: 0 }).describe([{ imagePath: "/nowhere.jpg" }], paramsFromConfig(loadConfig({})));
  base = out!;
});
afterAll(async () => {
  await t?.close();
});

const OLD = "a".repeat(64);
const NEW = "b".repeat(64);

/** A work whose main image's file is `hash`, and two describe jobs running on it. */
async function workWithTwoJobs(hash: string) {
  const art = await makeArtwork(t.db);
  const image = await t.db.image.findFirstOrThrow({ where: { artworkId: art.id } });
  await t.db.image.update({ where: { id: image.id }, data: { localHash: hash } });
  const job = () => t.db.job.create({ data: { artworkId: art.id, imageId: image.id, status: "RUNNING", holder: "test" } });
  return { art, image, first: await job(), second: await job() };
}

const current = async (artworkId: number) => (await t.db.artwork.findUniqueOrThrow({ where: { id: artworkId } })).currentDescriptionId;

describe("a job that read a file the image no longer has", () => {
  it("finishing after the job that read the new file, is kept as history and does not replace that text", async () => {
    const { art, image, first, second } = await workWithTwoJobs(OLD);
    // A re-upload came while the first job ran; the second job read the new file and finished first.
    await t.db.image.update({ where: { id: image.id }, data: { localHash: NEW } });
    const fresh = await recordModelDescription(t.db, second, "test", { id: image.id }, { ...base, text: "The new file.", imageHash: NEW });
    expect(fresh).toMatchObject({ becameCurrent: true, outdatedFile: false });
    const stale = await recordModelDescription(t.db, first, "test", { id: image.id }, { ...base, text: "The old file.", imageHash: OLD });
    expect(stale).toMatchObject({ becameCurrent: false, outdatedFile: true });
    expect(await current(art.id)).toBe(fresh.description.id);
    // Nothing is lost: the old file's text and its job's success are recorded.
    expect(await t.db.description.findUniqueOrThrow({ where: { id: stale.description.id } })).toMatchObject({ text: "The old file.", imageHash: OLD });
    expect(await t.db.job.findUniqueOrThrow({ where: { id: first.id } })).toMatchObject({ status: "SUCCEEDED" });
  });

  it("whose image row a sync removed while it ran (a Commons rename) is still written, naming its file, and the job succeeds", async () => {
    const { art, image, first } = await workWithTwoJobs(OLD);
    await t.db.image.delete({ where: { id: image.id } });
    const written = await recordModelDescription(t.db, first, "test", { id: image.id, fileTitle: image.fileTitle }, { ...base, text: "The renamed file.", imageHash: OLD });
    expect(written.becameCurrent).toBe(true);
    expect(await t.db.description.findUniqueOrThrow({ where: { id: written.description.id } })).toMatchObject({ imageId: null, imageFile: image.fileTitle, text: "The renamed file." });
    expect(await t.db.job.findUniqueOrThrow({ where: { id: first.id } })).toMatchObject({ status: "SUCCEEDED" });
    expect(await current(art.id)).toBe(written.description.id);
  });

  it("a forced job's text of the old file does not replace the new file's either", async () => {
    const { art, image, first, second } = await workWithTwoJobs(OLD);
    await t.db.image.update({ where: { id: image.id }, data: { localHash: NEW } });
    const fresh = await recordModelDescription(t.db, second, "test", { id: image.id }, { ...base, imageHash: NEW });
    const forced = { ...first, force: true };
    expect(await recordModelDescription(t.db, forced, "test", { id: image.id }, { ...base, imageHash: OLD })).toMatchObject({ becameCurrent: false, outdatedFile: true });
    expect(await current(art.id)).toBe(fresh.description.id);
  });

  it("still becomes current when no text of the new file exists yet (the work had none, or one of an older file)", async () => {
    const { art, image, first, second } = await workWithTwoJobs(OLD);
    await t.db.image.update({ where: { id: image.id }, data: { localHash: NEW } });
    const a = await recordModelDescription(t.db, first, "test", { id: image.id }, { ...base, imageHash: OLD });
    expect(a).toMatchObject({ becameCurrent: true, outdatedFile: false });
    expect(await current(art.id)).toBe(a.description.id);
    // The job that read the new file then replaces it, as any newer model text does.
    const b = await recordModelDescription(t.db, second, "test", { id: image.id }, { ...base, imageHash: NEW });
    expect(b).toMatchObject({ becameCurrent: true, outdatedFile: false });
    expect(await current(art.id)).toBe(b.description.id);
  });

  it("a text of an image that is no longer the main one does not replace one of the new main image", async () => {
    const { art, image, first, second } = await workWithTwoJobs(OLD);
    // Wikidata's P18 changed while the first job ran: another file is the main image now.
    await t.db.image.update({ where: { id: image.id }, data: { isMain: false } });
    const other = await t.db.image.create({ data: { artworkId: art.id, fileTitle: "File:Other.jpg", isMain: true, localPath: "cd/other.jpg", localHash: NEW } });
    const fresh = await recordModelDescription(t.db, second, "test", { id: other.id }, { ...base, imageHash: NEW });
    expect(fresh.becameCurrent).toBe(true);
    expect(await recordModelDescription(t.db, first, "test", { id: image.id }, { ...base, imageHash: OLD })).toMatchObject({ becameCurrent: false, outdatedFile: true });
    expect(await current(art.id)).toBe(fresh.description.id);
  });
});
