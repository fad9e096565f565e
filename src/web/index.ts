import { existsSync } from "node:fs";
import { join } from "node:path";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AuthThrottle } from "../api/auth-throttle.js";
import { clientOf, trustedProxies } from "../api/client-address.js";
import { refusedConnection } from "../api/refused-body.js";
import type { Config } from "../config.js";
import { modelFiles, moduleDtypes, pullCommand } from "../describe/models/contract.js";
import type { Yoga } from "../graphql/yoga.js";
import type { Logger } from "../log.js";
import { FormError, readForm } from "./forms.js";
import { type GqlCaller, graphqlCaller, WorkbenchQueryError } from "./gql.js";
import { checkPostOrigin, localPath } from "./origin.js";
import { earlyStoppingOption, readRegenerateForm } from "./params-form.js";
import { decodeCursor, InvalidCursorError } from "../review/queue.js";
import { REVIEW_STATES } from "../review/verdict.js";
import { ARTWORK, CANCEL_JOB, COLLECTION, CREATORS, FIRST_RUN, JOBS, REGENERATE, REVIEW_DESCRIPTION, REVIEW_NEIGHBOURS, REVIEW_QUEUE, SEARCH, SET_DESCRIPTION, STATUS } from "./queries.js";
import { redirect, renderPage, sendPage } from "./render.js";
import { cleanName, readCookie, type Session, SESSION_COOKIE, sessionCookie, sessionKey, signSession, SESSION_MAX_AGE_S, tokenMatches, verifySession } from "./session.js";
import { staticRoute } from "./static.js";
import { serveThumb, Thumbnails } from "./thumbs.js";
import {
  type ArtworkIn,
  artworkFacts,
  attributionLine,
  type Card,
  card,
  type CardIn,
  COLLECTION_PAGE,
  type CollectionRequest,
  emptyQueueReason,
  filtersByReview,
  type QueueItemIn,
  queueFilterVariables,
  queueHref,
  queueItem,
  readQueueFilter,
  REVIEW_FILTERS,
  reviewStatus,
  reviewWord,
  chooseDiff,
  collectionHref,
  collectionVariables,
  FLAGS,
  type FirstRunIn,
  firstRunNotices,
  formatInception,
  jobView,
  workerModelProblem,
  type LocalFacts,
  licenceOf,
  readCollectionRequest,
  searchModeLine,
  STATES,
  thumbFor,
  titleLanguage,
  versions,
  when,
} from "./view-models.js";

/**
 * The workbench: server-rendered pages at /, /artworks/<QID>, /review, /jobs, /status and /sign-in, their
 * forms (POST, then a redirect), thumbnails under /thumbs/ and scripts under /static/. Every read
 * and write goes through the GraphQL schema in this process (gql.ts).
 */

export interface WorkbenchDeps {
  yoga: Yoga;
  config: Config;
  log: Logger;
  /** Wrong tokens per client, shared with the GraphQL endpoint (server.ts). */
  authThrottle: AuthThrottle;
}

/** How many versions the history shows (Artwork.descriptions allows 500; a page of 100 stays fast). */
export const HISTORY_LIMIT = 100;
/** Verdicts shown per version (Description.reviews allows 200). */
const VERDICTS_PER_VERSION = 20;
const JOBS_PAGE = 50;
const LIVE_JOB_STATUSES = ["QUEUED", "RUNNING", "FAILED", "CANCELLED"];
const JOB_STATUSES = ["QUEUED", "RUNNING", "FAILED", "CANCELLED", "SUCCEEDED"];
const QID = /^Q[1-9][0-9]{0,11}$/;

/** Fixed texts shown after a form's redirect (?done=...): a URL can pick one, never write one. */
const DONE: Record<string, string> = {
  saved: "Saved: your text is the current description.",
  queued: "Queued: the job's progress shows under the current description.",
  cancelled: "The job was cancelled.",
  "signed-in": "Signed in.",
  "signed-out": "Signed out.",
  approved: "Approved.",
  rejected: "Rejected. If it was the current text of the model, the work is being described again with the next fallback step.",
  "needs-work": "Marked as needing work.",
};

const DONE_BY_VERDICT: Record<string, string> = { APPROVED: "approved", REJECTED: "rejected", NEEDS_WORK: "needs-work" };

/** A word picked by a client's key from a fixed map: only the map's own keys (never `constructor`). */
function ownValue(map: Record<string, string>, key: string): string | null {
  return Object.hasOwn(map, key) ? map[key]! : null;
}

