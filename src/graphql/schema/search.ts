import { createHash } from "node:crypto";
import { queryFromInfo } from "@pothos/plugin-prisma";
import { cursorToOffset } from "@pothos/plugin-relay";
import type { Artwork } from "../../generated/prisma/client.js";
import { rateLimited } from "../../ops/rate-limited-log.js";
import { EmbedderBusyError, EmbedderFailedError, EmbedModelMissingError, meaningSource, QUERY_EMBEDDER_RETRY_MS } from "../../embed/embedder.js";
import {
  countMatches,
  prepareSearch,
  SEARCH_MODES,
  type SearchHit,
  type SearchMode,
  searchPage,
  MAX_SIMILAR,
  SemanticSearchUnavailableError,
  type SimilarWork,
  similarWorks,
  snippetHtml,
} from "../../search/search.js";
import { SearchQueryError } from "../../search/fts-query.js";
import { builder } from "../builder.js";
import { TurnLane } from "../../ops/event-loop-turns.js";
import { BadUserInputError, TemporarilyUnavailableError } from "../errors.js";
import { notCacheable } from "../response-cache.js";
import { inputLimit } from "../limits/input-limits.js";
import { fieldWeight } from "../limits/cost.js";
import { connectionPageSizes, pageSize } from "../limits/page-size.js";
import { ArtworkRef, MAX_CREATOR_LENGTH } from "./artwork.js";
import { StatusRef } from "./status.js";
import { configuredVectorModel } from "../../embed/model-files.js";
import { type SemanticSearchStatus, semanticSearchStatus } from "../../embed/status.js";
import { AttributionKindEnum } from "./enums.js";

export const MAX_SEARCH_PAGE = 100;
export const DEFAULT_SEARCH_PAGE = 20;
/**
 * Longest search text the request limits let through; prepareSearch refuses a query above its
 * own MAX_QUERY_CHARS (500) with a message, this refuses the absurd before that.
 */
export const MAX_SEARCH_QUERY_LENGTH = 20_000;

/** A hit and the loader of its page's artworks (one findMany, run when a hit's artwork is asked for). */
type SearchHitNode = SearchHit & { artworks: () => Promise<Map<number, Artwork>> };

export const SearchModeEnum = builder.enumType("SearchMode", {
  description:
    "TEXT: the words (BM25 on SQLite, ts_rank on PostgreSQL). SEMANTIC: the meaning: the works whose description embeddings are nearest to the query's (SEARCH_SEMANTIC_TOP_K of them, those whose cosine is above SEARCH_SEMANTIC_MIN_SIMILARITY). " +
    "HYBRID: both lists fused by reciprocal rank (1 / (SEARCH_RRF_K + rank), summed); the default once descriptions are embedded.",
  values: SEARCH_MODES,
});

export const MatchKindEnum = builder.enumType("MatchKind", {
  description: "TEXT: the work's words match the query. MEANING: its description is among the nearest in meaning.",
  values: ["TEXT", "MEANING"] as const,
});

const SearchHitRef = builder.objectRef<SearchHitNode>("SearchHit").implement({
  description: "An artwork that matches a search, how well, and where.",
  fields: (t) => ({
    artwork: t.field({
      type: ArtworkRef,
      resolve: async (hit) => {
        const artwork = (await hit.artworks()).get(hit.artworkId);
        // Possible only if the artwork was deleted between the search and this load.
        if (!artwork) throw new Error(`artwork ${hit.artworkId} is no longer in the store`);
        return artwork;
      },
    }),
    score: t.exposeFloat("score", {
      description:
        "Word relevance, higher is better (SQLite: BM25; PostgreSQL: ts_rank, on another scale); title matches weigh more than description matches. 0 for a hit matched by meaning alone.",
    }),
    rank: t.exposeInt("rank", { description: "Position in the whole result list, from 1 (the order of the mode: BM25, cosine, or fused)." }),
    similarity: t.exposeFloat("similarity", {
      nullable: true,
      description: "Cosine similarity of the query and the work's description embedding (-1..1); null in TEXT mode or for a work not embedded yet.",
    }),
    matchedBy: t.field({ type: [MatchKindEnum], description: "What the hit matched on: its words, its meaning, or both.", resolve: (hit) => [...hit.matchedBy] }),
    snippet: t.string({
      nullable: true,
      description:
        "HTML: part of the current description around the matches, text escaped, matched words in <mark>…</mark>; " +
        "for a hit matched by meaning alone, the description's opening sentences (up to 200 characters). Null without a description.",
      resolve: (hit) => (hit.snippet == null ? null : snippetHtml(hit.snippet)),
    }),
  }),
});

