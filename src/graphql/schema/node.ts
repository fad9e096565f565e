import { resolveNodes } from "@pothos/plugin-relay";
import type { GraphQLResolveInfo } from "graphql";
import { Prisma } from "../../generated/prisma/client.js";
import { builder, type Context } from "../builder.js";
import { MAX_ID_LENGTH, parseGlobalId } from "../ids.js";
import { inputLimit } from "../limits/input-limits.js";

/** Most ids one `nodes` call takes (the cost analysis multiplies by the count as well). */
export const MAX_NODE_IDS = 100;

/**
 * `node` and `nodes` (Relay), replacing the relay plugin's own. As the Relay server specification
 * and every client expect, an id that names no object is null, whatever the reason: a row that
 * does not exist, a type that is not a node type of this API, or text that does not decode as a
 * global id (or whose number cannot be a row). In `nodes` only that entry is null. An id longer
 * than MAX_ID_LENGTH is refused by the request limits before anything runs.
 */
async function loadNodes(ctx: Context, info: GraphQLResolveInfo, rawIds: readonly (string | number)[]): Promise<unknown[]> {
  const nodeType = info.schema.getType("Node");
  const nodeTypes = new Set(nodeType && "getFields" in nodeType ? info.schema.getPossibleTypes(nodeType as never).map((t) => t.name) : []);
  // One id at a time, so that a row that is gone is null without failing the others (Prisma
  // batches the findUniques of one tick into one query per type).
  return Promise.all(
    rawIds.map((raw) => {
      const parsed = parseGlobalId(String(raw));
      if (!parsed || !nodeTypes.has(parsed.typename)) return null;
      return resolveNodes(builder, ctx, info, [{ typename: parsed.typename, id: String(parsed.id) }]).then(
        (nodes) => nodes[0] ?? null,
        (err: unknown) => {
          // The prisma plugin loads a node with findUniqueOrThrow: "no such row" is null here.
          if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === "P2025") return null;
          throw err;
        },
      );
    }),
  );
}

builder.queryFields((t) => ({
  node: t.field({
    type: builder.nodeInterfaceRef(),
    nullable: true,
    description: "The object with this global id, or null when there is none (a missing row, an unknown type or an id that does not decode).",
    args: { id: t.arg.id({ required: true, extensions: inputLimit({ maxLength: MAX_ID_LENGTH }) }) },
    resolve: async (_root, args, ctx, info) => (await loadNodes(ctx, info, [args.id]))[0] as never,
  }),
  nodes: t.field({
    type: [builder.nodeInterfaceRef()],
    nullable: { list: false, items: true },
    description: `The objects with these global ids (at most ${MAX_NODE_IDS}), in order; null for each id that names no object.`,
    args: { ids: t.arg.idList({ required: true, extensions: inputLimit({ maxItems: MAX_NODE_IDS, maxLength: MAX_ID_LENGTH }) }) },
    resolve: (_root, args, ctx, info) => loadNodes(ctx, info, args.ids) as never,
  }),
}));
