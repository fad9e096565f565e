import { readdirSync } from "node:fs";
import { lstat } from "node:fs/promises";
import { setPriority } from "node:os";
import { join } from "node:path";
import type { Config } from "../config.js";
import { type Db, type Prisma, writeTransaction } from "../db.js";
import type { AttributionKind, SyncRunStatus } from "../generated/prisma/enums.js";
import type { SyncCounts } from "../ops/sync-counts.js";
import type { Logger } from "../log.js";
import { searchForm } from "../text/normalize.js";
import { fetchImageinfo, type FileInfo, IMAGEINFO_BATCH, imageHostCheck, thumbWidthFor } from "./commons.js";
import { FINISHED_SYNC_STATUSES, summarizeSync, type SyncSummary } from "./summary.js";
import { BadResponseError, createHttpClient, type HttpClient, HttpError, SyncConfigError } from "./http.js";
import { dialect } from "../store/sql.js";
import { sweepStaleTempFiles } from "../store/file-writes.js";
import { checkImageDir, dimensionProblem, ImageDirError, type ImageProblem, ImageRejectedError, normalizeImage, storeImage } from "./images.js";
import {
  type ArtworkDetails,
  creditedCreators,
  type EntityOutcome,
  fetchEntities,
  fetchInventory,
  type InventoryItem,
  LINKED_ITEM_PROPS,
  parseArtwork,
  parseLabels,
  parseLinkedItem,
  qidNumber,
  wikidataUrls,
} from "./wikidata.js";
import { labelLanguages } from "./languages.js";

/**
 * One sync run: inventory per creator, details for new or changed works (each written in its own
 * transaction), Commons imageinfo and downloads, then a check of the works that left the
 * inventory. One item that fails is recorded as a SyncFailure; the run goes on.
 */

/** The run as a whole cannot go on (no inventory, no details, no image record could be read). */
export class SyncRunError extends Error {
  override name = "SyncRunError";
}

/**
 * The reason stored with a failure or a run (and shown by GraphQL): the message of an error this
 * code raised on purpose, which names no local path; for anything else only its class and code.
 * The whole error, with its paths and stack, goes to the service log.
 */
export function failureReason(err: unknown): string {
  if (typeof err === "string") return err;
  if (
    err instanceof HttpError ||
    err instanceof BadResponseError ||
    err instanceof ImageRejectedError ||
    err instanceof SyncConfigError ||
    err instanceof SyncRunError
  ) {
    return err.message;
  }
  const name = err instanceof Error ? err.name : typeof err;
  const code = (err as { code?: unknown } | null)?.code;
  return `unexpected ${name}${typeof code === "string" || typeof code === "number" ? ` (${code})` : ""}; the service log has the details`;
}

/**
 * Labels of linked items and creators, and every image's Commons record (a re-upload changes its
 * sha1 but not the Wikidata item), are refreshed by --full and at least this often.
 */
export const FULL_REFRESH_DAYS = 7;
const DETAILS_BATCH = 50;

export type SyncStage = "inventory" | "details" | "write" | "imageinfo" | "download" | "normalise" | "removal";

export interface SyncProgress {
  phase: "inventory" | "details" | "images" | "removal" | "done";
  worksDone: number;
  worksTotal: number;
  imagesDone: number;
  imagesTotal: number;
}

export interface SyncDeps {
  db: Db;
  config: Config;
  log: Logger;
}

export interface SyncOptions {
  /** Creator QIDs; default SYNC_CREATORS. */
  creators?: string[];
  /** Fetch details of every work, not only new or changed ones, and refresh (see FULL_REFRESH_DAYS). */
  full?: boolean;
  trigger?: "manual" | "schedule" | "startup";
  holder?: string;
  /** Aborting stops taking new work; the item in progress finishes. */
  signal?: AbortSignal;
  onProgress?: (p: SyncProgress) => void;
}

type Counts = Omit<SyncCounts, "jobsQueued">;

interface Attribution {
  creatorId: number;
  kind: AttributionKind;
}

interface Found {
  revision: number;
  modified: Date;
  attributions: Attribution[];
}

export async function runSync(deps: SyncDeps, options: SyncOptions = {}): Promise<SyncSummary> {
  const { db, config, log } = deps;
  // Refuses to start without USER_AGENT_CONTACT, before anything is written.
  const http = createHttpClient(config);
  const creators = options.creators?.length ? options.creators : config.SYNC_CREATORS;
  const signal = options.signal;

  // Whoever calls this holds the "sync" lease: a RUNNING row now belongs to a process that died.
  await db.syncRun.updateMany({
    where: { status: "RUNNING" },
    data: { status: "ABORTED", finishedAt: new Date(), error: "the process ended before the run finished" },
  });
  const lastFull = await db.syncRun.findFirst({
    where: { full: true, status: { in: FINISHED_SYNC_STATUSES }, startedAt: { gt: new Date(Date.now() - FULL_REFRESH_DAYS * 86_400_000) } },
    select: { id: true },
  });
  const full = options.full === true;
  const refresh = full || !lastFull;
  const run = await db.syncRun.create({
    data: { trigger: options.trigger ?? "manual", full: refresh, creators: JSON.stringify(creators), holder: options.holder ?? null },
  });
  const counts: Counts = {
    seen: 0,
    created: 0,
    updated: 0,
    unchanged: 0,
    removed: 0,
    skippedNoImage: 0,
    failed: 0,
    imagesDownloaded: 0,
    imagesUnchanged: 0,
  };
  const progress: SyncProgress = { phase: "inventory", worksDone: 0, worksTotal: 0, imagesDone: 0, imagesTotal: 0 };
  const report = () => options.onProgress?.({ ...progress });
  const fail = async (stage: SyncStage, cause: unknown, item: { itemQid?: string; fileTitle?: string } = {}) => {
    counts.failed++;
    const reason = failureReason(cause);
    log.warn({ stage, ...item, reason, ...(typeof cause === "string" ? {} : { err: cause }) }, "sync item failed");
    await db.syncFailure.create({ data: { syncRunId: run.id, stage, reason: reason.slice(0, 2000), ...item } });
  };
  const ctx: RunContext = { db, config, log, http, allowImageUrl: imageHostCheck(config), full, refresh, signal, counts, progress, report, fail };

  let status: SyncRunStatus = "SUCCEEDED";
  let error: string | null = null;
  try {
    // A folder that cannot take a file fails the run here, once, not once per image.
    await checkImageDir(config);
    const swept = await sweepStaleTempFiles(config.IMAGE_DIR);
    if (swept) log.info({ files: swept }, "removed temporary image files left by an interrupted write");
    await runStages(ctx, creators);
    if (signal?.aborted) status = "ABORTED";
    else if (counts.failed > 0) status = "PARTIAL";
  } catch (err) {
    if (signal?.aborted && !(err instanceof ImageDirError)) {
      status = "ABORTED";
      error = "stopped before the end";
    } else {
      status = "FAILED";
      error = failureReason(err);
      log.error({ err, ...(err instanceof ImageDirError ? { path: err.path } : {}) }, `sync stopped: ${error}`);
    }
  }
  progress.phase = "done";
  report();
  return summarizeSync(await db.syncRun.update({ where: { id: run.id }, data: { ...counts, status, error, finishedAt: new Date() } }));
}

