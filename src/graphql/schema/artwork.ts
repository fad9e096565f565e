import { formatInception } from "../../text/facts.js";
import type { Prisma } from "../../generated/prisma/client.js";
import { qualityWhere } from "../../quality/store.js";
import { ARTWORK_ORDER, type ArtworkFilter, artworkWhere, artworkWhereResolved } from "../../store/artwork-filter.js";
import { notRejected, type ReviewState, reviewWhere } from "../../review/verdict.js";
import { artworkAltText } from "../../text/alt-text.js";
import { commonsFilePageUrl } from "../../text/web-url.js";
import { builder } from "../builder.js";
import { BadUserInputError, InvalidIdError, NotFoundError } from "../errors.js";
import { parseArtworkId } from "../ids.js";
import { fieldWeight, LONG_TEXT_WEIGHT } from "../limits/cost.js";
import { inputLimit, RESOLVER_CHECKED } from "../limits/input-limits.js";
import { byKey, type ConnectionArgs, connectionPageSizes, pageSize } from "../limits/page-size.js";
import { ArtworkStateEnum, AttributionKindEnum, ReviewStateEnum } from "./enums.js";
import { ImageRef } from "./image.js";
import { QualityFlagEnum } from "./quality.js";
import type { QualityFlag } from "../../quality/types.js";
import { LocalizedText, localized } from "./scalars.js";

export const MAX_LIST_LIMIT = 500;
export const DEFAULT_ARTWORKS_PAGE = 100;
/** Versions of an artwork's description history returned unless `limit` says otherwise. */
const DEFAULT_HISTORY = 50;
const MAX_HISTORY = 500;
/** Longest `creator` argument: words of a label (SQLite refuses LIKE patterns of 50,000 bytes). */
export const MAX_CREATOR_LENGTH = 200;
const creatorLimit = inputLimit({ maxLength: MAX_CREATOR_LENGTH });
const qidLimit = inputLimit({ maxLength: 20 });

const WikidataItem = builder.objectRef<{ qid: string; label: string | null; labels: string }>("WikidataItem").implement({
  description: "A Wikidata item linked from an artwork (genre, material, collection, location, depicted thing, type).",
  fields: (t) => ({
    qid: t.exposeString("qid"),
    label: t.exposeString("label", { nullable: true }),
    labels: t.field({ type: [LocalizedText], resolve: (i) => localized(i.labels) }),
    wikidataUrl: t.string({ resolve: (i) => `https://www.wikidata.org/wiki/${i.qid}` }),
  }),
});

const Dimensions = builder
  .objectRef<{ height: number | null; heightUnit: string | null; width: number | null; widthUnit: string | null }>("Dimensions")
  .implement({
    description: "P2048 height and P2049 width; units are Wikidata items (Q174728 is centimetre).",
    fields: (t) => ({
      height: t.exposeFloat("height", { nullable: true }),
      heightUnit: t.exposeString("heightUnit", { nullable: true }),
      width: t.exposeFloat("width", { nullable: true }),
      widthUnit: t.exposeString("widthUnit", { nullable: true }),
    }),
  });

/** One select for every linked-item field, so Pothos loads the links once. */
const linksSelect = {
  links: { orderBy: { position: "asc" as const }, include: { item: true } },
};
type WithLinks = { links: { property: string; item: { qid: string; label: string | null; labels: string } }[] };
const byProperty = (property: string) => (a: WithLinks) => a.links.filter((l) => l.property === property).map((l) => l.item);

/** What altText reads; the fallback texts are loaded only for works whose current text is rejected. */
const currentRejected = { currentDescription: { reviewState: "REJECTED" } } as const;
const altTextSelect = {
  title: true,
  inceptionYear: true,
  inception: true,
  inceptionPrecision: true,
  currentDescription: { select: { text: true, reviewState: true } },
  descriptions: { where: { ...notRejected, artwork: currentRejected }, orderBy: { id: "desc" as const }, take: 1, select: { text: true } },
  creators: { where: { artwork: currentRejected }, orderBy: { position: "asc" as const }, select: { creator: { select: { label: true } } } },
};

