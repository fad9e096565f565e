/**
 * Text from elsewhere (a Wikidata title, a person's description) as one terminal line: line breaks
 * and tabs become spaces, and the other control characters (C0, DEL, C1: an ESC would start an
 * escape sequence that recolours, moves the cursor or retitles the window) and the bidirectional
 * overrides (which reorder what follows) go.
 */
export function terminalLine(text: string): string {
  return text.replace(/[\r\n\t\u000B\u000C\u0085\u2028\u2029]+/g, " ").replace(/[\u0000-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]/g, "");
}
