import { AttributionKind } from "../generated/prisma/enums.js";

/** Facts from Wikidata as words: the workbench shows them, and the describe prompt's context gives them to the model. */

export const ATTRIBUTION_WORDS: Record<string, string> = {
  [AttributionKind.CREATOR]: "by",
  [AttributionKind.ATTRIBUTED_TO]: "attributed to",
  [AttributionKind.WORKSHOP_OF]: "workshop of",
  [AttributionKind.FOLLOWER_OF]: "follower of",
  [AttributionKind.CIRCLE_OF]: "circle of",
  [AttributionKind.MANNER_OF]: "manner of",
  [AttributionKind.POSSIBLE_CREATOR]: "possibly by",
  [AttributionKind.SCHOOL_OF]: "school of",
};

export function attributionWords(kind: string): string {
  return ATTRIBUTION_WORDS[kind] ?? kind.toLowerCase();
}

const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

/** A Wikidata time at its precision: "12 March 1797", "March 1797", "1797", "1790s", "18th century". */
export function formatInception(inception: string | null | undefined, precision: number | null | undefined): string | null {
  if (!inception) return null;
  const m = /^([+-]?)(\d+)-(\d\d)-(\d\d)/.exec(inception);
  if (!m) return inception;
  const bce = m[1] === "-";
  const year = Number(m[2]);
  const era = bce ? " BCE" : "";
  const p = precision ?? 9;
  if (p >= 11 && m[4] !== "00") return `${Number(m[4])} ${MONTHS[Number(m[3]) - 1] ?? m[3]} ${year}${era}`;
  if (p >= 10 && m[3] !== "00") return `${MONTHS[Number(m[3]) - 1] ?? m[3]} ${year}${era}`;
  if (p === 8) return `${Math.floor(year / 10) * 10}s${era}`;
  if (p === 7) {
    const c = Math.floor((year - 1) / 100) + 1;
    return `${c}${ordinalSuffix(c)} century${era}`;
  }
  return `${year}${era}`;
}

function ordinalSuffix(n: number): string {
  if (n % 100 >= 11 && n % 100 <= 13) return "th";
  return ["th", "st", "nd", "rd"][n % 10] ?? "th";
}
