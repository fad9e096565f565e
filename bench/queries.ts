import { ART_WORDS } from "../test/support/bulk.js";

/**
 * The GraphQL operations the benchmarks send, in one place so that a test
 * (test/hostile/limits-documented.test.ts) checks each against the default request limits.
 */

/** bench:api — the most common read. */
export const API_BENCH_QUERY = '{ artworks(creator: "Goya", limit: 100) { title description } }';
/** bench:api — one page of the Relay connection. */
export const API_CONNECTION_BENCH_QUERY = "{ artworksConnection(first: 100) { edges { node { title description } } } }";
/** bench:api — one artwork with its description history. */
export const API_ARTWORK_BENCH_QUERY = "query($id: ID!) { artwork(id: $id) { ... on Artwork { title description descriptions { text } } } }";

/** bench:search — one page of hits with their artworks. */
export const SEARCH_BENCH_QUERY = `query($q: String!, $mode: SearchMode) { search(query: $q, mode: $mode, first: 10) {
    edges { node { score rank similarity matchedBy snippet artwork { qid title } } } } }`;

/** bench:busy — the read measured while the worker describes, and the calls that drive the worker. */
export const BUSY_BENCH_QUERY = "{ artworks(limit: 20) { qid title inception description } }";
export const BUSY_MODEL_STATUS = "{ generationDefaults { model { modelStatus modelError } } }";
export const BUSY_JOB_NUMBERS = "{ jobs { edges { node { number } } } }";
export const BUSY_SUCCEEDED_JOBS = "{ jobs(status: [SUCCEEDED]) { edges { node { number } } } }";
export const BUSY_REGENERATE =
  "mutation($id: ID!, $p: GenerationParamsInput) { regenerateDescription(id: $id, params: $p) { ... on Job { id } ... on Error { message } } }";
export const BUSY_JOB_PROGRESS = "query($id: ID!) { job(id: $id) { ... on Job { status progress } } }";

export const BENCH_QUERIES: Record<string, string> = {
  API_BENCH_QUERY,
  API_CONNECTION_BENCH_QUERY,
  API_ARTWORK_BENCH_QUERY,
  SEARCH_BENCH_QUERY,
  BUSY_BENCH_QUERY,
  BUSY_MODEL_STATUS,
  BUSY_JOB_NUMBERS,
  BUSY_SUCCEEDED_JOBS,
  BUSY_REGENERATE,
  BUSY_JOB_PROGRESS,
};

/** Every ordered pair of distinct descriptive words ("dog woman", "woman dog", …), shuffled with a fixed seed. */
export function distinctQueries(): string[] {
  const pairs = ART_WORDS.flatMap((a) => ART_WORDS.filter((b) => b !== a).map((b) => `${a} ${b}`));
  let x = 12345;
  for (let i = pairs.length - 1; i > 0; i--) {
    x = (x * 1103515245 + 12345) >>> 0;
    const j = x % (i + 1);
    [pairs[i], pairs[j]] = [pairs[j]!, pairs[i]!];
  }
  return pairs;
}