/** The main image first, then Wikidata's claim order. */
const imagesOrder = [{ isMain: "desc" as const }, { position: "asc" as const }];

export const ArtworkRef = builder.prismaNode("Artwork", {
  id: { field: "id" },
  select: { id: true },
  findUnique: (id) => ({ id: Number(id) }),
  fields: (t) => ({
    qid: t.exposeString("qid"),
    title: t.exposeString("title", { nullable: true, description: "Preferred title (first configured language that has one)." }),
    titles: t.field({ type: [LocalizedText], select: { titles: true }, resolve: (a) => localized(a.titles) }),
    inception: t.exposeString("inception", { nullable: true, description: 'Wikidata time, e.g. "1797-01-01T00:00:00Z"; read it with inceptionPrecision.' }),
    inceptionPrecision: t.exposeInt("inceptionPrecision", { nullable: true, description: "11 day, 10 month, 9 year, 8 decade, 7 century." }),
    inceptionYear: t.exposeInt("inceptionYear", { nullable: true }),
    creators: t.relation("creators", { query: { orderBy: { position: "asc" } } }),
    instanceOf: t.field({ type: [WikidataItem], description: "P31 instance of", select: linksSelect, resolve: byProperty("P31") }),
    genres: t.field({ type: [WikidataItem], description: "P136 genre", select: linksSelect, resolve: byProperty("P136") }),
    materials: t.field({ type: [WikidataItem], description: "P186 made from material", select: linksSelect, resolve: byProperty("P186") }),
    collections: t.field({ type: [WikidataItem], description: "P195 collection", select: linksSelect, resolve: byProperty("P195") }),
    locations: t.field({ type: [WikidataItem], description: "P276 location", select: linksSelect, resolve: byProperty("P276") }),
    depicts: t.field({ type: [WikidataItem], description: "P180 depicts", select: linksSelect, resolve: byProperty("P180") }),
    dimensions: t.field({
      type: Dimensions,
      nullable: true,
      select: { height: true, heightUnit: true, width: true, widthUnit: true },
      resolve: (a) => (a.height == null && a.width == null ? null : a),
    }),
    wikidataRevision: t.string({
      nullable: true,
      description:
        "The Wikidata revision id (lastrevid) this record was synced from, as decimal digits: revision ids have passed 2^31, beyond GraphQL's 32-bit Int.",
      select: { wikidataRevision: true },
      resolve: (a) => a.wikidataRevision?.toString() ?? null,
    }),
    wikidataModified: t.expose("wikidataModified", { type: "DateTime", nullable: true }),
    firstSeenAt: t.expose("firstSeenAt", { type: "DateTime" }),
    lastSyncedAt: t.expose("lastSyncedAt", { type: "DateTime", nullable: true }),
    state: t.expose("state", { type: ArtworkStateEnum }),
    mergedIntoQid: t.exposeString("mergedIntoQid", { nullable: true }),
    image: t.field({
      type: ImageRef,
      nullable: true,
      description: "The main image.",
      select: (_args, _ctx, nestedSelection) => ({
        images: nestedSelection({ where: { isMain: true }, take: 1 }),
      }),
      resolve: (a) => a.images[0] ?? null,
    }),
    images: t.relation("images", { query: { orderBy: imagesOrder } }),
    description: t.string({
      nullable: true,
      description: "The current description's text.",
      extensions: fieldWeight(LONG_TEXT_WEIGHT),
      select: { currentDescription: { select: { text: true } } },
      resolve: (a) => a.currentDescription?.text ?? null,
    }),
    altText: t.string({
      nullable: true,
      description:
        "The current description shortened at a sentence boundary to ALT_TEXT_MAX_CHARS characters (default 250). " +
        "A rejected current description is not used: the newest description nobody rejected is, else the title, creators and date (at Wikidata's precision: \"18th century\"). Null without a description.",
      select: altTextSelect,
      resolve: (a, _args, ctx) =>
        artworkAltText(
          {
            current: a.currentDescription && { text: a.currentDescription.text, rejected: a.currentDescription.reviewState === "REJECTED" },
            newestNotRejected: a.descriptions[0]?.text ?? null,
            title: a.title,
            creators: a.creators.map((c) => c.creator.label),
            year: a.inceptionYear,
            date: formatInception(a.inception, a.inceptionPrecision),
          },
          ctx.config.ALT_TEXT_MAX_CHARS,
        ),
    }),
    currentDescription: t.relation("currentDescription", { nullable: true }),
    descriptions: t.relation("descriptions", {
      description: `Every description ever made, newest first: the first \`limit\` (default ${DEFAULT_HISTORY}, at most ${MAX_HISTORY}). Experiments' texts only with includeExperiments.`,
      args: {
        limit: t.arg.int({ defaultValue: DEFAULT_HISTORY }),
        includeExperiments: t.arg.boolean({ defaultValue: false, description: "Also the texts experiments wrote (never current; see Description.experiment)." }),
      },
      query: (args) => ({
        where: args.includeExperiments ? {} : { experimentId: null },
        orderBy: { id: "desc" },
        take: pageSize("limit", args.limit, DEFAULT_HISTORY, MAX_HISTORY),
      }),
    }),
    descriptionsConnection: t.relatedConnection("descriptions", {
      cursor: "id",
      description: `Every description ever made, newest first, as a Relay connection (pages of ${DEFAULT_HISTORY} unless first or last says, at most ${MAX_HISTORY}). Experiments' texts only with includeExperiments.`,
      maxSize: MAX_HISTORY,
      defaultSize: DEFAULT_HISTORY,
      totalCount: true,
      args: { includeExperiments: t.arg.boolean({ defaultValue: false, description: "Also the texts experiments wrote (never current; see Description.experiment)." }) },
      // The connection's own arguments (first, last) come in with ours; Pothos types only ours here.
      query: (args) => (checkPageSize(args as ConnectionArgs, MAX_HISTORY), { where: args.includeExperiments ? {} : { experimentId: null }, orderBy: { id: "desc" } }),
    }),
    wikidataUrl: t.string({ select: { qid: true }, resolve: (a) => `https://www.wikidata.org/wiki/${a.qid}` }),
    commonsUrl: t.string({
      nullable: true,
      description: "The main image's page on Commons.",
      select: { images: { where: { isMain: true }, take: 1, select: { descriptionUrl: true, fileTitle: true } } },
      resolve: (a) => {
        const img = a.images[0];
        if (!img) return null;
        return img.descriptionUrl ?? commonsFilePageUrl(img.fileTitle);
      },
    }),
  }),
});

