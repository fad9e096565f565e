import { timingSafeEqual } from "node:crypto";
import { costLimitPlugin } from "@escape.tech/graphql-armor-cost-limit";
import { maxDepthPlugin } from "@escape.tech/graphql-armor-max-depth";
import { createYoga, type YogaServerInstance } from "graphql-yoga";
import type { Config } from "../config.js";
import type { Db } from "../db.js";
import type { Context } from "./builder.js";
import { renderOfflineGraphiQL, useGraphiQLHeaders } from "./graphiql.js";
import { schema } from "./schema/index.js";

export const GRAPHIQL_DEFAULT_QUERY = `# Descriptions of Goya's works, as the mirror and the model wrote them.
{
  artworks(creator: "Goya", limit: 10) {
    qid
    title
    inception
    image { url licenseShortName artist }
    description
  }
}
`;

export interface AppDeps {
  db: Db;
  config: Config;
}

export type Yoga = YogaServerInstance<Record<string, never>, Context>;

/** The GraphQL app, without a listening socket: tests call `yoga.fetch`. */
export function createGraphqlApp({ db, config }: AppDeps): Yoga {
  return createYoga<Record<string, never>, Context>({
    schema,
    graphqlEndpoint: "/graphql",
    landingPage: false,
    graphiql: { defaultQuery: GRAPHIQL_DEFAULT_QUERY, title: "artdesc" },
    renderGraphiQL: renderOfflineGraphiQL,
    logging: false,
    context: ({ request }) => ({
      db,
      config,
      authorized: isAuthorized(request.headers.get("authorization"), config.API_TOKEN),
    }),
    plugins: [
      useGraphiQLHeaders(),
      maxDepthPlugin({ n: config.GRAPHQL_MAX_DEPTH, ignoreIntrospection: true, exposeLimits: true }),
      costLimitPlugin({ maxCost: config.GRAPHQL_MAX_COST, ignoreIntrospection: true, exposeLimits: true }),
    ],
  });
}

/** Constant-time check of `Bearer <token>`; with no token configured nothing is authorized. */
export function isAuthorized(header: string | null, token: string | undefined): boolean {
  if (!token || !header) return false;
  const m = /^Bearer\s+(.+)$/i.exec(header.trim());
  if (!m) return false;
  const given = Buffer.from(m[1]!);
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
