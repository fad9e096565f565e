/**
 * The label languages a sync asks for and reads, in order: SYNC_LANGUAGES, then "mul", the label
 * Wikidata gives a name once for every language (many people's and works' names now have only
 * that one): without it such a creator has no name to search by and such a work no title.
 */
export function labelLanguages(languages: readonly string[]): string[] {
  return languages.includes("mul") ? [...languages] : [...languages, "mul"];
}
