import { resolveNodes } from "@pothos/plugin-relay";
import { GraphQLError, type GraphQLResolveInfo } from "graphql";
import { Prisma } from "../../generated/prisma/client.js";
import { builder, type Context } from "../builder.js";
import { MAX_ID_LENGTH, parseGlobalId } from "../ids.js";
import { inputLimit } from "../limits/input-limits.js";

/** Most ids one `nodes` call takes (the cost analysis multiplies by the count as well). */
export const MAX_NODE_IDS = 100;

/**
 * `node` and `nodes` (Relay), replacing the relay plugin's own: an id that is not a global id of
 * a node type, or whose number cannot be a row, is a BAD_USER_INPUT error (not a masked one), and
 * a well-formed id of a row that does not exist is null.
 */
async function loadNodes(ctx: Context, info: GraphQLResolveInfo, rawIds: readonly (string | number)[]): Promise<unknown[]> {
  const nodeType = info.schema.getType("Node");
  const nodeTypes = new Set(nodeType && "getFields" in nodeType ? info.schema.getPossibleTypes(nodeType as never).map((t) => t.name) : []);
  const ids = rawIds.map((raw) => {
    const parsed = parseGlobalId(String(raw));
    if (!parsed || !nodeTypes.has(parsed.typename)) {
      throw new GraphQLError(`"${String(raw).slice(0, MAX_ID_LENGTH)}" is not a global id of this API (see the id field of an Artwork, Description or Job)`, {
        extensions: { code: "BAD_USER_INPUT" },
      });
    }
    return { typename: parsed.typename, id: String(parsed.id) };
  });
  // One id at a time, so that a row that is gone is null without failing the others.
  return Promise.all(
    ids.map((id) =>
      resolveNodes(builder, ctx, info, [id]).then(
        (nodes) => nodes[0] ?? null,
        (err: unknown) => {
          if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === "P2025") return null;
          throw err;
        },
      ),
    ),
  );
}

builder.queryFields((t) => ({
  node: t.field({
    type: builder.nodeInterfaceRef(),
    nullable: true,
    description: "The object with this global id, or null when there is none.",
    args: { id: t.arg.id({ required: true, extensions: inputLimit({ maxLength: MAX_ID_LENGTH }) }) },
    resolve: async (_root, args, ctx, info) => (await loadNodes(ctx, info, [args.id]))[0] as never,
  }),
  nodes: t.field({
    type: [builder.nodeInterfaceRef()],
    nullable: { list: false, items: true },
    description: `The objects with these global ids (at most ${MAX_NODE_IDS}), null for those that do not exist.`,
    args: { ids: t.arg.idList({ required: true, extensions: inputLimit({ maxItems: MAX_NODE_IDS, maxLength: MAX_ID_LENGTH }) }) },
    resolve: (_root, args, ctx, info) => loadNodes(ctx, info, args.ids) as never,
  }),
}));
