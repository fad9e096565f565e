/** Line breaks other than LF: CR (alone or before LF), VT, FF, NEL, and the line and paragraph separators. */
const OTHER_BREAK = /\r\n?|[\u000B\u000C\u0085\u2028\u2029]/g;
/** C0 controls but tab and line feed, DEL, C1 controls, and the bidirectional overrides and isolates (as checkText refuses in a person's text). */
const CONTROL = /[\u0000-\u0008\u000E-\u001F\u007F-\u0084\u0086-\u009F\u202A-\u202E\u2066-\u2069]/g;

/**
 * The text without control characters: other line breaks made LF, the rest removed. A model's
 * tokens can decode to any byte (a small or synthetic model writes them); a person's text with
 * them is refused (checkText), so a stored description never holds them, whoever wrote it.
 */
export function withoutControls(text: string): string {
  return text.replace(OTHER_BREAK, "\n").replace(CONTROL, "");
}

/**
 * Text from elsewhere (a Wikidata title, a person's description) as one terminal line: without its
 * control characters (withoutControls: an ESC would start an escape sequence that recolours, moves
 * the cursor or retitles the window; an override reorders what follows), line breaks and tabs made
 * one space.
 */
export function terminalLine(text: string): string {
  return withoutControls(text).replace(/[\n\t]+/g, " ");
}