const SearchFilterInput = builder.inputType("SearchFilter", {
  fields: (t) => ({
    creator: t.string({
      description: 'A creator QID ("Q5432") or words of a creator label ("goya"), case and accents ignored.',
      extensions: inputLimit({ maxLength: MAX_CREATOR_LENGTH }),
    }),
    attribution: t.field({ type: [AttributionKindEnum] }),
    hasDescription: t.boolean(),
  }),
});

/** What the search connection resolves to: the page, and its total, counted only when asked for. */
interface SearchConnection {
  edges: { cursor: string; node: SearchHitNode }[];
  pageInfo: { startCursor: string | null; endCursor: string | null; hasPreviousPage: boolean; hasNextPage: boolean };
  totalCount: () => number | Promise<number>;
  mode: SearchMode;
}

/** This process's searches, one synchronous part at a time (TurnLane). */
const searchLane = new TurnLane();

/** Seconds a client should wait after a search refused as busy: the queue drains in milliseconds. */
const BUSY_RETRY_AFTER_S = 1;
/** After the embedding model failed: the API's query embedder loads it again on a search this much later. */
const FAILED_RETRY_AFTER_S = QUERY_EMBEDDER_RETRY_MS / 1000;

builder.queryField("search", (t) =>
  t.connection(
    {
      type: SearchHitRef,
      description:
        "Full-text search over active artworks: titles in every language, the current description, creator labels, " +
        "and depicted things, genres and materials. Type words as you would anywhere: \"a phrase\", prefix*, -excluded. " +
        `Best matches first; pages of up to ${MAX_SEARCH_PAGE} (${DEFAULT_SEARCH_PAGE} unless first or last is given), forward or backward. ` +
        "mode picks words, meaning or both (HYBRID once descriptions are embedded, else TEXT); an excluded -word excludes in every mode. " +
        "An unsearchable query, a foreign cursor, a page too large or a mode the server cannot run is an error with extensions.code BAD_USER_INPUT and extensions.argument. " +
        "SEMANTIC or HYBRID asked for while the query embedder is busy or its model failed is extensions.code TEMPORARILY_UNAVAILABLE (HTTP 503, Retry-After and extensions.retryAfter in seconds); TEXT is never.",
      args: {
        query: t.arg.string({ required: true, extensions: inputLimit({ maxLength: MAX_SEARCH_QUERY_LENGTH }) }),
        mode: t.arg({ type: SearchModeEnum, description: "Default: HYBRID when descriptions are embedded, else TEXT." }),
        filter: t.arg({ type: SearchFilterInput }),
      },
      // Bad input (an unsearchable query, a foreign cursor, a page over the maximum) is a
      // BadUserInputError naming the argument: the field returns the connection itself, as
      // Relay's @connection needs.
      resolve: async (_root, args, ctx, info) => {
        connectionPageSizes(args, MAX_SEARCH_PAGE);
        // A cursor names the mode its list was searched in: a later page asked without a mode
        // continues that list, even where the default has changed since (the first page fell back
        // to TEXT, or descriptions were embedded in between).
        // A cursor names the search it came from: another search's cursor is refused, not paged from.
        const key = searchKey(args.query, args.filter);
        const after = args.after == null ? null : readCursor("after", args.after, key);
        const before = args.before == null ? null : readCursor("before", args.before, key);
        const cursorMode = after?.mode ?? before?.mode ?? null;
        if (args.mode && cursorMode && args.mode !== cursorMode) {
          throw new BadUserInputError(after?.mode ? "after" : "before", `this cursor is from a ${cursorMode} search, not ${args.mode}: ask without a cursor to start a ${args.mode} search`);
        }
        const mode = args.mode ?? cursorMode;
        let search;
        try {
          search = await prepareSearch(
            ctx.db,
            args.query,
            {
              creator: args.filter?.creator ?? null,
              attribution: args.filter?.attribution ?? null,
              hasDescription: args.filter?.hasDescription ?? null,
            },
            {
              mode,
              meaning: meaningSource(ctx.config),
              // A busy thread under a flood of queries is expected: not a warning per request.
              // A model that fails does so for every search: one line a minute, with the count.
              // The answer then depends on this process's state, not on the database: the response
              // cache must not keep it (it would serve words-only hits after the embedder recovers).
              onFallback: (err) => {
                notCacheable(ctx);
                if (err instanceof EmbedderBusyError) ctx.log.debug({ err }, "the query could not be embedded: searched by words only");
                else rateLimited(ctx.log).warn("query-embedding", { err }, "the query could not be embedded: searched by words only");
              },
            },
          );
        } catch (err) {
          if (err instanceof SearchQueryError) throw new BadUserInputError("query", err.message);
          if (err instanceof SemanticSearchUnavailableError) throw new BadUserInputError("mode", err.message);
          if (err instanceof EmbedModelMissingError) throw new BadUserInputError("mode", `${mode} search needs the embedding model: run ${err.command}`);
          // The server's state, not the request's fault: 503 with Retry-After, which clients retry.
          if (err instanceof EmbedderBusyError) throw new TemporarilyUnavailableError("mode", `${mode} search is busy: ${err.message}`, BUSY_RETRY_AFTER_S);
          if (err instanceof EmbedderFailedError) {
            ctx.log.error({ err }, "the embedding model failed");
            throw new TemporarilyUnavailableError("mode", `${mode} search is unavailable: the embedding model failed to run (TEXT search works).`, FAILED_RETRY_AFTER_S);
          }
          throw err;
        }
        // The ranking and the count run in the search lane: one search's synchronous part at a time,
        // with the loop's pending I/O between any two (a flood of searches cannot hold /health).
        let counted: Promise<number> | undefined;
        const totalCount = () => (counted ??= searchLane.run(() => countMatches(ctx.db, search)));
        // Paging backward needs the total first; on PostgreSQL counting is a query (a promise).
        const known = args.last != null || args.before != null ? await totalCount() : 0;
        const window = pageWindow({ after: after?.offset ?? null, before: before?.offset ?? null, first: args.first ?? null, last: args.last ?? null, total: () => known });
        const page = await searchLane.run(() => searchPage(ctx.db, search, window.limit, window.offset));
        // The page's artworks in one findMany with what the query selects under edges.node.artwork
        // (a findUnique per hit, even batched by Prisma, costs twice the CPU).
        let loading: Promise<Map<number, Artwork>> | undefined;
        const ids = page.hits.map((hit) => hit.artworkId);
        const artworks = () =>
          (loading ??= ctx.db.artwork
            .findMany({ ...queryFromInfo({ context: ctx, info, path: ["edges", "node", "artwork"], select: { id: true } }), where: { id: { in: ids } } })
            // Rows hold what the query selected, which is all the Artwork type reads of them.
            .then((rows) => new Map((rows as Artwork[]).map((a) => [a.id, a]))));
        const ran: SearchMode = search?.mode ?? mode ?? "TEXT";
        const edges = page.hits.map((hit, i) => ({ cursor: searchCursor(ran, key, window.offset + i), node: { ...hit, artworks } }));
        const connection: SearchConnection = {
          edges,
          pageInfo: {
            startCursor: edges[0]?.cursor ?? null,
            endCursor: edges.at(-1)?.cursor ?? null,
            hasPreviousPage: window.offset > 0,
            hasNextPage: page.hasMore,
          },
          totalCount,
          mode: ran,
        };
        return connection;
      },
    },
    {
      fields: (t) => ({
        totalCount: t.int({
          description: "How many active artworks match (counted only when asked for).",
          resolve: (connection) => (connection as unknown as SearchConnection).totalCount(),
        }),
        mode: t.field({
          type: SearchModeEnum,
          description:
            "The mode this list was searched in: the one asked for, or the one a cursor came from; without either, HYBRID once " +
            "descriptions are embedded, else TEXT (and TEXT when the query could not be embedded). Its cursors carry it, so later pages continue this list.",
          resolve: (connection) => (connection as unknown as SearchConnection).mode,
        }),
      }),
    },
    {},
  ),
);

