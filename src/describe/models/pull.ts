import { closeSync, existsSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { MODEL_MODULES } from "../../config.js";
import { sha256File } from "../model-files.js";
import {
  externalDataFiles,
  isModelFileName,
  type ModuleDtypes,
  onnxFile,
  OPTIONAL_FILES,
  readRevision,
  REQUIRED_FILES,
  type RevisionRecord,
  writeRevision,
} from "./contract.js";

/**
 * `artdesc models pull`: downloads a model from a Hugging Face-style hub
 * (`{hub}/{model}/resolve/{revision}/{file}`) into MODEL_DIR/MODEL_ID. Each file is checked with
 * a HEAD request first (size from x-linked-size for LFS files, else Content-Length; the commit
 * from x-repo-commit; an LFS file's sha256 from x-linked-etag), then fetched into
 * `<file>.<commit>.part`, resuming with a Range request when a part is already there, and renamed
 * once its size matches and, when the hub named it, its sha256 does.
 */

export interface PullOptions {
  hubUrl: string;
  modelId: string;
  revision: string;
  dtypes: ModuleDtypes;
  /** MODEL_DIR: the model lands in modelDir/modelId. */
  modelDir: string;
  onProgress?: (event: PullProgress) => void;
  signal?: AbortSignal;
  /** Abort a transfer that receives nothing for this long (HTTP_TIMEOUT_MS); default 60 s. */
  idleTimeoutMs?: number;
  /** Resume an interrupted file this many times before giving up (HTTP_MAX_RETRIES); default 0. */
  retries?: number;
}

export type PullProgress =
  | { kind: "start"; file: string; total: number | null; resumedFrom: number }
  | { kind: "data"; file: string; received: number; total: number | null }
  | { kind: "done"; file: string; bytes: number; skipped: boolean }
  | { kind: "absent"; file: string }
  | { kind: "retry"; file: string; attempt: number; reason: string };

export interface PullResult {
  dir: string;
  commit: string | null;
  files: { file: string; bytes: number; skipped: boolean }[];
}

export class PullError extends Error {
  override name = "PullError";
  /** An interrupted transfer: the part is kept and another attempt resumes it. */
  constructor(
    message: string,
    readonly retryable = false,
  ) {
    super(message);
  }
}

const USER_AGENT = "artdesc (models pull)";

/** fetch, with network failures named by method, URL and cause (undici only says "fetch failed"). */
async function request(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message;
    throw new PullError(`${init.method ?? "GET"} ${url}: ${cause ?? (err as Error).message}`, true);
  }
}

export function fileUrl(hubUrl: string, modelId: string, revision: string, file: string): string {
  const base = hubUrl.replace(/\/+$/, "");
  return `${base}/${modelId}/resolve/${encodeURIComponent(revision)}/${file.split("/").map(encodeURIComponent).join("/")}`;
}

interface Head {
  size: number | null;
  commit: string | null;
  /** The file's sha256 (hex), when the hub names it: an LFS file's ETag is its object id. */
  sha256: string | null;
}

/** An LFS file's x-linked-etag is its sha256 (the LFS object id): `"<64 hex>"`, perhaps weak. Anything else names no hash. */
export function sha256OfEtag(etag: string | null): string | null {
  const m = /^(?:W\/)?"?([0-9a-f]{64})"?$/i.exec(etag?.trim() ?? "");
  return m ? m[1]!.toLowerCase() : null;
}

async function head(url: string, signal?: AbortSignal): Promise<Head | null> {
  // "manual": the hub answers LFS files with a redirect whose own headers carry the real size.
  const res = await request(url, { method: "HEAD", redirect: "manual", headers: { "user-agent": USER_AGENT }, signal });
  if (res.status === 404) return null;
  if (res.status >= 400) throw new PullError(`HEAD ${url}: HTTP ${res.status}`);
  const linked = res.headers.get("x-linked-size");
  const length = res.status >= 300 ? null : res.headers.get("content-length");
  const sizeText = linked ?? length;
  const size = sizeText !== null && /^\d+$/.test(sizeText) ? Number(sizeText) : null;
  return { size, commit: res.headers.get("x-repo-commit"), sha256: sha256OfEtag(res.headers.get("x-linked-etag")) };
}

const partName = (path: string, commit: string | null) => `${path}.${(commit ?? "unknown").slice(0, 12)}.part`;

