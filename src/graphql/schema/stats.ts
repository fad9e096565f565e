import { builder } from "../builder.js";

interface CreatorCount {
  qid: string;
  label: string | null;
  artworks: number;
  withImage: number;
  described: number;
}
interface Stats {
  artworks: number;
  withImage: number;
  described: number;
  byCreator: CreatorCount[];
}

const CreatorCountRef = builder.objectRef<CreatorCount>("CreatorStats").implement({
  fields: (t) => ({
    qid: t.exposeString("qid"),
    label: t.exposeString("label", { nullable: true }),
    artworks: t.exposeInt("artworks"),
    withImage: t.exposeInt("withImage"),
    described: t.exposeInt("described"),
  }),
});

const StatsRef = builder.objectRef<Stats>("Stats").implement({
  description: "Counts over active artworks.",
  fields: (t) => ({
    artworks: t.exposeInt("artworks"),
    withImage: t.exposeInt("withImage"),
    described: t.exposeInt("described"),
    byCreator: t.field({ type: [CreatorCountRef], resolve: (s) => s.byCreator }),
  }),
});

builder.queryField("stats", (t) =>
  t.field({
    type: StatsRef,
    resolve: async (_root, _args, ctx) => {
      // One aggregate query: counts per creator, and a grand total that counts each artwork once.
      const rows = await ctx.db.$queryRaw<
        { qid: string | null; label: string | null; artworks: bigint; withImage: bigint; described: bigint }[]
      >`
        WITH a AS (
          SELECT w.id,
                 EXISTS (SELECT 1 FROM Image i WHERE i.artworkId = w.id AND i.isMain = 1 AND i.missing = 0) AS hasImage,
                 w.currentDescriptionId IS NOT NULL AS described
          FROM Artwork w WHERE w.state = 'ACTIVE')
        SELECT c.qid AS qid, c.label AS label, COUNT(DISTINCT a.id) AS artworks,
               COUNT(DISTINCT CASE WHEN a.hasImage THEN a.id END) AS withImage,
               COUNT(DISTINCT CASE WHEN a.described THEN a.id END) AS described
        FROM a JOIN ArtworkCreator ac ON ac.artworkId = a.id JOIN Creator c ON c.id = ac.creatorId
        GROUP BY c.id
        UNION ALL
        SELECT NULL, NULL, COUNT(*), COALESCE(SUM(a.hasImage), 0), COALESCE(SUM(a.described), 0) FROM a`;
      const n = (v: bigint | number) => Number(v);
      const total = rows.find((r) => r.qid === null)!;
      return {
        artworks: n(total.artworks),
        withImage: n(total.withImage),
        described: n(total.described),
        byCreator: rows
          .filter((r) => r.qid !== null)
          .map((r) => ({ qid: r.qid!, label: r.label, artworks: n(r.artworks), withImage: n(r.withImage), described: n(r.described) }))
          .sort((x, y) => x.qid.localeCompare(y.qid)),
      };
    },
  }),
);