/** A search cursor: the mode its list was searched in, which search it is (searchKey) and the row's offset there. */
function searchCursor(mode: SearchMode, key: string, offset: number): string {
  return Buffer.from(`${CURSOR_PREFIX}${mode}:${key}:${offset}`).toString("base64");
}

const CURSOR_PREFIX = "search:";
/** The key is optional: cursors given out before it was added still page their search. */
const CURSOR = new RegExp(`^${CURSOR_PREFIX}(${SEARCH_MODES.join("|")}):(?:([0-9a-f]{8}):)?(\\d{1,15})$`);

/** Which search a cursor belongs to: its words and filters, hashed (8 hex digits). */
function searchKey(query: string, filter: Record<string, unknown> | null | undefined): string {
  const f = filter ?? {};
  const words = JSON.stringify([query.trim(), f.creator ?? null, f.attribution ?? null, f.hasDescription ?? null]);
  return createHash("sha256").update(words).digest("hex").slice(0, 8);
}

function readCursor(arg: "after" | "before", cursor: string, key: string): { offset: number; mode: SearchMode | null } {
  const m = CURSOR.exec(Buffer.from(cursor, "base64").toString("utf8"));
  if (m) {
    if (m[2] && m[2] !== key) {
      throw new BadUserInputError(arg, "this cursor is from another search (other words or filters): ask without a cursor to start this one");
    }
    return { offset: Number(m[3]), mode: m[1] as SearchMode };
  }
  return { offset: cursorOffset(arg, cursor), mode: null };
}