/**
 * Lets the event loop serve whatever is waiting (the lease's renewal, the HTTP client's timers,
 * `daemon`'s heartbeats and worker) before the sync goes on. Each step of the sync awaits
 * statements that better-sqlite3 answers synchronously, so without this a batch of 50 works runs
 * as one long task and everything else waits for all of it.
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * The nice value of a sync process (`artdesc sync`, and the child process `artdesc start` runs
 * each sync in): a batch job leaves the CPU to the API and the worker.
 */
export const SYNC_PROCESS_NICE = 19;

/**
 * Lowers the priority of this whole process (for `artdesc sync` and the sync process of `start`,
 * never for `start` itself, whose API runs in it). Linux keeps a nice value per thread, so every
 * thread already running (libuv's pool, where sharp works) is lowered too; threads started later
 * inherit it. Where that cannot be done, the sync simply runs at normal priority.
 */
export function runAtBackgroundPriority(): void {
  let tids: number[] = [];
  try {
    tids = readdirSync("/proc/self/task").map(Number).filter(Number.isInteger);
  } catch {
    // no /proc (not Linux): the process-wide call below is all there is
  }
  for (const tid of tids.length ? tids : [0]) {
    try {
      setPriority(tid, SYNC_PROCESS_NICE);
    } catch {
      // a thread that ended meanwhile, or no right to change it: the sync runs all the same
    }
  }
}

interface RunContext {
  db: Db;
  config: Config;
  log: Logger;
  http: HttpClient;
  /** Which image URLs may be fetched (IMAGE_HOSTS), built once for the run. */
  allowImageUrl: (url: URL) => boolean;
  /** Details of every work, changed or not. */
  full: boolean;
  /** Labels and image records of everything, changed or not. */
  refresh: boolean;
  signal?: AbortSignal;
  counts: Counts;
  progress: SyncProgress;
  report: () => void;
  /** Records a failure: `cause` is our own text or the error (see failureReason). */
  fail: (stage: SyncStage, cause: unknown, item?: { itemQid?: string; fileTitle?: string }) => Promise<void>;
}

