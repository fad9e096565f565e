import type { Yoga } from "../graphql/yoga.js";

/**
 * The workbench reads and writes through the GraphQL API in this process (yoga.fetch): the same
 * schema, read models, loaders, limits and authorization as any client, with no second copy of the
 * queries. A signed-in person's requests carry the API token; everyone else's carry none.
 */

/** GraphQL answered with errors (a limit, a timeout, a masked failure): the page cannot be built. */
export class WorkbenchQueryError extends Error {
  override name = "WorkbenchQueryError";
  constructor(
    readonly messages: string[],
    /** Yoga's HTTP status for the answer (503 when the database is unavailable). */
    readonly status: number,
    /** Each error's `extensions.code` (BAD_USER_INPUT for bad input to a connection such as search). */
    readonly codes: (string | undefined)[] = [],
  ) {
    super(`GraphQL answered with errors: ${messages.join("; ")}`);
  }

  /** Every error is the caller's bad input (a search text that has no words), not a failure. */
  get badInput(): boolean {
    return this.codes.length > 0 && this.codes.every((c) => c === "BAD_USER_INPUT");
  }
}

export interface GqlCaller {
  /** The data of `document`; WorkbenchQueryError when GraphQL reports any error. */
  <T>(document: string, variables?: Record<string, unknown>, options?: { token?: string }): Promise<T>;
}

export function graphqlCaller(yoga: Yoga): GqlCaller {
  return async <T>(document: string, variables: Record<string, unknown> = {}, options: { token?: string } = {}) => {
    const headers: Record<string, string> = { "content-type": "application/json", accept: "application/graphql-response+json" };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    const res = await yoga.fetch("http://workbench.local/graphql", { method: "POST", headers, body: JSON.stringify({ query: document, variables }) });
    const body = (await res.json()) as { data?: T | null; errors?: { message: string; extensions?: { code?: string } }[] };
    if (body.errors?.length || !body.data) {
      const errors = body.errors ?? [];
      throw new WorkbenchQueryError(errors.length ? errors.map((e) => e.message) : ["no data"], res.status === 200 ? 500 : res.status, errors.map((e) => e.extensions?.code));
    }
    return body.data;
  };
}