function cursorOffset(arg: "after" | "before", cursor: string): number {
  let offset: number;
  try {
    offset = cursorToOffset(cursor);
  } catch {
    offset = Number.NaN;
  }
  if (!Number.isSafeInteger(offset) || offset < 0) throw new BadUserInputError(arg, `"${cursor}" is not a cursor from this search`);
  return offset;
}

/**
 * The rows a Relay page covers (https://relay.dev/graphql/connections.htm#sec-Pagination-algorithm),
 * as offset and limit: after and before cut the result list (a before past the end cuts
 * nothing), then first keeps the first rows and last the last. Paging backward needs to know
 * where the list ends, so `last` or `before` count the matches. Without first or last a page
 * has DEFAULT_SEARCH_PAGE rows: after `after`, or just before `before`.
 */
export function pageWindow(args: {
  after: number | null;
  before: number | null;
  first: number | null;
  last: number | null;
  total: () => number;
}): { offset: number; limit: number } {
  const start = args.after == null ? 0 : args.after + 1;
  const backward = args.last != null || args.before != null;
  let end = backward ? Math.min(args.before ?? Number.POSITIVE_INFINITY, args.total()) : Number.POSITIVE_INFINITY;
  end = Math.max(end, start);
  if (args.first != null) end = Math.min(end, start + args.first);
  const last = args.last ?? (args.first == null && args.before != null ? DEFAULT_SEARCH_PAGE : null);
  if (last != null) return { offset: Math.max(start, end - last), limit: Math.min(last, end - start) };
  if (args.first == null) end = Math.min(end, start + DEFAULT_SEARCH_PAGE);
  return { offset: start, limit: end - start };
}

/** Cost weight of Artwork.similar per artwork: one exact scan over every vector (docs/search.md). */
export const SIMILAR_COST_WEIGHT = 20;
const DEFAULT_SIMILAR = 10;

