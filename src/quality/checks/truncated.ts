import { countWords, endsSentence } from "../../describe/postprocess.js";
import type { CheckOutcome, QualityInput } from "../types.js";

/**
 * TRUNCATED: the model stopped at max tokens (finish reason "length"), the text was trimmed to
 * its last sentence, or the stored text (model or human) ends mid-sentence, without . ! ? or …
 * An empty text is left to TOO_SHORT.
 */
export function checkTruncated(input: QualityInput): CheckOutcome {
  const g = input.generation ?? {};
  const reasons: string[] = [];
  if (g.finishReason === "length") reasons.push("the model stopped at max tokens");
  if (g.trimmed) reasons.push("the text was trimmed to its last sentence");
  if (countWords(input.text) > 0 && !endsSentence(input.text)) reasons.push("the text ends mid-sentence");
  const flagged = reasons.length > 0;
  return {
    flag: "TRUNCATED",
    flagged,
    applicable: true,
    severity: flagged ? 1 : 0,
    checks: [{ name: "truncated", value: flagged ? 1 : 0, detail: flagged ? reasons.join("; ") : "complete" }],
  };
}