async function runStages(ctx: RunContext, creatorQids: string[]): Promise<void> {
  const { db, config, http, signal } = ctx;
  const urls = wikidataUrls(config.WIKIDATA_API_URL, config.WIKIDATA_SPARQL_URL);
  const creatorIds = await ensureCreators(ctx, urls, creatorQids);

  // 1. Inventory: one query per creator, merged by item.
  ctx.report();
  const inventory = new Map<string, Found>();
  const inventoried: number[] = [];
  for (const qid of creatorQids) {
    signal?.throwIfAborted();
    let items: InventoryItem[];
    try {
      items = await fetchInventory(http, urls, qid, signal);
    } catch (err) {
      if (signal?.aborted) throw err;
      await ctx.fail("inventory", err, { itemQid: qid });
      continue;
    }
    const creatorId = creatorIds.get(qid)!;
    inventoried.push(creatorId);
    for (const it of items) {
      const f = inventory.get(it.qid) ?? { revision: it.revision, modified: it.modified, attributions: [] };
      f.attributions.push(...it.attributions.map((kind) => ({ creatorId, kind })));
      inventory.set(it.qid, f);
    }
  }
  if (inventoried.length === 0) throw new SyncRunError(`no inventory could be read (${creatorQids.join(", ")}); see the run's failures`);
  ctx.counts.seen = inventory.size;

  // 2. What is new or changed.
  const syncedCreatorIds = [...creatorIds.values()];
  const existing = new Map(
    (
      await db.artwork.findMany({
        select: { qid: true, wikidataRevision: true, state: true, mergedIntoQid: true, creators: { select: { creatorId: true, attribution: true } } },
      })
    ).map((a) => [a.qid, a]),
  );
  const todo: string[] = [];
  // A full run reads every work again; one whose revision and attributions did not change still
  // counts as unchanged, so `updated` says what changed whichever kind of run it was.
  const unchangedBefore = new Set<string>();
  for (const [qid, f] of inventory) {
    const old = existing.get(qid);
    // Attributions count (and are replaced) only for creators whose inventory was read in this run.
    const same =
      old &&
      old.state === "ACTIVE" &&
      old.wikidataRevision === BigInt(f.revision) &&
      attributionKey(old.creators.filter((c) => inventoried.includes(c.creatorId)).map((c) => ({ creatorId: c.creatorId, kind: c.attribution }))) ===
        attributionKey(f.attributions);
    if (same && !ctx.full) ctx.counts.unchanged++;
    else {
      todo.push(qid);
      if (same) unchangedBefore.add(qid);
    }
  }
  todo.sort((a, b) => qidNumber(a) - qidNumber(b));

  // 3. Details and writes, 50 works at a time, each work in its own transaction.
  ctx.progress.phase = "details";
  ctx.progress.worksTotal = todo.length;
  ctx.report();
  const images = new ImagePipeline(ctx);
  const labelled = new Set<string>();
  let unreadable = 0;
  try {
    for (let i = 0; i < todo.length && !signal?.aborted; i += DETAILS_BATCH) {
      const batch = todo.slice(i, i + DETAILS_BATCH);
      let outcomes: Map<string, EntityOutcome>;
      try {
        outcomes = await fetchEntities(http, urls, batch, ["info", "claims", "labels"], labelLanguages(config.SYNC_LANGUAGES), signal);
      } catch (err) {
        if (signal?.aborted) throw err;
        for (const qid of batch) await ctx.fail("details", err, { itemQid: qid });
        unreadable += batch.length;
        ctx.progress.worksDone += batch.length;
        ctx.report();
        continue;
      }
      const details: ArtworkDetails[] = [];
      await yieldToEventLoop();
      for (const qid of batch) {
        const o = outcomes.get(qid)!;
        if (o.kind === "found") details.push(parseArtwork(o.entity, labelLanguages(config.SYNC_LANGUAGES)));
        else {
          // The query service lags the wiki: the item was merged or deleted after the inventory was
          // taken, or long ago and the query service missed it. Wikidata's own answer is the truth:
          // a work in the mirror is marked now (as the removal check marks one, never dropped), once;
          // one not in the mirror is this run's failure (there is nothing to store).
          const data = goneState(o);
          const old = existing.get(qid);
          if (old) {
            if (old.state !== data.state || (data.state === "MERGED" && old.mergedIntoQid !== data.mergedIntoQid)) await markGone(ctx, qid, data);
          } else await ctx.fail("details", o.kind === "redirect" ? `now redirects to ${o.to}` : "no longer exists", { itemQid: qid });
          ctx.progress.worksDone++;
        }
      }
      await ensureLinkedItems(ctx, urls, details.flatMap((d) => d.links.map((l) => l.qid)), labelled);
      const written: number[] = [];
      for (const d of details) {
        if (signal?.aborted) break;
        try {
          const { id, created } = await writeArtwork(db, d, inventory.get(d.qid)!, inventoried, !existing.has(d.qid));
          written.push(id);
          if (created) ctx.counts.created++;
          else if (unchangedBefore.has(d.qid)) ctx.counts.unchanged++;
          else ctx.counts.updated++;
          if (d.images.length === 0) ctx.counts.skippedNoImage++;
        } catch (err) {
          await ctx.fail("write", err, { itemQid: d.qid });
        }
        ctx.progress.worksDone++;
        ctx.report();
        await yieldToEventLoop();
      }
      // 4. Images of the works just written start now, alongside the next batches.
      if (written.length && !signal?.aborted) await images.add(await imageRows(db, { artworkId: { in: written } }));
    }
    ctx.progress.phase = "images";
    ctx.report();
    if (!signal?.aborted) await images.add(await remainingImages(ctx, syncedCreatorIds));
  } finally {
    // Downloads in flight end before the run goes on (or is recorded), whatever happened.
    await images.finish();
  }
  // Wikidata as a whole could not be read: every details request, for several works, failed. One
  // changed work whose details keep failing is that work's failure, as for Commons below: it must
  // not fail a quiet night, which would skip the removal check and the describe jobs.
  if (todo.length > 1 && unreadable === todo.length) {
    throw new SyncRunError(`no work's details could be read (${todo.length} works); see the run's failures`);
  }
  // Commons as a whole could not be read: every imageinfo request, for several files, failed. Files
  // whose own records keep failing (odd pages, asked for again each run) are those files' failures,
  // even when they are all a quiet night asks for: they must not fail the run, which would skip the
  // removal check below and the night's describe jobs.
  if (images.recordsAsked > 1 && images.requestsFailed === images.requests) {
    throw new SyncRunError(`no image record could be read from Commons (${images.recordsAsked} files); see the run's failures`);
  }

  // 5. Works that left every inventory that could be read.
  if (!signal?.aborted) {
    const inventoriedQids = creatorQids.filter((q) => inventoried.includes(creatorIds.get(q)!));
    await checkVanished(ctx, urls, inventory, inventoried, new Set(inventoriedQids));
  }
}

const attributionKey = (as: Attribution[]) =>
  as
    .map((a) => `${a.creatorId}:${a.kind}`)
    .sort()
    .join(",");

/** Creator rows (with search-form labels) for the creators of this run; labels refreshed on a refreshing run. */
async function ensureCreators(ctx: RunContext, urls: ReturnType<typeof wikidataUrls>, qids: string[]): Promise<Map<string, number>> {
  const { db, config, http } = ctx;
  const have = await db.creator.findMany({ where: { qid: { in: qids } }, select: { id: true, qid: true } });
  const ids = new Map(have.map((c) => [c.qid, c.id]));
  const fetch = ctx.refresh ? qids : qids.filter((q) => !ids.has(q));
  let outcomes = new Map<string, EntityOutcome>();
  if (fetch.length) {
    try {
      outcomes = await fetchEntities(http, urls, fetch, ["labels"], labelLanguages(config.SYNC_LANGUAGES), ctx.signal);
    } catch (err) {
      if (ctx.signal?.aborted) throw err;
      for (const q of fetch) await ctx.fail("details", `creator labels: ${failureReason(err)}`, { itemQid: q });
    }
  }
  for (const qid of fetch) {
    const o = outcomes.get(qid);
    // A configured creator merged into another item (or deleted): its works move to the other QID
    // as bots re-point them, and would drift to NOT_BY_CREATOR here. Said on every refreshing run
    // until SYNC_CREATORS names the item the works now point to.
    if (o?.kind === "redirect") {
      await ctx.fail("details", `the creator ${qid} in SYNC_CREATORS was merged into ${o.to} on Wikidata: put ${o.to} in SYNC_CREATORS`, { itemQid: qid });
    } else if (o?.kind === "missing") {
      await ctx.fail("details", `the creator ${qid} in SYNC_CREATORS no longer exists on Wikidata`, { itemQid: qid });
    }
    const labels = o?.kind === "found" ? parseLabels(o.entity, labelLanguages(config.SYNC_LANGUAGES)) : null;
    if (!labels && ids.has(qid)) continue;
    const rows = Object.entries(labels ?? {}).map(([language, label]) => ({ language, label, normalized: searchForm(label) }));
    const label = Object.values(labels ?? {})[0] ?? null;
    const c = await writeTransaction(db, async (tx) => {
      const row = await tx.creator.upsert({ where: { qid }, create: { qid, label }, update: { label }, select: { id: true } });
      await tx.creatorLabel.deleteMany({ where: { creatorId: row.id } });
      if (rows.length) await tx.creatorLabel.createMany({ data: rows.map((r) => ({ ...r, creatorId: row.id })) });
      return row;
    });
    ids.set(qid, c.id);
  }
  return ids;
}