interface SimilarNode {
  artworkId: number;
  similarity: number;
  artworks: () => Promise<Map<number, Artwork>>;
}

const SimilarArtworkRef = builder.objectRef<SimilarNode>("SimilarArtwork").implement({
  description: "A work whose description is near another's in meaning.",
  fields: (t) => ({
    artwork: t.field({
      type: ArtworkRef,
      resolve: async (s) => {
        const artwork = (await s.artworks()).get(s.artworkId);
        if (!artwork) throw new Error(`artwork ${s.artworkId} is no longer in the store`);
        return artwork;
      },
    }),
    similarity: t.exposeFloat("similarity", { description: "Cosine similarity of the two description embeddings (-1..1, higher is nearer)." }),
  }),
});

builder.objectField(ArtworkRef, "similar", (t) =>
  t.field({
    type: [SimilarArtworkRef],
    description:
      "Active works whose descriptions are nearest in meaning to this one's (exact cosine over the description embeddings), best first. " +
      "It needs only the stored vectors, not the model: empty when none are stored for the configured EMBED_MODEL_ID (semantic search never turned on) or this work has none yet. " +
      `first is 0..${MAX_SIMILAR} (default ${DEFAULT_SIMILAR}); a larger one is a BAD_USER_INPUT error.`,
    args: {
      first: t.arg.int({ defaultValue: DEFAULT_SIMILAR }),
      sameCreator: t.arg.boolean({ defaultValue: false, description: "Only works that share a creator with this one." }),
    },
    extensions: fieldWeight(SIMILAR_COST_WEIGHT),
    resolve: (artwork, args, ctx, info) => {
      const first = pageSize("first", args.first, DEFAULT_SIMILAR, MAX_SIMILAR);
      const nodes = (found: readonly SimilarWork[] | null) => {
        const similar = found ?? [];
        let loading: Promise<Map<number, Artwork>> | undefined;
        const ids = similar.map((s) => s.artworkId);
        const artworks = () =>
          (loading ??= ctx.db.artwork
            .findMany({ ...queryFromInfo({ context: ctx, info, path: ["artwork"], select: { id: true } }), where: { id: { in: ids } } })
            .then((rows) => new Map((rows as Artwork[]).map((a) => [a.id, a]))));
        return similar.map((s) => ({ ...s, artworks }));
      };
      const found = similarWorks(ctx.db, artwork.id, { modelId: configuredVectorModel(ctx.config), limit: first, sameCreator: args.sameCreator ?? false });
      // A promise on PostgreSQL only.
      return found instanceof Promise ? found.then(nodes) : nodes(found);
    },
  }),
);

const SemanticSearchStatusRef = builder.objectRef<SemanticSearchStatus>("SemanticSearchStatus").implement({
  description: "Whether semantic and hybrid search are on, how many descriptions are embedded, and what to run when they are off.",
  fields: (t) => ({
    enabled: t.exposeBoolean("enabled", { description: "An embedding model is installed and descriptions are embedded: HYBRID is the default search mode." }),
    installed: t.exposeBoolean("installed", { description: "The embedding model's files are in MODEL_DIR/EMBED_MODEL_ID." }),
    modelId: t.exposeString("modelId"),
    embedded: t.exposeInt("embedded", { description: "Active works with a description embedding of this model." }),
    described: t.exposeInt("described", { description: "Active works with a current description." }),
    stale: t.exposeInt("stale", { description: "Works whose embedding is missing or stale: none yet, or made by another model, from another description or with another title (workers refresh them)." }),
    command: t.exposeString("command", { nullable: true, description: "The command that turns semantic search on or catches it up; null when nothing is needed." }),
    message: t.exposeString("message"),
  }),
});

builder.objectField(StatusRef, "semanticSearch", (t) =>
  t.field({ type: SemanticSearchStatusRef, resolve: (_s, _args, ctx) => semanticSearchStatus(ctx.db, ctx.config, meaningSource(ctx.config).loadError()) }),
);