const ArtworkFilterInput = builder.inputType("ArtworkFilter", {
  fields: (t) => ({
    creator: t.string({ description: 'A creator QID ("Q5432") or words of a creator label ("goya"), case and accents ignored.', extensions: creatorLimit }),
    attribution: t.field({ type: [AttributionKindEnum] }),
    state: t.field({ type: [ArtworkStateEnum] }),
    hasImage: t.boolean(),
    hasDescription: t.boolean(),
    inceptionFrom: t.int({ description: "Earliest inception year, inclusive." }),
    inceptionTo: t.int({ description: "Latest inception year, inclusive." }),
    genre: t.string({ description: "Genre QID (P136).", extensions: qidLimit }),
    collection: t.string({ description: "Collection QID (P195).", extensions: qidLimit }),
    flag: t.field({ type: QualityFlagEnum, description: "The current description has this quality flag." }),
    minRisk: t.float({ description: "The current description's quality risk is at least this (0 to 1)." }),
    reviewState: t.field({
      type: [ReviewStateEnum],
      description: "The current description's review state is one of these (a work without a description has none).",
      extensions: inputLimit({ maxItems: 4 }),
    }),
    needsPerson: t.boolean({ description: "The fallback ladder is spent (or there was no image): a person must write or approve the text." }),
  }),
});

