import { cleanMarkdown } from "../../describe/postprocess.js";
import type { CheckOutcome, QualityInput } from "../types.js";

const squash = (s: string) => s.replace(/\s+/g, " ").trim();

/**
 * MARKDOWN: the cleanup removed something when the text was written, or would remove something
 * from the stored text now (a human text, or one stored with the cleanup off): the same
 * `cleanMarkdown` as the engine, so both agree on what markdown is.
 */
export function checkMarkdown(input: QualityInput): CheckOutcome {
  const removed = input.generation?.markdownRemoved === true;
  const residual = squash(cleanMarkdown(input.text)) !== squash(input.text);
  const flagged = removed || residual;
  const detail = [removed ? "the cleanup removed markdown when it was written" : "", residual ? "the text still holds markdown" : ""]
    .filter(Boolean)
    .join("; ");
  return {
    flag: "MARKDOWN",
    flagged,
    applicable: true,
    severity: flagged ? 1 : 0,
    checks: [{ name: "markdown", value: flagged ? 1 : 0, detail: detail || "none" }],
  };
}
