import { tokenize, WordIndex } from "../text-match.js";
import type { CheckOutcome, DepictedItem, QualityInput } from "../types.js";

/** Classes whose instances pixels cannot name: humans (P31 = Q5) and person-like figures. */
export const PERSON_CLASSES = new Set([
  "Q5", // human
  "Q15632617", // fictional human
  "Q95074", // fictional character
  "Q4271324", // mythical character
  "Q178885", // deity
]);
/** Classes of ideas rather than things: a description need not name them. */
export const ABSTRACT_CLASSES = new Set([
  "Q151885", // concept
  "Q7184903", // abstract object
]);
/**
 * Labels of abstract depicted items (English and Spanish, normalised): allegories and themes a
 * picture shows through other things. Matched on the item's labels when its P31 says nothing.
 */
export const ABSTRACT_LABELS = new Set(
  (
    "allegory allegorical vanitas death life love war peace time truth justice faith hope charity vice virtue folly madness " +
    "sleep dream reason ignorance superstition vanity melancholy violence cruelty fear sin religion history fame fortune " +
    "alegoria muerte vida amor guerra paz tiempo verdad justicia fe esperanza caridad vicio virtud locura sueno razon " +
    "ignorancia supersticion vanidad melancolia violencia crueldad miedo pecado religion historia fama fortuna"
  ).split(" "),
);

export type DepictedVerdict = "mentioned" | "missing" | "person" | "abstract" | "unlabelled";

/** The names of an item in the given languages (all its languages when none are given). */
export function namesOf(item: DepictedItem, languages?: string[]): string[] {
  const pick = <T>(r: Record<string, T> | undefined) =>
    Object.entries(r ?? {})
      .filter(([lang]) => !languages || languages.includes(lang))
      .map(([, v]) => v);
  const names = [...pick(item.labels), ...pick(item.aliases).flat()];
  // A one-letter name ("Q", "A") would match almost any text.
  return [...new Set(names)].filter((n) => tokenize(n).join(" ").length >= 2);
}

export function judgeDepicted(index: WordIndex, item: DepictedItem, languages?: string[]): DepictedVerdict {
  if (item.instanceOf.some((c) => PERSON_CLASSES.has(c))) return "person";
  if (item.instanceOf.some((c) => ABSTRACT_CLASSES.has(c))) return "abstract";
  const labels = Object.values(item.labels).map((l) => tokenize(l).join(" "));
  if (labels.some((l) => ABSTRACT_LABELS.has(l))) return "abstract";
  const names = namesOf(item, languages);
  if (names.length === 0) return "unlabelled";
  return names.some((n) => index.has(n)) ? "mentioned" : "missing";
}

const labelOf = (item: DepictedItem, language?: string) =>
  (language && item.labels[language]) || item.labels.en || Object.values(item.labels)[0] || item.qid;

/**
 * DEPICTS_MISSING: a depicted thing (P180) that is neither a person nor an abstract idea, and has
 * a label in the synced languages, is named by none of its labels or aliases. Value: the share
 * missing among the judged items. Severity: that share (0.5 at least when flagged).
 */
export function checkDepictsMissing(input: QualityInput): CheckOutcome {
  const depicts = input.work?.depicts ?? [];
  const index = new WordIndex(input.text);
  const verdicts = depicts.map((item) => ({ item, verdict: judgeDepicted(index, item, input.languages) }));
  const judged = verdicts.filter((v) => v.verdict === "mentioned" || v.verdict === "missing");
  const missing = judged.filter((v) => v.verdict === "missing");
  const skipped = verdicts.length - judged.length;
  if (judged.length === 0) {
    return {
      flag: "DEPICTS_MISSING",
      flagged: false,
      applicable: false,
      severity: 0,
      checks: [{ name: "depictsMissing", value: 0, detail: depicts.length ? `none of ${depicts.length} depicted item(s) can be judged` : "no depicted items" }],
    };
  }
  const share = missing.length / judged.length;
  const flagged = missing.length > 0;
  const names = missing.map(({ item }) => `${labelOf(item, input.language)} (${item.qid})`).join(", ");
  return {
    flag: "DEPICTS_MISSING",
    flagged,
    applicable: true,
    severity: flagged ? Math.max(0.5, share) : 0,
    checks: [
      {
        name: "depictsMissing",
        value: share,
        detail: `${flagged ? `missing: ${names}` : "all mentioned"}; ${judged.length} judged${skipped ? `, ${skipped} skipped (people, abstract or unlabelled)` : ""}`,
      },
    ],
  };
}