/** LinkedItem rows for every linked QID: new ones always, all of them once per refreshing run. */
async function ensureLinkedItems(ctx: RunContext, urls: ReturnType<typeof wikidataUrls>, qids: string[], labelled: Set<string>): Promise<void> {
  const { db, config, http } = ctx;
  const unique = [...new Set(qids)].filter((q) => !labelled.has(q));
  if (!unique.length) return;
  // An item whose labels could not be read yet (no refreshedAt) is asked again.
  const known = new Set(
    (await db.linkedItem.findMany({ where: { qid: { in: unique }, refreshedAt: { not: null } }, select: { qid: true } })).map((l) => l.qid),
  );
  const fetch = ctx.refresh ? unique : unique.filter((q) => !known.has(q));
  for (const q of unique) if (!fetch.includes(q)) labelled.add(q);
  if (!fetch.length) return;
  let outcomes = new Map<string, EntityOutcome>();
  try {
    outcomes = await fetchEntities(http, urls, fetch, LINKED_ITEM_PROPS, labelLanguages(config.SYNC_LANGUAGES), ctx.signal);
  } catch (err) {
    if (ctx.signal?.aborted) throw err;
    // The links still need their rows; the labels come on a later run.
    await ctx.fail("details", `labels of linked items: ${failureReason(err)}`);
  }
  const now = new Date();
  await db.$transaction(
    fetch.map((qid) => {
      const o = outcomes.get(qid);
      const item = o?.kind === "found" ? parseLinkedItem(o.entity, labelLanguages(config.SYNC_LANGUAGES)) : null;
      if (item) labelled.add(qid);
      const data = item
        ? {
            label: labelLanguages(config.SYNC_LANGUAGES).map((l) => item.labels[l]).find(Boolean) ?? null,
            labels: JSON.stringify(item.labels),
            aliases: JSON.stringify(item.aliases),
            instanceOf: JSON.stringify(item.instanceOf),
            refreshedAt: now,
          }
        : {};
      return db.linkedItem.upsert({ where: { qid }, create: { qid, ...data }, update: data });
    }),
  );
}

/** The Artwork columns a sync writes from Wikidata (writeArtwork's fields, but lastSyncedAt). */
const RECORD_FIELDS = {
  title: true,
  titles: true,
  inception: true,
  inceptionPrecision: true,
  inceptionYear: true,
  height: true,
  heightUnit: true,
  width: true,
  widthUnit: true,
  wikidataRevision: true,
  wikidataModified: true,
  state: true,
  mergedIntoQid: true,
} as const;

type RecordValue = string | number | bigint | boolean | Date | null | undefined | readonly Record<string, unknown>[];

/**
 * Whether a stored work is the record a sync would write (its RECORD_FIELDS, and its creators read
 * in this run, links and images, in order). Numbers and revision ids (a number or a BigInt) and dates compare by value.
 */
export function sameRecord(stored: Record<string, RecordValue>, next: Record<string, RecordValue>): boolean {
  const plain = (v: RecordValue): unknown =>
    v instanceof Date ? v.getTime() : typeof v === "bigint" || typeof v === "number" ? String(v) : Array.isArray(v) ? v.map((row) => Object.entries(row).map(([k, x]) => [k, plain(x as RecordValue)])) : (v ?? null);
  return [...Object.keys(RECORD_FIELDS), "creators", "links", "images"].every((key) => JSON.stringify(plain(stored[key])) === JSON.stringify(plain(next[key])));
}