async function download(
  url: string,
  path: string,
  file: string,
  info: Head,
  options: Pick<PullOptions, "onProgress" | "signal" | "idleTimeoutMs">,
): Promise<number> {
  const part = partName(path, info.commit);
  let offset = existsSync(part) ? statSync(part).size : 0;
  // A part is resumed only when it is known to be of this commit: without one (a mirror that names
  // none) it may hold another revision's bytes, and appending would splice the two.
  if ((info.size !== null && offset > info.size) || (info.commit === null && offset > 0)) {
    rmSync(part);
    offset = 0;
  }
  if (info.size === null || offset < info.size) {
    // A stalled transfer aborts after idleTimeoutMs without data; the timer restarts on every chunk.
    const idleMs = options.idleTimeoutMs ?? 60_000;
    const idle = new AbortController();
    const stall = () => idle.abort(new Error(`no data for ${idleMs} ms`));
    let timer = setTimeout(stall, idleMs);
    const touch = () => {
      clearTimeout(timer);
      timer = setTimeout(stall, idleMs);
    };
    const signal = options.signal ? AbortSignal.any([options.signal, idle.signal]) : idle.signal;
    try {
      await transfer(url, part, offset, file, info, { onProgress: options.onProgress, signal, touch });
    } finally {
      clearTimeout(timer);
    }
  }
  const bytes = statSync(part).size;
  if (info.sha256) {
    const got = await sha256File(part, options.signal);
    if (got !== info.sha256) {
      // Damaged in transfer, or a resumed part that was not of these bytes: all of it goes.
      rmSync(part, { force: true });
      throw new PullError(`${file}: its sha256 is ${got}, the hub says ${info.sha256}; nothing kept (run pull again to fetch it anew)`, true);
    }
  }
  renameSync(part, path);
  return bytes;
}

async function transfer(
  url: string,
  part: string,
  start: number,
  file: string,
  info: Head,
  o: { onProgress?: (e: PullProgress) => void; signal: AbortSignal; touch: () => void },
): Promise<void> {
  const headers: Record<string, string> = { "user-agent": USER_AGENT };
  if (start > 0) headers.range = `bytes=${start}-`;
  const res = await request(url, { headers, redirect: "follow", signal: o.signal });
  let offset = start;
  if (res.status === 200 && offset > 0) offset = 0; // the server ignored the range: start over
  else if (res.status !== 200 && res.status !== 206) throw new PullError(`GET ${url}: HTTP ${res.status}`);
  const length = res.headers.get("content-length");
  if (info.size !== null && length !== null && offset + Number(length) !== info.size) {
    await res.body?.cancel();
    rmSync(part, { force: true });
    throw new PullError(`${file}: the server sends ${offset + Number(length)} bytes, its HEAD said ${info.size}; size mismatch, nothing kept`);
  }
  o.onProgress?.({ kind: "start", file, total: info.size, resumedFrom: offset });
  const fd = openSync(part, offset > 0 ? "a" : "w");
  let received = offset;
  try {
    const reader = res.body?.getReader();
    for (let next = await reader?.read(); next && !next.done; next = await reader?.read()) {
      const bytes = next.value;
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off);
      received += bytes.length;
      o.touch();
      if (info.size !== null && received > info.size) {
        throw new PullError(`${file}: received more than the ${info.size} bytes announced; size mismatch`);
      }
      o.onProgress?.({ kind: "data", file, received, total: info.size });
    }
  } catch (err) {
    if (err instanceof PullError) {
      closeSync(fd);
      rmSync(part, { force: true });
      throw err;
    }
    const reason = o.signal.aborted ? ((o.signal.reason as Error | undefined)?.message ?? String(o.signal.reason)) : (err as Error).message;
    closeSync(fd);
    throw new PullError(`${file}: download interrupted after ${received} bytes (${reason}); run pull again to resume`, true);
  }
  closeSync(fd);
  if (info.size !== null && received !== info.size) {
    throw new PullError(`${file}: got ${received} of ${info.size} bytes; size mismatch (the part is kept: run pull again to resume)`, true);
  }
}

/** Downloads the configs, tokenizer and ONNX files (plus any external weight files) for the dtypes. */
export async function pullModel(options: PullOptions): Promise<PullResult> {
  const onnxFiles = [...new Set(MODEL_MODULES.map((m) => onnxFile(m, options.dtypes[m])))];
  return pullFiles(options, {
    required: REQUIRED_FILES,
    optional: OPTIONAL_FILES,
    graphs: onnxFiles,
    // The graphs name their external weight files: known once they are here.
    afterwards: (dir) => externalDataFiles(dir, options.dtypes),
    dtypes: [...new Set(Object.values(options.dtypes))],
  });
}

