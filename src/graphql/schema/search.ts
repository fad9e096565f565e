import { queryFromInfo } from "@pothos/plugin-prisma";
import { cursorToOffset, offsetToCursor } from "@pothos/plugin-relay";
import type { Artwork } from "../../generated/prisma/client.js";
import { type SearchHit, searchArtworks, snippetHtml } from "../../search/search.js";
import { SearchQueryError } from "../../search/fts-query.js";
import { builder } from "../builder.js";
import { InvalidInputError } from "../errors.js";
import { ArtworkRef } from "./artwork.js";
import { AttributionKindEnum } from "./enums.js";

export const MAX_SEARCH_PAGE = 100;

/** A hit and the loader of its page's artworks (one findMany, run when a hit's artwork is asked for). */
type SearchHitNode = SearchHit & { artworks: () => Promise<Map<number, Artwork>> };

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
    score: t.exposeFloat("score", { description: "BM25 relevance (higher is better); title matches weigh more than description matches." }),
    snippet: t.string({
      nullable: true,
      description: "HTML: part of the current description around the matches, text escaped, matched words in <mark>…</mark>. Null without a description.",
      resolve: (hit) => (hit.snippet == null ? null : snippetHtml(hit.snippet)),
    }),
  }),
});

const SearchFilterInput = builder.inputType("SearchFilter", {
  fields: (t) => ({
    creator: t.string({ description: 'A creator QID ("Q5432") or words of a creator label ("goya"), case and accents ignored.' }),
    attribution: t.field({ type: [AttributionKindEnum] }),
    hasDescription: t.boolean(),
  }),
});

builder.queryField("search", (t) =>
  t.connection(
    {
      type: SearchHitRef,
      description:
        "Full-text search over active artworks: titles in every language, the current description, creator labels, " +
        "and depicted things, genres and materials. Type words as you would anywhere: \"a phrase\", prefix*, -excluded. " +
        "Best matches first.",
      args: {
        query: t.arg.string({ required: true }),
        filter: t.arg({ type: SearchFilterInput }),
      },
      errors: { types: [InvalidInputError], directResult: true },
      resolve: async (_root, args, ctx, info) => {
        if (args.last != null || args.before != null) throw new InvalidInputError("last", "search pages forward only: use first and after");
        const first = args.first ?? 20;
        if (first < 0 || first > MAX_SEARCH_PAGE) {
          throw new InvalidInputError("first", `first must be between 0 and ${MAX_SEARCH_PAGE} (got ${first})`);
        }
        let offset = 0;
        if (args.after != null) {
          try {
            offset = cursorToOffset(args.after) + 1;
          } catch {
            offset = Number.NaN;
          }
          if (!Number.isSafeInteger(offset) || offset < 1) throw new InvalidInputError("after", `"${args.after}" is not a cursor from this search`);
        }
        let page;
        try {
          page = await searchArtworks(ctx.db, args.query, {
            limit: first,
            offset,
            filter: {
              creator: args.filter?.creator ?? null,
              attribution: args.filter?.attribution ?? null,
              hasDescription: args.filter?.hasDescription ?? null,
            },
          });
        } catch (err) {
          if (err instanceof SearchQueryError) throw new InvalidInputError("query", err.message);
          throw err;
        }
        // The page's artworks in one findMany with what the query selects under edges.node.artwork
        // (a findUnique per hit, even batched by Prisma, costs twice the CPU).
        let loading: Promise<Map<number, Artwork>> | undefined;
        const ids = page.hits.map((hit) => hit.artworkId);
        const artworks = () =>
          (loading ??= ctx.db.artwork
            .findMany({ ...queryFromInfo({ context: ctx, info, path: ["edges", "node", "artwork"], select: { id: true } }), where: { id: { in: ids } } })
            // Rows hold what the query selected, which is all the Artwork type reads of them.
            .then((rows) => new Map((rows as Artwork[]).map((a) => [a.id, a]))));
        const edges = page.hits.map((hit, i) => ({ cursor: offsetToCursor(offset + i), node: { ...hit, artworks } }));
        return {
          edges,
          pageInfo: {
            startCursor: edges[0]?.cursor ?? null,
            endCursor: edges.at(-1)?.cursor ?? null,
            hasPreviousPage: offset > 0,
            hasNextPage: page.hasMore,
          },
        };
      },
    },
    {},
    {},
  ),
);
