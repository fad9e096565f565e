/**
 * The artwork's current description is no longer the one the caller saw (`replaces`): another text
 * became current meanwhile. Nothing was saved or queued.
 */
export class DescriptionConflictError extends Error {
  override name = "DescriptionConflictError";
  constructor(
    readonly artworkId: number,
    /** The description the caller saw; null: the work had none. */
    readonly expected: number | null,
    readonly actual: number | null,
    /** What was refused: saving an edited text, or a regeneration forced over the text seen. */
    action: "edit" | "regenerate" = "edit",
  ) {
    const now = `it is now ${actual == null ? "none" : `description ${actual}`}, not ${expected == null ? "none" : expected}`;
    super(
      action === "edit"
        ? `The work's current description changed while it was being edited: ${now}. Nothing was saved; look at the new text and edit again.`
        : `The work's current description changed since it was shown: ${now}. Nothing was queued; look at the new text and ask again.`,
    );
  }
}

/** Throws DescriptionConflictError unless the work's current description is `expected` ("none": it had none). */
export function checkCurrent(artworkId: number, current: number | null, expected: number | "none", action: "edit" | "regenerate"): void {
  const want = expected === "none" ? null : expected;
  if (current !== want) throw new DescriptionConflictError(artworkId, want, current, action);
}