async function writeArtwork(db: Db, d: ArtworkDetails, found: Found, inventoriedCreatorIds: number[], isNew: boolean): Promise<{ id: number; created: boolean }> {
  const now = new Date();
  const fields = {
    title: d.title,
    titles: JSON.stringify(d.titles),
    inception: d.inception,
    inceptionPrecision: d.inceptionPrecision,
    inceptionYear: d.inceptionYear,
    height: d.height,
    heightUnit: d.heightUnit,
    width: d.width,
    widthUnit: d.widthUnit,
    wikidataRevision: d.revision || found.revision,
    wikidataModified: d.modified ?? found.modified,
    lastSyncedAt: now,
    state: "ACTIVE" as const,
    mergedIntoQid: null,
  };
  const creators = found.attributions.map((a, position) => ({ creatorId: a.creatorId, attribution: a.kind, position }));
  const links = d.links.map((l, position) => ({ property: l.property, itemQid: l.qid, position }));
  if (isNew) {
    // One nested create is one transaction, and much cheaper than an interactive one.
    const created = await db.artwork.create({
      data: {
        ...fields,
        qid: d.qid,
        qidNumber: qidNumber(d.qid),
        firstSeenAt: now,
        creators: { createMany: { data: creators } },
        links: { createMany: { data: links } },
        images: { createMany: { data: d.images.map((img, position) => ({ fileTitle: img.fileTitle, isMain: img.isMain, position })) } },
      },
      select: { id: true },
    });
    return { id: created.id, created: true };
  }
  // Reads, then writes: take the write lock first so a worker or API process writing meanwhile
  // makes this wait instead of fail (see writeTransaction).
  return writeTransaction(db, async (tx) => {
    const old = await tx.artwork.findUnique({
      where: { qid: d.qid },
      select: {
        ...RECORD_FIELDS,
        id: true,
        updatedAt: true,
        creators: { where: { creatorId: { in: inventoriedCreatorIds } }, select: { creatorId: true, attribution: true, position: true }, orderBy: [{ position: "asc" }, { id: "asc" }] },
        links: { select: { property: true, itemQid: true, position: true }, orderBy: [{ position: "asc" }, { id: "asc" }] },
        images: { select: { id: true, fileTitle: true, isMain: true, position: true }, orderBy: [{ position: "asc" }, { id: "asc" }] },
      },
    });
    // A work read again and found as it was (every --full run reads them all) keeps its updatedAt:
    // export --since reads it as when the record last changed, not when a run last looked.
    const unchanged =
      old !== null &&
      sameRecord(
        { ...old, images: old.images.map(({ fileTitle, isMain, position }) => ({ fileTitle, isMain, position })) },
        { ...fields, creators, links, images: d.images.map((img, position) => ({ fileTitle: img.fileTitle, isMain: img.isMain, position })) },
      );
    const id = old
      ? (
          await tx.artwork.update({
            where: { id: old.id },
            data: { ...fields, ...(old.state !== "ACTIVE" ? { stateChangedAt: now } : {}), ...(unchanged ? { updatedAt: old.updatedAt } : {}) },
            select: { id: true },
          })
        ).id
      : (await tx.artwork.create({ data: { ...fields, qid: d.qid, qidNumber: qidNumber(d.qid), firstSeenAt: now }, select: { id: true } })).id;
    if (old) await tx.artworkCreator.deleteMany({ where: { artworkId: id, creatorId: { in: inventoriedCreatorIds } } });
    await tx.artworkCreator.createMany({ data: creators.map((c) => ({ ...c, artworkId: id })) });
    if (old) await tx.artworkLink.deleteMany({ where: { artworkId: id } });
    if (links.length) await tx.artworkLink.createMany({ data: links.map((l) => ({ ...l, artworkId: id })) });
    const images = old?.images ?? [];
    const wanted = new Map(d.images.map((img, position) => [img.fileTitle, { ...img, position }]));
    const gone = images.filter((img) => !wanted.has(img.fileTitle)).map((img) => img.id);
    if (gone.length) await tx.image.deleteMany({ where: { id: { in: gone } } });
    for (const img of images) {
      const w = wanted.get(img.fileTitle);
      if (w && (w.isMain !== img.isMain || w.position !== img.position)) {
        await tx.image.update({ where: { id: img.id }, data: { isMain: w.isMain, position: w.position } });
      }
    }
    const have = new Set(images.map((i) => i.fileTitle));
    const add = [...wanted.values()].filter((w) => !have.has(w.fileTitle));
    if (add.length) await tx.image.createMany({ data: add.map((w) => ({ artworkId: id, fileTitle: w.fileTitle, isMain: w.isMain, position: w.position })) });
    return { id, created: !old };
  });
}

interface ImageRow {
  id: number;
  fileTitle: string;
  /** The work's QID: a file's failure names its work, so an operator need not look it up. */
  workQid: string;
  localPath: string | null;
  localSourceSha1: string | null;
  /** The stored copy's size when it was written: a file of another size is not that copy. */
  localBytes: number | null;
}

const IMAGE_ROW = { id: true, fileTitle: true, localPath: true, localSourceSha1: true, localBytes: true, artwork: { select: { qid: true } } } as const;

/** The images `where` selects, as ImageRows. */
async function imageRows(db: Db, where: Prisma.ImageWhereInput): Promise<ImageRow[]> {
  const rows = await db.image.findMany({ where, select: IMAGE_ROW });
  return rows.map(({ artwork, ...row }) => ({ ...row, workQid: artwork.qid }));
}

/**
 * Images flow while details are still being written: each batch of written works gets its
 * imageinfo at once and its downloads join a pool of DOWNLOAD_CONCURRENCY, so the network, sharp's
 * threads and the database writes overlap.
 */
class ImagePipeline {
  private readonly seen = new Set<number>();
  private readonly queue: { row: ImageRow; info: FileInfo }[] = [];
  private readonly workers: Promise<void>[] = [];
  /**
   * What stops the run: a setup failure (IMAGE_DIR), after which no other download can succeed, or
   * an unexpected one (a failure that could not be recorded; an image's own failed write is
   * recorded, see saveImage). Thrown by add() or finish(), never left as an unhandled rejection of
   * a download worker, which would end the whole process.
   */
  private fatal: Error | null = null;
  /** Files whose Commons record was asked for. */
  recordsAsked = 0;
  /** imageinfo requests made, and those that failed whole (no answer, or one that could not be read). */
  requests = 0;
  requestsFailed = 0;

  constructor(private readonly ctx: RunContext) {}

  /** Imageinfo for these rows (once each per run), then their downloads are queued. */
  async add(rows: ImageRow[]): Promise<void> {
    const { ctx } = this;
    if (this.fatal) throw this.fatal;
    const fresh = rows.filter((r) => !this.seen.has(r.id));
    for (const r of fresh) this.seen.add(r.id);
    if (!fresh.length) return;
    ctx.progress.imagesTotal += fresh.length;
    ctx.report();
    for (let i = 0; i < fresh.length && !ctx.signal?.aborted; i += IMAGEINFO_BATCH) {
      await this.addBatch(fresh.slice(i, i + IMAGEINFO_BATCH));
      if (this.fatal) throw this.fatal;
    }
  }

