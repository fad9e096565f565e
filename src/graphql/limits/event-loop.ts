import { defaultFieldResolver, type GraphQLSchema, isObjectType } from "graphql";

/**
 * Lets the event loop turn during long executions. Prisma over better-sqlite3 answers in
 * microtasks, so a GraphQL execution never reached the timers or the poll phase: one big query
 * held /health (and every other request) until it finished, and no timer could stop it. Every
 * field resolver now first checks how long ago the loop last turned; past `everyMs` it waits for
 * one setImmediate, which lets pending I/O, timers (the request time limit) and other requests
 * run. The check costs one clock read per field.
 */
const wrapped = new WeakSet<GraphQLSchema>();
let lastTurn = performance.now();

export function withEventLoopTurns(schema: GraphQLSchema, everyMs = 20): GraphQLSchema {
  if (wrapped.has(schema)) return schema;
  wrapped.add(schema);
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith("__")) continue;
    for (const field of Object.values(type.getFields())) {
      const resolve = field.resolve ?? defaultFieldResolver;
      field.resolve = (source, args, context, info) => {
        if (performance.now() - lastTurn < everyMs) return resolve(source, args, context, info);
        return new Promise<void>((done) => setImmediate(done)).then(() => {
          lastTurn = performance.now();
          return resolve(source, args, context, info);
        });
      };
    }
  }
  return schema;
}