builder.queryFields((t) => ({
  artworks: t.prismaField({
    type: ["Artwork"],
    description: "Artworks in a stable order (inception, BC dates first, unknown last; then QID). Every attribution kind is included unless `attribution` narrows it.",
    args: {
      creator: t.arg.string({
        description: 'A creator QID ("Q5432") or words of any of its labels ("Goya", "francisco de goya", "jose").',
        extensions: creatorLimit,
      }),
      attribution: t.arg({ type: [AttributionKindEnum] }),
      state: t.arg({ type: [ArtworkStateEnum], defaultValue: ["ACTIVE"] }),
      limit: t.arg.int({ defaultValue: DEFAULT_ARTWORKS_PAGE, description: `At most ${MAX_LIST_LIMIT}.` }),
      offset: t.arg.int({ defaultValue: 0 }),
    },
    resolve: async (query, _root, args, ctx) => {
      const limit = pageSize("limit", args.limit, DEFAULT_ARTWORKS_PAGE, MAX_LIST_LIMIT, "; page with offset or use artworksConnection");
      const offset = args.offset ?? 0;
      if (offset < 0) throw new BadUserInputError("offset", `offset must be 0 or more (got ${offset})`);
      return ctx.db.artwork.findMany({
        ...query,
        where: await artworkWhereResolved(ctx.db, { creator: args.creator, attribution: args.attribution, state: args.state }),
        orderBy: ARTWORK_ORDER,
        take: limit,
        skip: offset,
      });
    },
  }),
  artwork: t.prismaField({
    type: "Artwork",
    description: "One artwork by QID or global id, whatever its state (merged and deleted works too).",
    args: { id: t.arg.id({ required: true, extensions: inputLimit(RESOLVER_CHECKED) }) },
    errors: { types: [NotFoundError, InvalidIdError], directResult: true },
    resolve: async (query, _root, args, ctx) => {
      const key = parseArtworkId(String(args.id));
      const found = await ctx.db.artwork.findUnique({ ...query, where: key });
      if (!found) throw new NotFoundError(String(args.id));
      return found;
    },
  }),
  artworksConnection: t.prismaConnection(
    {
      type: "Artwork",
      cursor: "id",
      description: "Artworks as a Relay connection, in id order.",
      args: { filter: t.arg({ type: ArtworkFilterInput }) },
      maxSize: MAX_LIST_LIMIT,
      defaultSize: DEFAULT_ARTWORKS_PAGE,
      resolve: (query, _root, args, ctx) => {
        checkPageSize(args);
        // By key: the row a cursor names may have left the filter since (a work described, reviewed, removed by a sync).
        const page = byKey(query, args, "asc");
        return ctx.db.artwork.findMany({ ...page.query, where: { AND: [connectionWhere(args.filter), page.where] }, orderBy: { id: "asc" } });
      },
      totalCount: (_root, args, ctx) => checkPageSize(args) ?? ctx.db.artwork.count({ where: connectionWhere(args.filter) }),
    },
    {},
    {},
  ),
}));

type ConnectionFilter = ArtworkFilter & {
  flag?: QualityFlag | null;
  minRisk?: number | null;
  reviewState?: ReviewState[] | null;
  needsPerson?: boolean | null;
};

/** The connection's filter: active works unless `state` says otherwise, and the quality filter. */
function connectionWhere(filter: ConnectionFilter | null | undefined): Prisma.ArtworkWhereInput {
  const { flag, minRisk, reviewState, needsPerson, ...rest } = filter ?? {};
  if (minRisk != null && !(minRisk >= 0 && minRisk <= 1)) {
    throw new BadUserInputError("filter.minRisk", `minRisk must be between 0 and 1 (got ${minRisk})`);
  }
  const extra = [qualityWhere({ flag, minRisk }), reviewWhere({ reviewState, needsPerson })].filter((w) => Object.keys(w).length);
  const base = artworkWhere({ state: ["ACTIVE"], ...stripNulls(rest) });
  return extra.length ? { AND: [base, ...extra] } : base;
}

/** Pothos would silently clamp an oversized page; say so instead. */
function checkPageSize(args: ConnectionArgs, max = MAX_LIST_LIMIT): undefined {
  connectionPageSizes(args, max);
  return undefined;
}

function stripNulls<T extends object>(o: T): { [K in keyof T]?: NonNullable<T[K]> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v != null)) as { [K in keyof T]?: NonNullable<T[K]> };
}