/** `path` (a local path that localPath accepted, maybe with a query and a fragment) with ?done=<key> set. */
export function withDone(path: string, done: string): string {
  const u = new URL(path, "http://local");
  u.searchParams.set("done", done);
  return `${u.pathname}${u.search}${u.hash}`;
}

interface Request {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  session: Session | null;
  head: boolean;
}

export function workbenchRoute({ yoga, config, log, authThrottle }: WorkbenchDeps): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const gql = graphqlCaller(yoga);
  const wlog = log.child({ component: "workbench" });
  const thumbs = new Thumbnails(config, wlog);
  const serveStatic = staticRoute();
  const key = sessionKey(config.API_TOKEN, config.SESSION_SECRET);

  const pages: Record<string, (r: Request) => Promise<void>> = {
    "/": (r) => collectionPage(r, gql, config),
    "/jobs": (r) => jobsPage(r, gql),
    "/status": (r) => statusPage(r, gql, config),
    "/sign-in": async (r) => signInPage(r, config, 200, null),
    "/review": (r) => reviewPage(r, gql),
  };

  return async (req, res) => {
    const url = new URL(req.url ?? "/", "http://local");
    const path = url.pathname;
    if (path.startsWith("/static/")) {
      await serveStatic(req, res, path);
      return true;
    }
    const artwork = /^\/artworks\/([^/]+)(\/description|\/regenerate)?$/.exec(path);
    const cancel = /^\/jobs\/([^/]+)\/cancel$/.exec(path);
    const isThumb = path.startsWith("/thumbs/");
    const known = isThumb || !!artwork || !!cancel || path in pages || path === "/sign-out";
    // Any other path is GraphQL's (it answers /graphql alone), except a browser's page request,
    // which gets a page saying so rather than an empty 404 the browser shows as its own error.
    const pageWanted = (req.method === "GET" || req.method === "HEAD") && path !== "/graphql" && /\btext\/html\b/.test(req.headers.accept ?? "");
    if (!known && !pageWanted) return false;

    const session = verifySession(readCookie(req.headers.cookie, SESSION_COOKIE), key, Math.floor(Date.now() / 1000));
    const r: Request = { req, res, url, session, head: req.method === "HEAD" };
    try {
      if (isThumb) {
        if (config.UI_REQUIRE_SIGN_IN && !session) {
          res.writeHead(401, { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff", "cache-control": "no-store" }).end("sign in first");
          return true;
        }
        await serveThumb(req, res, thumbs, { signedInOnly: config.UI_REQUIRE_SIGN_IN });
        return true;
      }
      if (req.method === "POST") {
        await handlePost(r, { gql, config, key, artwork, cancel, path, authThrottle, log: wlog });
        return true;
      }
      if (req.method !== "GET" && req.method !== "HEAD") {
        const allow = artwork?.[2] || cancel || path === "/sign-out" ? "POST" : path === "/sign-in" || path === "/review" ? "GET, HEAD, POST" : "GET, HEAD";
        res.writeHead(405, { allow, "content-type": "text/plain; charset=utf-8" }).end("method not allowed");
        return true;
      }
      if (artwork?.[2] || cancel || path === "/sign-out") {
        res.writeHead(405, { allow: "POST", "content-type": "text/plain; charset=utf-8" }).end("method not allowed");
        return true;
      }
      if (!known) {
        message(r, 404, "Page not found", ["There is no page at this address."], "/");
        return true;
      }
      if (config.UI_REQUIRE_SIGN_IN && !session && path !== "/sign-in") {
        redirect(res, `/sign-in?next=${encodeURIComponent(path + url.search)}`);
        return true;
      }
      if (artwork) await artworkPage(r, gql, decodeSegment(artwork[1]!));
      else await pages[path]!(r);
    } catch (err) {
      if (err instanceof WorkbenchQueryError) {
        wlog.error({ err, path }, "a workbench page could not be built");
        const status = err.status === 503 ? 503 : 500;
        message(r, status, status === 503 ? "Try again in a moment" : "Something went wrong", [
          status === 503 ? "The database cannot answer right now." : "This page could not be built. The server log has the details.",
        ]);
        return true;
      }
      if (err instanceof FormError) {
        // The body may be left unread (refused by its declared size or type): it is read and dropped
        // for a while, so that the client reads this answer and not a reset (refusedConnection).
        if (!res.headersSent) refusedConnection(res);
        message(r, err.status, "The form could not be read", [err.message]);
        return true;
      }
      throw err;
    }
    return true;
  };
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function base(r: Request, title: string, nav: string): Record<string, unknown> {
  return { title, nav, session: r.session, here: r.url.pathname + r.url.search, flash: ownValue(DONE, r.url.searchParams.get("done") ?? "") };
}

/** A page that says what happened; `kept`: a person's text a form could not save, shown so it is not lost. */
function message(r: Request, status: number, heading: string, lines: string[], back?: string, kept?: string, backLabel = "Go back"): void {
  sendPage(r.res, status, renderPage("message", { ...base(r, heading, ""), heading, lines, back: back ?? null, backLabel, kept: kept?.trim() ? kept : null }), {}, r.head);
}

// ---------------------------------------------------------------- pages

interface ConnectionOut<N> {
  totalCount: number;
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
  edges: { node: N }[];
}

type CardEdge = { cursor: string; node: { card: Card } };

interface CardPage {
  totalCount: number;
  pageInfo: ConnectionOut<unknown>["pageInfo"];
  edges: CardEdge[];
}

/** One page of cards (COLLECTION, or SEARCH with words), or the search's complaint about its input. */
async function fetchCards(
  gql: GqlCaller,
  request: CollectionRequest,
  variables: Record<string, unknown>,
): Promise<{ page: CardPage | null; creators: { qid: string; label: string | null }[]; problem: string | null; mode?: string }> {
  if (request.q) {
    type SearchOut = Omit<ConnectionOut<unknown>, "edges"> & { mode: string; edges: { cursor: string; node: { snippet: string | null; matchedBy: string[]; artwork: CardIn } }[] };
    let data: { search: SearchOut; creators: { qid: string; label: string | null }[] };
    try {
      data = await gql<typeof data>(SEARCH, variables);
    } catch (err) {
      // Search words that cannot be searched (no words, too long) are a BAD_USER_INPUT error, which nulls the whole answer.
      if (!(err instanceof WorkbenchQueryError && err.badInput)) throw err;
      const { creators } = await gql<{ creators: { qid: string; label: string | null }[] }>(CREATORS);
      return { page: null, creators, problem: err.messages.join("; ") };
    }
    const edges = data.search.edges.map((e) => ({ cursor: e.cursor, node: { card: card(e.node.artwork, e.node.snippet, e.node.matchedBy) } }));
    return { page: { ...data.search, edges }, creators: data.creators, problem: null, mode: data.search.mode };
  }
  type CollectionOut = { artworksConnection: Omit<ConnectionOut<unknown>, "edges"> & { edges: { cursor: string; node: CardIn }[] }; creators: { qid: string; label: string | null }[] };
  let data: CollectionOut;
  try {
    data = await gql<CollectionOut>(COLLECTION, variables);
  } catch (err) {
    // A paging link this site did not make (a cursor edited or cut short).
    if (!(err instanceof WorkbenchQueryError && err.badInput)) throw err;
    const { creators } = await gql<{ creators: { qid: string; label: string | null }[] }>(CREATORS);
    return { page: null, creators, problem: "That page link is not one this site made; start from the first page." };
  }
  const edges = data.artworksConnection.edges.map((e) => ({ cursor: e.cursor, node: { card: card(e.node) } }));
  return { page: { ...data.artworksConnection, edges }, creators: data.creators, problem: null };
}

async function collectionPage(r: Request, gql: GqlCaller, config: Config): Promise<void> {
  const request = readCollectionRequest(r.url.searchParams);
  const problems = [...request.problems];
  if (request.q && (request.state !== "ACTIVE" || request.flag || filtersByReview(request))) problems.push("Search covers active works only, without the state, flag and review filters; clear the search words to use them.");
  const got = await fetchCards(gql, request, collectionVariables(request));
  const creators = got.creators;
  if (got.problem) problems.push(got.problem);
  const info = got.page?.pageInfo;
  const cards: Card[] = got.page?.edges.map((e) => e.node.card) ?? [];
  const total = got.page?.totalCount ?? null;
  // Going backward, a previous page exists when this one is full; going forward, when a cursor brought us here.
  const hasPrev = request.before ? !!info?.hasPreviousPage : !!request.after;
  const hasNext = request.before ? true : !!info?.hasNextPage;
  const prev = hasPrev && info?.startCursor ? collectionHref(request, { before: info.startCursor }) : null;
  const next = hasNext && info?.endCursor ? collectionHref(request, { after: info.endCursor }) : null;
  const unfiltered = !request.q && !request.creator && request.state === "ACTIVE" && !request.described && !request.flag && !filtersByReview(request);
  const notices = cards.length === 0 && unfiltered ? firstRunNotices((await gql<FirstRunIn>(FIRST_RUN)), localFacts(config)) : [];
  const html = renderPage("collection", {
    ...base(r, "Collection", "collection"),
    request,
    creators,
    states: STATES,
    flags: FLAGS,
    reviewStates: REVIEW_FILTERS,
    reviewWord,
    problems,
    total,
    // What the search ran as (the API's default is words and meaning once works are embedded).
    searchedBy: searchModeLine(got.mode),
    cards,
    notices,
    prev,
    next,
  });
  // 400 only for what was refused (a bad parameter, search words that cannot be searched, a cursor
  // this site did not make): filters a search ignores are a note, and a search may find nothing.
  const refused = request.problems.length > 0 || got.problem !== null;
  sendPage(r.res, refused && !cards.length ? 400 : 200, html, {}, r.head);
}

/**
 * What only this process can see: whether the sync may run here, and whether the model files are
 * here. Anyone may ask for these pages, so this only looks for the files (a few stat calls): it
 * never reads the graphs (tens of milliseconds on the event loop for a 2 GB model, and a damaged
 * file would make the page fail), which the worker checks when it loads them.
 */
function localFacts(config: Config): LocalFacts {
  const dtypes = moduleDtypes(config.MODEL_DTYPE, config.MODEL_DEVICE);
  const dir = join(config.MODEL_DIR, config.MODEL_ID);
  const missing = modelFiles(dtypes).some((f) => !existsSync(join(dir, f)));
  return { contactSet: !!config.USER_AGENT_CONTACT, modelPullCommand: missing ? pullCommand(config.MODEL_ID, config.MODEL_REVISION, dtypes) : null };
}

type ArtworkAnswer = { __typename: "NotFoundError" | "InvalidIdError"; message: string } | ({ __typename: "Artwork" } & ArtworkIn);

interface GenerationDefaultsOut {
  params: { prompt: string; numBeams: number; maxNewTokens: number; minNewTokens: number; targetWords: number; lengthPenalty: number; earlyStopping: string; noRepeatNgramSize: number; repetitionPenalty: number; imageSplitting: boolean; cleanMarkdown: boolean };
}

async function artworkPage(r: Request, gql: GqlCaller, id: string): Promise<void> {
  if (!QID.test(id)) return message(r, 404, "No such work", [`“${id}” is not a Wikidata item id like Q5432.`], "/");
  const data = await gql<{ artwork: ArtworkAnswer; generationDefaults: GenerationDefaultsOut }>(ARTWORK, { id, history: HISTORY_LIMIT, reviews: VERDICTS_PER_VERSION });
  const a = data.artwork;
  if (a.__typename !== "Artwork") return message(r, 404, "No such work", [`${id} is not in this mirror. Works appear after a sync of their creator.`], "/");
  const vs = versions(a.descriptions, a.currentDescription, a.descriptionsConnection.totalCount, a.image?.fileTitle ?? null);
  const current = vs.find((v) => v.current) ?? null;
  const title = a.title ?? a.qid;
  const thumb = thumbFor(a.image?.localHash, [320, 640], 640);
  const defaults = data.generationDefaults.params;
  const review = reviewStatus(a.review, current !== null, current);
  // Jobs that wait or run, and the newest one when it ended without a text (failed or cancelled):
  // a request that failed says so here until the next one, not only on the jobs page.
  const jobs = a.jobs.edges.map((e) => jobView(e.node, current)).filter((j, i) => j.live || (i === 0 && (j.status === "FAILED" || j.status === "CANCELLED")));
  // The rejection's new attempt gets its progress bar even when it is not among the newest jobs.
  if (review.regenerating && !jobs.some((j) => j.number === review.regenerating!.job.number)) jobs.unshift(review.regenerating.job);
  const html = renderPage("artwork", {
    // A work of the collection, not the collection page itself.
    ...base(r, title, "artwork"),
    qid: a.qid,
    title,
    titleLang: titleLanguage(a.title, a.titles),
    date: formatInception(a.inception, a.inceptionPrecision),
    attribution: attributionLine(a.creators),
    state: a.state,
    mergedInto: a.mergedIntoQid && QID.test(a.mergedIntoQid) ? a.mergedIntoQid : null,
    image: thumb && a.image ? { ...thumb, srcset: a.image.url && a.image.localWidth ? `${thumb.srcset}, ${a.image.url} ${a.image.localWidth}w` : thumb.srcset, width: a.image.localWidth, height: a.image.localHeight } : null,
    alt: a.altText ?? `Image of ${title}; not described yet`,
    licence: licenceOf(a.image),
    facts: artworkFacts(a),
    current,
    jobs,
    review,
    versions: vs,
    diff: chooseDiff(vs, r.url.searchParams.get("from"), r.url.searchParams.get("to")),
    defaults: { ...defaults, earlyStopping: earlyStoppingOption(defaults.earlyStopping) },
  });
  sendPage(r.res, 200, html, {}, r.head);
}

interface QueueConnectionOut {
  __typename: string;
  pageInfo?: ConnectionOut<unknown>["pageInfo"];
  edges?: { cursor: string; node?: QueueItemIn }[];
}

interface ReviewQueueOut {
  reviewQueue: QueueConnectionOut;
  stats: { described: number; quality: { current: { byReviewState: { state: string; count: number }[] } } };
  /** With a filter: how many works it leaves in the queue. */
  matching?: { totalCount: number };
}

/** The connection of a reviewQueue answer; anything else (an error member) is a failure here, since the page checked its cursors. */
function queueEdges(answer: QueueConnectionOut): { cursor: string; node?: QueueItemIn }[] {
  if (answer.__typename !== "QueryReviewQueueConnection" || !answer.edges) throw new WorkbenchQueryError([`reviewQueue answered ${answer.__typename}`], 500);
  return answer.edges;
}

/**
 * /review: the current unreviewed descriptions, riskiest first, one at a time. ?after=<cursor>
 * shows the one after a place in the queue (a verdict comes back here with the reviewed one's
 * place, so the next one shows), ?before=<cursor> the one before.
 */
async function reviewPage(r: Request, gql: GqlCaller): Promise<void> {
  const p = r.url.searchParams;
  const queueFilter = readQueueFilter(p);
  const problems: string[] = [...queueFilter.problems];
  const { filter, matching } = queueFilterVariables(queueFilter);
  const filters = { filter, matching, filtered: matching !== null };
  const place = (k: "after" | "before"): string | null => {
    const v = p.get(k);
    if (!v) return null;
    try {
      decodeCursor(v);
      return v;
    } catch (err) {
      if (!(err instanceof InvalidCursorError)) throw err;
      problems.push("That place in the queue is not one this page made; here is the riskiest description instead.");
      return null;
    }
  };
  const before = place("before");
  const after = before ? null : place("after");
  let data = await gql<ReviewQueueOut>(REVIEW_QUEUE, { ...(before ? { last: 1, before } : { first: 1, after }), ...filters });
  let edge = queueEdges(data.reviewQueue)[0] ?? null;
  let wrapped = false;
  if (!edge && (before || after)) {
    // Nothing left past that place (reviewed meanwhile, or the end): start again from the riskiest, and say so.
    data = await gql<ReviewQueueOut>(REVIEW_QUEUE, { first: 1, ...filters });
    edge = queueEdges(data.reviewQueue)[0] ?? null;
    // Only past the end: going back before the first (reviewed meanwhile) is no wrap.
    wrapped = edge !== null && after !== null;
  }
  let prev: string | null = null;
  let next: string | null = null;
  if (edge) {
    const n = await gql<{ previous: QueueConnectionOut; next: QueueConnectionOut }>(REVIEW_NEIGHBOURS, { cursor: edge.cursor, filter });
    if (queueEdges(n.previous).length) prev = queueHref(queueFilter, { before: edge.cursor });
    if (queueEdges(n.next).length) next = queueHref(queueFilter, { after: edge.cursor });
  }
  const waiting = data.stats.quality.current.byReviewState.find((s) => s.state === "UNREVIEWED")?.count ?? 0;
  const item = edge?.node ? queueItem(edge.node) : null;
  const html = renderPage("review", {
    ...base(r, "Review queue", "review"),
    scripts: ["review-keys.js"],
    problems,
    waiting,
    matching: data.matching?.totalCount ?? null,
    queueFilter,
    flags: FLAGS,
    item,
    // Where a verdict or an edit of this item comes back to: the queue (as filtered), just past this item.
    back: edge ? queueHref(queueFilter, { after: edge.cursor }) : queueHref(queueFilter),
    prev,
    next,
    wrapped,
    empty: item ? null : data.matching ? "No description waiting for review matches these filters." : emptyQueueReason(data.stats.described),
  });
  sendPage(r.res, 200, html, {}, r.head);
}

interface JobsOut {
  jobs: ConnectionOut<{ id: string; number: number; status: string; progress: number; progressTotal: number | null; error: string | null; createdAt: string; artwork: { qid: string; title: string | null } | null }>;
  status: { workerAlive: boolean; backlog: number; jobs: Record<"queued" | "running" | "succeeded" | "failed" | "cancelled", number> } & Pick<FirstRunIn["status"], "heartbeats">;
}

async function jobsPage(r: Request, gql: GqlCaller): Promise<void> {
  const p = r.url.searchParams;
  const status = JOB_STATUSES.includes(p.get("status") ?? "") ? p.get("status")! : "";
  const before = (p.get("before") ?? "").slice(0, 200);
  const after = (p.get("after") ?? "").slice(0, 200);
  const paging = before ? { last: JOBS_PAGE, before } : { first: JOBS_PAGE, after: after || null };
  let data: JobsOut;
  try {
    data = await gql<JobsOut>(JOBS, { status: status ? [status] : LIVE_JOB_STATUSES, ...paging });
  } catch (err) {
    if (!(err instanceof WorkbenchQueryError && err.badInput)) throw err;
    return message(r, 400, "No such page of jobs", ["That page link is not one this site made."], "/jobs");
  }
  const href = (k: string, v: string) => `/jobs?${new URLSearchParams({ ...(status ? { status } : {}), [k]: v })}`;
  const info = data.jobs.pageInfo;
  const html = renderPage("jobs", {
    ...base(r, "Jobs", "jobs"),
    status,
    statuses: JOB_STATUSES,
    counts: data.status.jobs,
    workerAlive: data.status.workerAlive,
    modelProblem: data.status.jobs.queued > 0 ? workerModelProblem(data.status.heartbeats) : null,
    jobs: data.jobs.edges.map((e) => ({ ...jobView(e.node), artwork: e.node.artwork, createdAt: when(e.node.createdAt) })),
    prev: (before ? info.hasPreviousPage : !!after) && info.startCursor ? href("before", info.startCursor) : null,
    next: (before || info.hasNextPage) && info.endCursor ? href("after", info.endCursor) : null,
  });
  sendPage(r.res, 200, html, {}, r.head);
}

interface StatusOut {
  status: Omit<FirstRunIn["status"], "heartbeats"> & {
    now: string;
    lastSuccessfulSync: { number: number; finishedAt: string | null } | null;
    jobs: Record<string, number>;
    heartbeats: (FirstRunIn["status"]["heartbeats"][number] & { modelId: string | null; modelRevision: string | null; device: string | null })[];
    descriptionsLastHour: number;
    averageDescriptionSeconds: number | null;
    backlogDoneAt: string | null;
    semanticSearch: { enabled: boolean; modelId: string; embedded: number; described: number; command: string | null; message: string };
  };
  stats: FirstRunIn["stats"];
  syncRuns: unknown[];
}

async function statusPage(r: Request, gql: GqlCaller, config: Config): Promise<void> {
  const data = await gql<StatusOut>(STATUS);
  const s = data.status;
  const loaded = s.heartbeats.find((h) => h.alive && h.modelStatus === "loaded");
  const html = renderPage("status", {
    ...base(r, "Status", "status"),
    ...s,
    lastSuccessfulAt: s.lastSuccessfulSync?.finishedAt ?? null,
    stats: data.stats,
    runs: data.syncRuns,
    model: loaded ? `${loaded.modelId}@${loaded.modelRevision} on ${loaded.device}` : null,
    notices: firstRunNotices({ stats: data.stats, status: s }, localFacts(config)),
  });
  sendPage(r.res, 200, html, {}, r.head);
}

function signInPage(r: Request, config: Config, status: number, error: string | null, name = "", headers: Record<string, string> = {}): void {
  const next = localPath(r.url.searchParams.get("next") ?? undefined, "/");
  const html = renderPage("sign-in", { ...base(r, "Sign in", "sign-in"), available: !!config.API_TOKEN, required: config.UI_REQUIRE_SIGN_IN, error, next, name });
  sendPage(r.res, status, html, headers, r.head);
}

// ---------------------------------------------------------------- forms

interface PostContext {
  gql: GqlCaller;
  config: Config;
  key: Buffer | null;
  artwork: RegExpExecArray | null;
  cancel: RegExpExecArray | null;
  path: string;
  authThrottle: AuthThrottle;
  log: Logger;
}

/** https when the socket is TLS or a proxy in front says so (a browser's form cannot set that header). */
function schemeOf(req: IncomingMessage): "http" | "https" {
  if ((req.socket as { encrypted?: boolean }).encrypted) return "https";
  return req.headers["x-forwarded-proto"] === "https" ? "https" : "http";
}

async function handlePost(r: Request, c: PostContext): Promise<void> {
  const { req, res } = r;
  const h = req.headers;
  const verdict = checkPostOrigin(
    { origin: h.origin, referer: h.referer, host: h.host, secFetchSite: typeof h["sec-fetch-site"] === "string" ? h["sec-fetch-site"] : undefined },
    schemeOf(req),
  );
  if (!verdict.ok) {
    refusedConnection(res);
    return message(r, 403, "Refused", [`This form was refused: ${verdict.reason}. Send it from this server's own pages.`]);
  }
  const known = c.path === "/sign-in" || c.path === "/sign-out" || c.path === "/review" || !!c.artwork?.[2] || !!c.cancel;
  if (!known) {
    res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" }).end("method not allowed");
    return;
  }
  const form = await readForm(req);
  const secure = schemeOf(req) === "https";
  // Where everything needs sign-in, the collection would send the browser on to the sign-in page
  // without its flash: go there directly.
  if (c.path === "/sign-out") return redirect(res, c.config.UI_REQUIRE_SIGN_IN ? "/sign-in?done=signed-out" : "/?done=signed-out", { "set-cookie": sessionCookie(null, secure) });
  if (c.path === "/sign-in") {
    r.url.searchParams.set("next", form.get("next") ?? "/");
    if (!c.key) return signInPage(r, c.config, 403, "This server has no API_TOKEN, so nobody can sign in.");
    const name = cleanName(form.get("name"));
    if ("problem" in name) return signInPage(r, c.config, 400, name.problem, form.get("name")?.slice(0, 200));
    const client = clientOf(req, trustedProxies(c.config.TRUSTED_PROXIES));
    const wait = c.authThrottle.retryAfterS(client);
    if (wait > 0) {
      const text = `Too many wrong tokens from your address; try again in ${wait} seconds.`;
      return signInPage(r, c.config, 429, text, name.name ?? "", { "retry-after": String(wait) });
    }
    if (!tokenMatches(form.get("token") ?? "", c.config.API_TOKEN)) {
      c.authThrottle.fail(client);
      c.log.warn({ client, event: "auth-failure", via: "sign-in" }, "a wrong API token at sign-in");
      return signInPage(r, c.config, 401, "That is not this server's API token.", name.name ?? "");
    }
    const value = signSession({ name: name.name, expiresAt: Math.floor(Date.now() / 1000) + SESSION_MAX_AGE_S }, c.key);
    const next = localPath(form.get("next"), "/");
    return redirect(res, withDone(next, "signed-in"), { "set-cookie": sessionCookie(value, secure) });
  }
  if (!r.session || !c.config.API_TOKEN) {
    // A session that ended while the person typed: their text is shown to copy, and sign-in leads back to the page.
    const from = localPath(form.get("back"), c.artwork ? `/artworks/${c.artwork[1]}` : c.cancel ? "/jobs" : "/review");
    const typed = form.get("text") || form.get("note") || "";
    return message(r, 403, "Sign in first", ["Changing descriptions and jobs needs sign-in with the server's API token."], `/sign-in?next=${encodeURIComponent(from)}`, typed, "Sign in");
  }
  const token = c.config.API_TOKEN;
  if (c.path === "/review") return postVerdict(r, c.gql, form, token);
  if (c.cancel) {
    const data = await c.gql<{ cancelJob: { __typename: string; message?: string } }>(CANCEL_JOB, { id: c.cancel[1] }, { token });
    if (data.cancelJob.__typename !== "Job") return message(r, failedStatus(data.cancelJob.__typename), "Could not cancel the job", [data.cancelJob.message ?? data.cancelJob.__typename], "/jobs");
    return redirect(res, "/jobs?done=cancelled");
  }
  const qid = decodeSegment(c.artwork![1]!);
  if (!QID.test(qid)) return message(r, 404, "No such work", [`“${qid}” is not a Wikidata item id like Q5432.`], "/");
  const back = `/artworks/${qid}`;
  if (c.artwork![2] === "/description") {
    // The review queue's Edit form comes back to the queue; any other place is this work's page.
    const then = localPath(form.get("back"), back);
    // The description the text was edited from: a text saved by someone else meanwhile is not overwritten unseen.
    const replaces = form.get("replaces")?.trim() || null;
    const data = await c.gql<{ setDescription: { __typename: string; message?: string } }>(
      SET_DESCRIPTION,
      { id: qid, text: form.get("text") ?? "", author: r.session.name, reason: form.get("reason")?.trim() || null, replaces },
      { token },
    );
    const answer = data.setDescription;
    const typed = form.get("text") ?? "";
    if (answer.__typename === "ConflictError") return message(r, 409, "Someone changed this description first", [answer.message ?? answer.__typename], then, typed);
    if (answer.__typename !== "Description") return message(r, failedStatus(answer.__typename), "Could not save the description", [answer.message ?? answer.__typename], then, typed);
    return redirect(res, withDone(then, "saved"));
  }
  const parsed = readRegenerateForm(form);
  if ("problems" in parsed) return message(r, 400, "Could not queue the job", parsed.problems, back);
  const reason = parsed.ok.reason ?? (r.session.name ? `Requested in the workbench by ${r.session.name}` : "Requested in the workbench");
  // Forced over the text the page showed: a person's text saved meanwhile is not replaced unseen.
  const replaces = parsed.ok.force ? form.get("replaces")?.trim() || null : null;
  const data = await c.gql<{ regenerateDescription: { __typename: string; message?: string; number?: number } }>(
    REGENERATE,
    { id: qid, params: parsed.ok.params, reason, force: parsed.ok.force, replaces },
    { token },
  );
  if (data.regenerateDescription.__typename === "ConflictError") {
    return message(r, 409, "Someone changed this description first", [data.regenerateDescription.message ?? "ConflictError"], back);
  }
  if (data.regenerateDescription.__typename !== "Job") return message(r, failedStatus(data.regenerateDescription.__typename), "Could not queue the job", [data.regenerateDescription.message ?? data.regenerateDescription.__typename], back);
  return redirect(res, `${back}?done=queued`);
}

/** The status of a form whose mutation answered with an error type: 404 for the work or job of its address not being there, else 422. */
function failedStatus(typename: string): 404 | 422 {
  return typename === "NotFoundError" ? 404 : 422;
}

/** POST /review: a verdict from the artwork page or the review queue, recorded as the signed-in Name. */
async function postVerdict(r: Request, gql: GqlCaller, form: Map<string, string>, token: string): Promise<void> {
  const back = localPath(form.get("back"), "/review");
  const verdict = form.get("verdict") ?? "";
  const id = (form.get("description") ?? "").trim();
  if (!Object.hasOwn(DONE_BY_VERDICT, verdict)) return message(r, 400, "Could not record the verdict", [`The verdict must be one of ${Object.keys(DONE_BY_VERDICT).join(", ")}.`], back);
  if (!id) return message(r, 400, "Could not record the verdict", ["The form names no description."], back);
  // The review state the page showed: a verdict someone else gave meanwhile is not overwritten unseen.
  const state = form.get("state") ?? null;
  if (state !== null && !(REVIEW_STATES as readonly string[]).includes(state)) {
    return message(r, 400, "Could not record the verdict", [`The review state must be one of ${REVIEW_STATES.join(", ")}.`], back);
  }
  const note = form.get("note")?.trim() ? form.get("note")! : null;
  // Both verdict forms show the work's current text: one replaced meanwhile (a job that finished,
  // an edit) is not judged unseen.
  const expectCurrent = form.get("current") === "1";
  const data = await gql<{ reviewDescription: { __typename: string; message?: string; changed?: string } }>(
    REVIEW_DESCRIPTION,
    { id, verdict, note, reviewer: r.session!.name, expectedState: state, expectCurrent },
    { token },
  );
  const answer = data.reviewDescription;
  if (answer.__typename === "ConflictError") {
    // What changed: the work (another text became current) or the description (another verdict).
    const replaced = Buffer.from(answer.changed ?? "", "base64").toString("utf8").startsWith("Artwork:");
    return message(r, 409, replaced ? "A new text replaced this description" : "Someone reviewed this description first", [answer.message ?? answer.__typename], back, note ?? "");
  }
  if (answer.__typename !== "Review") {
    const status = answer.__typename === "NotFoundError" || answer.__typename === "InvalidIdError" ? 404 : answer.__typename === "UnauthorizedError" ? 403 : 422;
    return message(r, status, "Could not record the verdict", [answer.message ?? answer.__typename], back, note ?? "");
  }
  return redirect(r.res, withDone(back, DONE_BY_VERDICT[verdict]!));
}