  private async addBatch(rows: ImageRow[]): Promise<void> {
    const { ctx } = this;
    const { config } = ctx;
    const titles = [...new Set(rows.map((r) => r.fileTitle))];
    const workOf = new Map(rows.map((r) => [r.fileTitle, r.workQid]));
    let infos: Map<string, FileInfo>;
    let unreadable: Map<string, string>;
    this.recordsAsked += titles.length;
    this.requests++;
    try {
      ({ infos, unreadable } = await fetchImageinfo(ctx.http, config.COMMONS_API_URL, titles, thumbWidthFor(config.IMAGE_EDGE), ctx.signal, config.HTTP_MAX_RETRIES, config.HTTP_RETRY_BASE_MS));
    } catch (err) {
      if (ctx.signal?.aborted) throw err;
      this.requestsFailed++;
      for (const t of titles) await ctx.fail("imageinfo", err, { fileTitle: t, itemQid: workOf.get(t) });
      ctx.progress.imagesDone += rows.length;
      return;
    }
    // A file whose own record could not be read is that file's failure (the next run asks again).
    for (const [t, why] of unreadable) await ctx.fail("imageinfo", why, { fileTitle: t, itemQid: workOf.get(t) });
    // A file to download gets its Commons record with its local copy (one write); the others now.
    const records: { row: ImageRow; info: FileInfo }[] = [];
    for (const row of rows) {
      const info = infos.get(row.fileTitle);
      if (!info) {
        ctx.progress.imagesDone++;
        continue;
      }
      const record = () => void records.push({ row, info });
      const refused = row.localSourceSha1 !== info.sha1 ? originalRefusal(info, config) : null;
      if (info.missing || !info.thumbUrl) {
        record();
        ctx.progress.imagesDone++;
        await ctx.fail("imageinfo", info.missing ? "Commons has no such file" : "Commons' record of the file has no http(s) URL to download it from", { fileTitle: row.fileTitle, itemQid: row.workQid });
      } else if (refused) {
        // Nothing to download: the original is all Commons offers, and it is refused from its record.
        record();
        ctx.progress.imagesDone++;
        await ctx.fail("download", refused, { fileTitle: row.fileTitle, itemQid: row.workQid });
      } else if (row.localSourceSha1 === info.sha1 && (await hasLocalCopy(config.IMAGE_DIR, row.localPath, row.localBytes))) {
        record();
        ctx.counts.imagesUnchanged++;
        ctx.progress.imagesDone++;
      } else if (row.localSourceSha1 === info.sha1 && !row.localPath) {
        // This very file was refused before (see downloadOne); a new upload will be tried.
        record();
        ctx.progress.imagesDone++;
      } else this.queue.push({ row, info });
      await yieldToEventLoop();
    }
    await saveRecords(ctx, records);
    ctx.report();
    const want = Math.min(config.DOWNLOAD_CONCURRENCY, this.queue.length);
    while (this.workers.length < want) {
      const worker: Promise<void> = this.work().finally(() => this.workers.splice(this.workers.indexOf(worker), 1));
      this.workers.push(worker);
    }
  }

  private async work(): Promise<void> {
    const { ctx } = this;
    for (let job = this.queue.shift(); job && !ctx.signal?.aborted && !this.fatal; job = this.queue.shift()) {
      try {
        await downloadOne(ctx, job.row, job.info);
      } catch (err) {
        // Never a rejected worker: the error is kept and thrown by add() or finish().
        this.fatal ??= err instanceof Error ? err : new Error(String(err));
        this.queue.length = 0;
        return;
      }
      ctx.progress.imagesDone++;
      ctx.report();
      await yieldToEventLoop();
    }
  }

  /** Waits for every queued download (or, once aborted, for the ones in progress); throws a setup failure one hit. */
  async finish(): Promise<void> {
    while (this.workers.length) await Promise.all([...this.workers]);
    if (this.fatal) throw this.fatal;
  }
}

function imageRecord(info: FileInfo) {
  return {
    missing: info.missing,
    originalUrl: info.url,
    thumbUrl: info.thumbUrl,
    thumbWidth: info.thumbWidth,
    thumbHeight: info.thumbHeight,
    width: info.width,
    height: info.height,
    bytes: info.bytes,
    mime: info.mime,
    sha1: info.sha1,
    licenseShortName: info.licenseShortName,
    usageTerms: info.usageTerms,
    attributionRequired: info.attributionRequired,
    artist: info.artist,
    credit: info.credit,
    descriptionUrl: info.descriptionUrl,
  };
}

/** Images no batch brought: every one on a refreshing run, else those a past run left unfinished. */
async function remainingImages(ctx: RunContext, syncedCreatorIds: number[]): Promise<ImageRow[]> {
  const { db } = ctx;
  if (ctx.refresh) {
    return imageRows(db, { artwork: { state: "ACTIVE", creators: { some: { creatorId: { in: syncedCreatorIds } } } } });
  }
  // Left over by an interrupted or failed run: no Commons record yet, or a copy of another version.
  const left = await db.$queryRawUnsafe<ImageRow[]>(`
    SELECT i.id, i."fileTitle", a.qid AS "workQid", i."localPath", i."localSourceSha1", i."localBytes" FROM "Image" i JOIN "Artwork" a ON a.id = i."artworkId"
    WHERE a.state = 'ACTIVE' AND ${dialect(db).isFalse("i.missing")}
      AND (i.sha1 IS NULL OR i."localSourceSha1" IS NULL OR i."localSourceSha1" <> i.sha1)`);
  const listed = new Set(left.map((r) => r.id));
  return [...left, ...(await lostCopies(ctx)).filter((r) => !listed.has(r.id))];
}

/**
 * Stored copies that are gone from IMAGE_DIR or no longer their size (a folder restored from an old
 * backup, a file deleted or cut short by hand or by a failing disk): downloaded again by this run,
 * instead of failing their describe jobs until the weekly refresh. One stat a file, a few hundred
 * milliseconds for 20,000; a copy damaged in place at the same size is found by the worker, which
 * fails its job with the reason, not here.
 */
