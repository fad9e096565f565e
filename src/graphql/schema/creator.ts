import { builder } from "../builder.js";
import { AttributionKindEnum } from "./enums.js";
import { LocalizedText } from "./scalars.js";

builder.prismaObject("Creator", {
  fields: (t) => ({
    qid: t.exposeString("qid"),
    label: t.exposeString("label", { nullable: true }),
    labels: t.field({
      type: [LocalizedText],
      select: { labels: { select: { language: true, label: true }, orderBy: { id: "asc" } } },
      resolve: (c) => c.labels.map((l) => ({ language: l.language, text: l.label })),
    }),
    wikidataUrl: t.string({ select: { qid: true }, resolve: (c) => `https://www.wikidata.org/wiki/${c.qid}` }),
    artworkCount: t.relationCount("artworks"),
  }),
});

builder.prismaObject("ArtworkCreator", {
  name: "Attribution",
  description: "A creator of an artwork and how the work is attributed to them.",
  fields: (t) => ({
    creator: t.relation("creator"),
    attribution: t.expose("attribution", { type: AttributionKindEnum }),
  }),
});

builder.queryField("creators", (t) =>
  t.prismaField({
    type: ["Creator"],
    description: "Every creator in the store, by QID.",
    resolve: (query, _root, _args, ctx) => ctx.db.creator.findMany({ ...query, orderBy: { qid: "asc" } }),
  }),
);