/** The files of one model: fetched in this order, required ones first. */
export interface PullPlan {
  required: readonly string[];
  optional: readonly string[];
  /** The ONNX files (required), fetched after the configs. */
  graphs: readonly string[];
  /** Further required files, named by the ones already fetched (external ONNX data). */
  afterwards?: (dir: string) => readonly string[];
  /** Recorded in the revision file. */
  dtypes: string[];
}

/**
 * Downloads a plan's files into modelDir/modelId, each HEAD-checked, resumable and size-checked,
 * all from one commit, and records where they came from (REVISION_FILE). `pullModel` (the VLM) and
 * `pullEmbedModel` (src/embed/model-files.ts) are two plans.
 */
export async function pullFiles(options: Omit<PullOptions, "dtypes">, plan: PullPlan): Promise<PullResult> {
  const dir = join(options.modelDir, options.modelId);
  mkdirSync(join(dir, "onnx"), { recursive: true });
  const previous = readRevision(dir);
  const result: PullResult = { dir, commit: null, files: [] };
  // Once the hub names a commit, later files come from that commit, so a branch moving during
  // the download cannot mix two revisions.
  let revision = options.revision;

  const fetchFile = async (file: string, required: boolean) => {
    // Names come from the plan and from the graphs (external data): never a path out of the folder.
    if (!isModelFileName(file)) throw new PullError(`${JSON.stringify(file.slice(0, 200))} is not a file name inside the model folder: refused`);
    const url = fileUrl(options.hubUrl, options.modelId, revision, file);
    const info = await head(url, options.signal);
    if (!info) {
      if (required) throw new PullError(`${file}: not found at ${url}`);
      options.onProgress?.({ kind: "absent", file });
      return;
    }
    if (info.commit) {
      if (result.commit && info.commit !== result.commit) {
        throw new PullError(`${file}: the hub answered from commit ${info.commit}, earlier files from ${result.commit}`);
      }
      if (!result.commit) {
        result.commit = info.commit;
        revision = info.commit;
      }
    }
    const path = join(dir, file);
    mkdirSync(dirname(path), { recursive: true });
    // A file already here is kept only when the record says it was fetched from this very commit
    // (a finished pull, or one cut short): a same-size file of another commit (`main` moved
    // between two pulls, a mirror that names no commit) would otherwise mix two revisions.
    const sameRevision = previous !== null && previous.commit !== null && previous.commit === result.commit && previous.files.includes(file);
    // With a hash from the hub the kept file is read once more: a file damaged on disk is fetched again.
    if (existsSync(path) && info.size !== null && statSync(path).size === info.size && sameRevision && (!info.sha256 || (await sha256File(path, options.signal)) === info.sha256)) {
      result.files.push({ file, bytes: info.size, skipped: true });
      options.onProgress?.({ kind: "done", file, bytes: info.size, skipped: true });
      return;
    }
    let bytes = 0;
    for (let attempt = 1; ; attempt++) {
      try {
        bytes = await download(fileUrl(options.hubUrl, options.modelId, revision, file), path, file, info, options);
        break;
      } catch (err) {
        if (!(err instanceof PullError && err.retryable) || attempt > (options.retries ?? 0) || options.signal?.aborted) throw err;
        options.onProgress?.({ kind: "retry", file, attempt, reason: err.message });
      }
    }
    result.files.push({ file, bytes, skipped: false });
    options.onProgress?.({ kind: "done", file, bytes, skipped: false });
    // What this pull has fetched so far, and from which commit: a pull cut short resumes from here.
    if (result.commit) writeRevision(dir, { ...recordOf(result), pending: true });
  };
  const recordOf = (r: PullResult): RevisionRecord => ({
    model: options.modelId,
    revision: options.revision,
    commit: r.commit,
    source: "hub",
    dtypes: plan.dtypes,
    files: r.files.map((f) => f.file),
    createdAt: new Date().toISOString(),
  });

  for (const f of plan.required) await fetchFile(f, true);
  for (const f of plan.optional) await fetchFile(f, false);
  for (const f of plan.graphs) await fetchFile(f, true);
  for (const f of plan.afterwards?.(dir) ?? []) await fetchFile(f, true);

  writeRevision(dir, recordOf(result));
  // Every file is here whole: parts left by interrupted pulls (of this or another commit) are not needed.
  removeParts(dir);
  return result;
}

/** Removes every `*.part` file under the model folder (GBs each, for a decoder). */
function removeParts(dir: string): void {
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && entry.name.endsWith(".part")) rmSync(join(entry.parentPath, entry.name), { force: true });
  }
}
