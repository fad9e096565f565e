import { readdirSync, readFileSync } from "node:fs";

const root = new URL("../../", import.meta.url);

/** The Markdown files whose GraphQL examples are checked: README.md and docs/*.md. */
export const DOCUMENTED_FILES = ["README.md", ...readdirSync(new URL("docs/", root)).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];

/** Every GraphQL example of a Markdown file: ```graphql blocks and the "query" string of each curl JSON body. */
export function documentedQueries(file: string): string[] {
  const text = readFileSync(new URL(file, root), "utf8");
  return [
    ...[...text.matchAll(/```graphql\n([\s\S]*?)```/g)].map((m) => m[1]!),
    ...[...text.matchAll(/"query":\s*("(?:[^"\\]|\\.)*")/g)].map((m) => JSON.parse(m[1]!) as string),
  ];
}
