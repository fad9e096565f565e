/**
 * The Regenerate form's fields as GraphQL's GenerationParamsInput. Empty fields are left out (the
 * configured defaults apply); a field that is not a number is a problem named here, and ranges are
 * GraphQL's to check (one vocabulary: src/generation/params.ts). Pure.
 */

const INTS = ["numBeams", "maxNewTokens", "minNewTokens", "targetWords", "noRepeatNgramSize"] as const;
const FLOATS = ["lengthPenalty", "repetitionPenalty"] as const;
const EARLY_STOPPING = ["TRUE", "FALSE", "NEVER"];

export interface RegenerateRequest {
  params: Record<string, string | number | boolean>;
  reason: string | null;
  force: boolean;
}

export function readRegenerateForm(form: Map<string, string>): { ok: RegenerateRequest } | { problems: string[] } {
  const problems: string[] = [];
  const params: Record<string, string | number | boolean> = {};
  for (const k of INTS) {
    const v = form.get(k)?.trim();
    if (!v) continue;
    if (!/^-?\d{1,7}$/.test(v)) problems.push(`${k} must be a whole number (got "${v.slice(0, 20)}")`);
    else params[k] = Number(v);
  }
  for (const k of FLOATS) {
    const v = form.get(k)?.trim();
    if (!v) continue;
    const n = Number(v);
    if (!/^-?\d{1,6}(\.\d{1,6})?$/.test(v) || !Number.isFinite(n)) problems.push(`${k} must be a number (got "${v.slice(0, 20)}")`);
    else params[k] = n;
  }
  const early = form.get("earlyStopping")?.trim();
  if (early) {
    if (EARLY_STOPPING.includes(early)) params.earlyStopping = early;
    else problems.push(`earlyStopping must be one of ${EARLY_STOPPING.join(", ")}`);
  }
  const prompt = form.get("prompt");
  if (prompt?.trim()) params.prompt = prompt;
  // Checkboxes: the form always shows them, so an absent one means unchecked.
  params.imageSplitting = form.has("imageSplitting");
  params.cleanMarkdown = form.has("cleanMarkdown");
  if (problems.length) return { problems };
  const reason = form.get("reason")?.trim() || null;
  return { ok: { params, reason, force: form.has("force") } };
}

/** generationDefaults' earlyStopping ("true", "false", "never") as the form's option value. */
export const earlyStoppingOption = (v: string) => v.toUpperCase();
