import { GraphQLError } from "graphql";
import { builder } from "../builder.js";

builder.scalarType("DateTime", {
  description: "An ISO 8601 date-time in UTC.",
  serialize: (value) => (value instanceof Date ? value.toISOString() : String(value)),
  parseValue: (value) => {
    const date = new Date(String(value));
    if (Number.isNaN(date.getTime())) throw new GraphQLError(`Invalid DateTime: ${String(value)}`);
    return date;
  },
});

builder.scalarType("JSON", {
  description: "Arbitrary JSON.",
  serialize: (value) => value,
  parseValue: (value) => value,
});

export const LocalizedText = builder.objectRef<{ language: string; text: string }>("LocalizedText").implement({
  description: "A text in one language.",
  fields: (t) => ({
    language: t.exposeString("language"),
    text: t.exposeString("text"),
  }),
});

/** Turns a stored JSON map {"en": "...", "es": "..."} into LocalizedText rows. */
export function localized(json: string | null | undefined): { language: string; text: string }[] {
  if (!json) return [];
  const map = JSON.parse(json) as Record<string, string>;
  return Object.entries(map).map(([language, text]) => ({ language, text }));
}
