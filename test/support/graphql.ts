import type { Yoga } from "../../src/graphql/yoga.js";

export interface GqlResult<T = any> {
  data?: T;
  errors?: { message: string; path?: (string | number)[]; locations?: { line: number; column: number }[]; extensions?: Record<string, unknown> }[];
}

/** Runs a GraphQL operation through yoga.fetch, no socket. */
export async function gql<T = any>(
  yoga: Yoga,
  query: string,
  variables: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<GqlResult<T>> {
  const res = await yoga.fetch("http://local/graphql", {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ query, variables }),
  });
  return (await res.json()) as GqlResult<T>;
}
