import { defaultFieldResolver, type GraphQLSchema, isObjectType } from "graphql";
import { turnIfDue } from "../../ops/event-loop-turns.js";

/**
 * Lets the event loop turn during long executions (see ops/event-loop-turns.ts): every field
 * resolver first waits for a turn of the loop when one is due, which lets pending I/O, timers
 * (the request time limit) and other requests run. The check costs one clock read per field.
 */
const wrapped = new WeakSet<GraphQLSchema>();

export function withEventLoopTurns(schema: GraphQLSchema, everyMs?: number): GraphQLSchema {
  if (wrapped.has(schema)) return schema;
  wrapped.add(schema);
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith("__")) continue;
    for (const field of Object.values(type.getFields())) {
      const resolve = field.resolve ?? defaultFieldResolver;
      field.resolve = (source, args, context, info) => {
        const turn = turnIfDue(everyMs);
        return turn ? turn.then(() => resolve(source, args, context, info)) : resolve(source, args, context, info);
      };
    }
  }
  return schema;
}