async function lostCopies(ctx: RunContext): Promise<ImageRow[]> {
  const rows = await imageRows(ctx.db, { localPath: { not: null }, missing: false, artwork: { state: "ACTIVE" } });
  const lost: ImageRow[] = [];
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    if (!(await hasLocalCopy(ctx.config.IMAGE_DIR, row.localPath, row.localBytes))) lost.push(row);
    if (i % 500 === 499) await yieldToEventLoop();
  }
  if (lost.length) ctx.log.warn({ images: lost.length, examples: lost.slice(0, 5).map((r) => r.localPath) }, "stored image copies are missing from IMAGE_DIR or cut short; they are downloaded again");
  return lost;
}

/** The stored copy is there as it was written: a file (never a link), of its recorded size when one is recorded. */
async function hasLocalCopy(imageDir: string, localPath: string | null, localBytes: number | null = null): Promise<boolean> {
  if (!localPath) return false;
  const st = await lstat(join(imageDir, localPath)).catch(() => null);
  return !!st?.isFile() && (localBytes == null || st.size === localBytes);
}

/**
 * Writes the Commons records of files that need no download: all in one transaction, or, when
 * that fails, one by one, so a row that cannot be written is recorded as a failure of its file
 * (stage "write") and the others are kept, as a work whose write fails is.
 */
async function saveRecords(ctx: RunContext, records: { row: ImageRow; info: FileInfo }[]): Promise<void> {
  const { db } = ctx;
  if (!records.length) return;
  try {
    await db.$transaction(
      records.map(({ row, info }) => {
        const data = imageRecord(info);
        return db.image.updateMany({ where: { id: row.id, ...imageDiffers(data) }, data });
      }),
    );
  } catch {
    for (const { row, info } of records) await saveImage(ctx, row, imageRecord(info));
  }
}

/** Image columns that cannot be NULL (Prisma refuses a `{ column: null }` filter on them). */
const IMAGE_NOT_NULL: ReadonlySet<string> = new Set(["missing", "isMain", "position"]);

/**
 * Matches a row in which one of `data`'s values differs from what is stored (NULL counted as a
 * value): a record that did not change is not written again, so `Image.updatedAt` says when its
 * licence, attribution or file last changed (`export --since` reads it), not when a run last looked.
 */
export function imageDiffers(data: Prisma.ImageUpdateManyMutationInput): Prisma.ImageWhereInput {
  const or = Object.entries(data).flatMap(([column, value]): Prisma.ImageWhereInput[] => {
    if (value === undefined) return [];
    if (value === null) return [{ [column]: { not: null } }];
    return IMAGE_NOT_NULL.has(column) ? [{ [column]: { not: value } }] : [{ [column]: { not: value } }, { [column]: null }];
  });
  return { OR: or };
}

/** Writes one image's row where it changed; a write that fails is that file's failure (stage "write"), not the run's. */
async function saveImage(ctx: RunContext, row: ImageRow, data: Prisma.ImageUpdateManyMutationInput): Promise<boolean> {
  try {
    await ctx.db.image.updateMany({ where: { id: row.id, ...imageDiffers(data) }, data });
    return true;
  } catch (err) {
    await ctx.fail("write", err, { fileTitle: row.fileTitle, itemQid: row.workQid });
    return false;
  }
}

/**
 * Why the original of a file Commons made no thumbnail of (a huge TIFF: `thumberror`) is not
 * downloaded, or null: its record already says it is larger than HTTP_MAX_BODY_BYTES, or of
 * dimensions the normalisation refuses. A thumbnail is always tried (Commons keeps them small).
 */
export function originalRefusal(info: Pick<FileInfo, "thumbWidth" | "width" | "height" | "bytes">, config: Pick<Config, "HTTP_MAX_BODY_BYTES">): string | null {
  if (info.thumbWidth != null) return null;
  if (info.bytes != null && info.bytes > config.HTTP_MAX_BODY_BYTES) {
    return `Commons has no thumbnail of this file, and its original (${info.bytes} bytes) is larger than HTTP_MAX_BODY_BYTES (${config.HTTP_MAX_BODY_BYTES}): not downloaded`;
  }
  const problem = info.width != null && info.height != null ? dimensionProblem(info.width, info.height) : null;
  return problem ? `Commons has no thumbnail of this file, and its original is refused: ${problem.message}: not downloaded` : null;
}

/** Refusals that the same file always gets: remembered, so the next runs do not download it again. */
const REFUSED_FOR_GOOD: ReadonlySet<ImageProblem> = new Set(["too-many-pixels", "aspect-ratio"]);

async function downloadOne(ctx: RunContext, row: ImageRow, info: FileInfo): Promise<void> {
  const { config, http, signal } = ctx;
  const record = imageRecord(info);
  let bytes: Buffer;
  try {
    // The URL comes from Commons' answer: only its file hosts are asked (IMAGE_HOSTS), redirects included.
    bytes = await http.bytes(info.thumbUrl!, { signal, allowUrl: ctx.allowImageUrl });
  } catch (err) {
    await saveImage(ctx, row, record);
    if (signal?.aborted) return;
    await ctx.fail("download", err, { fileTitle: row.fileTitle, itemQid: row.workQid });
    return;
  }
  let img: Awaited<ReturnType<typeof normalizeImage>>;
  let localPath: string;
  try {
    img = await normalizeImage(bytes, config.IMAGE_EDGE);
    localPath = await storeImage(config.IMAGE_DIR, img);
  } catch (err) {
    if (err instanceof ImageDirError) {
      await saveImage(ctx, row, record);
      throw err;
    }
    // Only a refusal read from the image's header (its size) is a fact about the file; an empty,
    // unreadable or cut-off body may be a bad transfer, and the file is tried again next run.
    if (err instanceof ImageRejectedError && REFUSED_FOR_GOOD.has(err.problem) && !(await hasLocalCopy(config.IMAGE_DIR, row.localPath))) {
      // Remember which file was refused, so the next runs do not download it again (see ImagePipeline).
      await saveImage(ctx, row, { ...record, localPath: null, localSourceSha1: info.sha1 });
    } else {
      // The copy of an earlier version stays (the work keeps its image), and this version is tried
      // again next run (its data may have been cut off in transfer, or sharp out of memory).
      await saveImage(ctx, row, record);
    }
    await ctx.fail("normalise", err, { fileTitle: row.fileTitle, itemQid: row.workQid });
    return;
  }
  const saved = await saveImage(ctx, row, {
    ...record,
    localPath,
    localWidth: img.width,
    localHeight: img.height,
    localBytes: img.data.length,
    localHash: img.hash,
    localSourceSha1: info.sha1,
    downloadedAt: new Date(),
    // Measured on the old copy: the quality checks measure the new one again (imageFacts).
    chroma: null,
    tintChroma: null,
    tintHue: null,
  });
  if (saved) ctx.counts.imagesDownloaded++;
}

