import { loadConfig } from "../src/config.js";
import { createDb } from "../src/db.js";
import { createGraphqlApp } from "../src/graphql/yoga.js";
import { searchArtworks } from "../src/search/search.js";
import { gql } from "./support/graphql.js";
const db = await createDb("file:/tmp/benchprof.db");
const yoga = createGraphqlApp({ db, config: loadConfig({}) });
const Q = `query($q: String!) { search(query: $q, first: 10) { ... on QuerySearchConnection { edges { node { score snippet artwork { qid title } } } } ... on Error { message } } }`;
const N = 40;
for (const q of ["woman dog", "donkey tower"]) {
  await searchArtworks(db, q, { limit: 10 });
  let s = performance.now();
  for (let i = 0; i < N; i++) await searchArtworks(db, q, { limit: 10 });
  const a = (performance.now() - s) / N;
  await gql(yoga, Q, { q });
  s = performance.now();
  for (let i = 0; i < N; i++) await gql(yoga, Q, { q });
  const b = (performance.now() - s) / N;
  s = performance.now();
  for (let i = 0; i < N; i++) await db.$queryRawUnsafe("SELECT 1");
  const c = (performance.now() - s) / N;
  console.log(q, "searchArtworks", a.toFixed(1), "graphql", b.toFixed(1), "select1", c.toFixed(2));
}
await db.$disconnect();