/** What Wikidata's answer for a merged (redirect) or deleted (missing) item makes of its work. */
const goneState = (o: Exclude<EntityOutcome, { kind: "found" }>): GoneState =>
  o.kind === "redirect" ? { state: "MERGED", mergedIntoQid: o.to } : { state: "DELETED" };

/** A state a work leaves ACTIVE for; it is marked, never dropped: the record and its descriptions stay. */
type GoneState = { state: "MERGED"; mergedIntoQid: string } | { state: "DELETED" } | { state: "NOT_BY_CREATOR" };

/** Marks a work as gone from the mirror's creators, counts it removed and logs why. */
async function markState(ctx: RunContext, qid: string, data: GoneState, why: string, now = new Date()): Promise<void> {
  const cancelled = await writeTransaction(ctx.db, async (tx) => {
    const { id } = await tx.artwork.update({ where: { qid }, data: { ...data, stateChangedAt: now }, select: { id: true } });
    // Its queued jobs would describe (or embed) a work that left the mirror, taking a worker's time
    // and setting a text on it; those of an experiment stay (its sample is fixed when it starts).
    const { count } = await tx.job.updateMany({
      where: { artworkId: id, status: "QUEUED", experimentId: null },
      data: { status: "CANCELLED", finishedAt: now, error: `the work left the mirror (${data.state}) before the job ran` },
    });
    return count;
  });
  ctx.counts.removed++;
  ctx.log.info({ qid, ...data, ...(cancelled ? { cancelledJobs: cancelled } : {}) }, why);
}

/** Marks a work merged or deleted on Wikidata, as the removal check does; a write that fails is that work's failure. */
async function markGone(ctx: RunContext, qid: string, data: GoneState): Promise<void> {
  try {
    await markState(ctx, qid, data, "work merged or deleted on Wikidata, though the query service still lists it");
  } catch (err) {
    await ctx.fail("write", err, { itemQid: qid });
  }
}

/**
 * Works of this run's creators that no inventory listed: merged, deleted, or no longer by them.
 * A work that also has a creator outside this run (`sync --creator` with a subset, or once with a
 * creator SYNC_CREATORS does not name) keeps its state for a run that reads that creator; when
 * Wikidata no longer credits it to this run's creators, only those credits go.
 */
async function checkVanished(
  ctx: RunContext,
  urls: ReturnType<typeof wikidataUrls>,
  inventory: Map<string, Found>,
  creatorIds: number[],
  creatorQids: ReadonlySet<string>,
): Promise<void> {
  const { db, http, signal } = ctx;
  const candidates = await db.artwork.findMany({
    where: { state: "ACTIVE", creators: { some: { creatorId: { in: creatorIds } } } },
    // One creator outside this run, if any: such a work's state is for a run that reads that creator.
    select: { id: true, qid: true, creators: { where: { creatorId: { notIn: creatorIds } }, select: { id: true }, take: 1 } },
  });
  const vanished = candidates.filter((a) => !inventory.has(a.qid));
  if (!vanished.length) return;
  ctx.progress.phase = "removal";
  ctx.report();
  for (let i = 0; i < vanished.length && !signal?.aborted; i += DETAILS_BATCH) {
    const batch = vanished.slice(i, i + DETAILS_BATCH);
    let outcomes: Map<string, EntityOutcome>;
    try {
      outcomes = await fetchEntities(http, urls, batch.map((a) => a.qid), ["info", "claims"], undefined, signal);
    } catch (err) {
      if (signal?.aborted) throw err;
      for (const a of batch) await ctx.fail("removal", err, { itemQid: a.qid });
      continue;
    }
    const now = new Date();
    for (const a of batch) {
      const o = outcomes.get(a.qid)!;
      if (o.kind === "found" && [...creditedCreators(o.entity)].some((q) => creatorQids.has(q))) {
        // The query service lags behind Wikidata (or answered short): the item still credits the
        // creator, so the work stays as it is, and the run says why it could not confirm it.
        await ctx.fail("removal", "the query service did not list this work, but Wikidata still credits it to the creator: left as it is", { itemQid: a.qid });
        continue;
      }
      const shared = a.creators.length > 0;
      if (shared && o.kind === "found") {
        // Still credited to a creator outside this run (a `sync --creator` once read it), no longer
        // to this run's: that credit goes, and the work stays, with the other creator's.
        await writeTransaction(db, async (tx) => {
          await tx.artworkCreator.deleteMany({ where: { artworkId: a.id, creatorId: { in: creatorIds } } });
          await tx.artwork.update({ where: { id: a.id }, data: { updatedAt: now } });
        });
        ctx.counts.updated++;
        ctx.log.info({ qid: a.qid }, "work no longer credited to this run's creators: kept for its other creators");
      } else if (!shared) {
        const data: GoneState = o.kind === "found" ? { state: "NOT_BY_CREATOR" } : goneState(o);
        await markState(ctx, a.qid, data, "work left the inventory", now);
      }
      // A shared work merged or deleted on Wikidata is marked by a run that reads its other creator.
      await yieldToEventLoop();
    }
  }
}
